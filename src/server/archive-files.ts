/**
 * Cold files of archived blocks (issue 18 part 4, docs/storage-growth.md "Archival"): the part
 * shared by the SQLite and PostgreSQL storages. An archived block keeps its row, its index
 * entries (id hashes, slot runs, cursor range, streams) and its event count in the database;
 * only its body moves to a file, and the row's body becomes a *stub* naming the file, where the
 * block starts in it, and the file's SHA-256.
 *
 * A file holds the blocks of one space and one range of positions, as stored (already deflated):
 *   "CHRONICLE-ARCHIVE 1\n" + one JSON line (space, blocks: [last_pos, n, offset, length]) + bodies
 * The header makes a file readable on its own (an operator can see what it holds); reads use the
 * stub's offsets.
 *
 * Invariants:
 * 1. A stub's first byte is STUB_FORMAT, which no block format uses (event-blocks.ts 3): a
 *    server that predates archival refuses a stub as a block of unknown format (a coded
 *    StorageError), never reads it as events.
 * 2. A file is written to a temporary name, fsynced, renamed and its directory fsynced before the
 *    database records it (the caller's transaction puts the stubs and the file's row in at once).
 *    A crash leaves the blocks in the database (and at most an unrecorded file, which `--check`
 *    lists as an orphan) or a complete file that is recorded.
 * 3. A read verifies the whole file's SHA-256 against the stub's before it uses a byte of it; a
 *    missing, unreadable or damaged file fails that read with StorageError code STORAGE and
 *    details.reason `archive-missing`, `archive-damaged` or `archive-unconfigured`. Never a gap.
 * 4. File names carry a random part: a name is never reused, so a cached file is never stale and
 *    a new file never replaces a recorded one.
 * 5. Verified files are cached by name, a few and a bounded number of bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord } from '../core/events.ts';
import { decodeBlock } from './event-blocks.ts';

/** Reads a block's stored body or archive stub (ArchiveReader.decode). */
export type BlockDecoder = (bytes: Uint8Array) => LocalRecord[];

/** Invariant 1: the first byte of a stub. */
export const STUB_FORMAT = 0xa5;
const MAGIC = 'CHRONICLE-ARCHIVE 1\n';
/** Files and bytes kept verified in memory (invariant 5). */
const CACHED_FILES = 8;
const CACHED_BYTES = 64 * 1024 * 1024;

/** Where a block's body lives in its file (invariant 1). */
export interface Stub {
  file: string;
  offset: number;
  length: number;
  sha256: string;
}

export type ArchiveFailure = 'archive-missing' | 'archive-damaged' | 'archive-unconfigured';

export function archiveError(reason: ArchiveFailure, file: string, detail: string): StorageError {
  return new StorageError('STORAGE', `archived events cannot be read: ${detail}`, {
    reason,
    file,
  });
}

export function isStub(bytes: Uint8Array): boolean {
  return bytes[0] === STUB_FORMAT;
}

export function encodeStub(stub: Stub): Buffer {
  const json = Buffer.from(JSON.stringify([stub.file, stub.offset, stub.length, stub.sha256]));
  return Buffer.concat([Buffer.from([STUB_FORMAT]), json]);
}

export function decodeStub(bytes: Uint8Array): Stub {
  try {
    const [file, offset, length, sha256] = JSON.parse(
      Buffer.from(bytes.subarray(1)).toString('utf8'),
    ) as [string, number, number, string];
    if (typeof file === 'string' && Number.isSafeInteger(offset) && Number.isSafeInteger(length)) {
      return { file, offset, length, sha256 };
    }
  } catch {
    // Reported below, as any stub that does not name a file.
  }
  throw archiveError(
    'archive-damaged',
    '',
    'an archived block names no file (its stub is damaged)',
  );
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Decodes blocks whether their body is in the database or archived (invariants 3, 5). One per
 * storage: `dir` is the storage's archive directory (undefined: archived blocks cannot be read).
 */
export class ArchiveReader {
  private readonly files = new Map<string, Buffer>();
  private cachedBytes = 0;

  readonly dir: string | undefined;

  constructor(dir: string | undefined) {
    this.dir = dir;
  }

  /** The records of a stored block body or stub. */
  decode(bytes: Uint8Array): LocalRecord[] {
    if (!isStub(bytes)) return decodeBlock(bytes);
    const stub = decodeStub(bytes);
    const file = this.file(stub);
    if (stub.offset + stub.length > file.length) {
      throw archiveError('archive-damaged', stub.file, `${stub.file} is shorter than recorded`);
    }
    return decodeBlock(file.subarray(stub.offset, stub.offset + stub.length));
  }

  /** The whole verified file of a stub (invariant 3), cached (invariant 5). */
  private file(stub: Stub): Buffer {
    const hit = this.files.get(stub.file);
    if (hit !== undefined) {
      this.files.delete(stub.file);
      this.files.set(stub.file, hit);
      return hit;
    }
    if (this.dir === undefined) {
      throw archiveError(
        'archive-unconfigured',
        stub.file,
        `${stub.file} is archived and this storage has no archive directory (archiveDir, --archive)`,
      );
    }
    const path = join(this.dir, stub.file);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw archiveError(
        'archive-missing',
        stub.file,
        `archive file ${path} cannot be read (${(error as { code?: string }).code ?? String(error)})`,
      );
    }
    if (sha256(bytes) !== stub.sha256) {
      throw archiveError('archive-damaged', stub.file, `archive file ${path} fails its SHA-256`);
    }
    this.files.set(stub.file, bytes);
    this.cachedBytes += bytes.length;
    while (this.files.size > CACHED_FILES || this.cachedBytes > CACHED_BYTES) {
      const [name, old] = this.files.entries().next().value!;
      this.files.delete(name);
      this.cachedBytes -= old.length;
    }
    return bytes;
  }
}

/** A block going into a file: its key and its stored body. */
export interface OutgoingBlock {
  lastPos: number;
  n: number;
  body: Buffer;
}

/** A written, fsynced file (invariant 2) and each block's stub, in the order given. */
export interface WrittenFile {
  file: string;
  bytes: number;
  sha256: string;
  stubs: Buffer[];
}

/** The name of a new file of a space's blocks (invariant 4). */
export function archiveFileName(spaceKey: string, first: number, last: number): string {
  return `${spaceKey}-${first}-${last}-${randomBytes(4).toString('hex')}.blocks`;
}

/** Writes `blocks` of `space` into a new file of `dir` (invariant 2). */
export function writeArchiveFile(
  dir: string,
  file: string,
  space: string,
  blocks: readonly OutgoingBlock[],
): WrittenFile {
  mkdirSync(dir, { recursive: true });
  const index: [number, number, number, number][] = [];
  let offset = 0;
  for (const block of blocks) {
    index.push([block.lastPos, block.n, offset, block.body.length]);
    offset += block.body.length;
  }
  const head = Buffer.from(`${MAGIC}${JSON.stringify({ space, blocks: index })}\n`);
  const content = Buffer.concat([head, ...blocks.map((b) => b.body)]);
  const hash = sha256(content);
  const temp = join(dir, `.${file}.tmp`);
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, join(dir, file));
  syncDir(dir);
  return {
    file,
    bytes: content.length,
    sha256: hash,
    stubs: index.map(([, , at, length]) =>
      encodeStub({ file, offset: head.length + at, length, sha256: hash }),
    ),
  };
}

function syncDir(dir: string): void {
  // Makes the rename durable; not every platform lets a directory be opened for it.
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows: directories cannot be fsynced; the rename is durable there on its own.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A recorded file (the database's row of it). */
export interface RecordedFile {
  file: string;
  space: string;
  bytes: number;
  sha256: string;
}

/** What `archive --check` found: every recorded file checked, and files nobody recorded. */
export interface ArchiveCheck {
  dir: string;
  files: number;
  bytes: number;
  missing: string[];
  damaged: string[];
  /**
   * Files in the directory the database does not record: a crashed run's (deletable), or the one
   * an archive run going on now is writing (not recorded yet: deleting it would fail that run).
   */
  orphans: string[];
}

/** Verifies each recorded file's size and SHA-256 (invariant 3). */
export function checkArchiveFiles(dir: string, recorded: readonly RecordedFile[]): ArchiveCheck {
  const out: ArchiveCheck = {
    dir: resolve(dir),
    files: 0,
    bytes: 0,
    missing: [],
    damaged: [],
    orphans: [],
  };
  const names = new Set<string>();
  for (const { file, bytes, sha256: expected } of recorded) {
    names.add(file);
    out.files += 1;
    const path = join(dir, file);
    if (!existsSync(path)) {
      out.missing.push(file);
      continue;
    }
    let content: Buffer;
    try {
      content = readFileSync(path);
    } catch {
      out.missing.push(file);
      continue;
    }
    out.bytes += content.length;
    if (content.length !== bytes || sha256(content) !== expected) out.damaged.push(file);
  }
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.blocks') && !names.has(name)) out.orphans.push(name);
      else if (name.endsWith('.tmp')) out.orphans.push(name);
    }
  }
  return out;
}

/** Parses a cutoff age: `90d`, `12h`, `30m`, `45s` or milliseconds; throws a TypeError. */
export function parseAge(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  if (match === null) throw new TypeError(`not an age: ${text} (e.g. 90d, 12h)`);
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[
    (match[2] ?? 'ms') as 'ms'
  ];
  return Number(match[1]) * unit;
}
