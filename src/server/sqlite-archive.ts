/**
 * Archival on the SQLite server storage (issue 18 part 4; archive-files.ts for the files): the
 * bodies of blocks whose newest event is older than a cutoff move to cold files; their rows,
 * id hashes, slot runs, cursor ranges and stream entries stay (sqlite-blocks.ts 3, 4;
 * sqlite-history.ts 2, 3), so dedupe and history still find them.
 *
 * Invariants:
 * 1. Age is the event time: a block moves when its `max_cursor` (whose HLC prefix sorts by wall
 *    time, core/hlc.ts 3) is below the cutoff's HLC. Indexed (blocks_by_max_cursor), and
 *    stable across servers and restores, which a "when it was stored" clock would not be.
 * 2. A file is written and fsynced with no lock held (archive-files.ts 2); then ONE immediate
 *    transaction replaces each block's body by its stub and records the file. A block whose body
 *    changed meanwhile (a copy that lost rewrote it: sqlite-blocks.ts 5) keeps its new body; its
 *    old bytes in the file are never read.
 * 3. A rewrite of an archived block (sqlite-blocks.ts 5) stores its new body in the database
 *    again: the block is back, the file keeps the old bytes, still recorded and checked.
 */
import type Database from 'better-sqlite3';
import { encodeHlc } from '../core/hlc.ts';
import {
  type ArchiveCheck,
  archiveFileName,
  checkArchiveFiles,
  type RecordedFile,
  STUB_FORMAT,
  writeArchiveFile,
} from './archive-files.ts';
import type { ArchiveOptions, ArchiveReport } from './storage.ts';

export const ARCHIVE_SCHEMA = `
CREATE TABLE IF NOT EXISTS archive_files (
  file TEXT PRIMARY KEY,
  sid INTEGER NOT NULL,
  first_pos INTEGER NOT NULL,
  last_pos INTEGER NOT NULL,
  blocks INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  archived_at INTEGER NOT NULL
);
`;

const DEFAULT_FILE_BLOCKS = 256;

interface Candidate {
  bid: number;
  first_pos: number;
  last_pos: number;
  n: number;
  body: Buffer;
}

/** Archives every space's old blocks into `dir` (invariants 1, 2). */
export function archiveSqlite(
  db: Database.Database,
  dir: string,
  options: ArchiveOptions,
): ArchiveReport {
  db.exec(ARCHIVE_SCHEMA);
  const cutoff = encodeHlc({ wall: Math.max(0, Math.floor(options.before)), counter: 0 });
  const fileBlocks = options.fileBlocks ?? DEFAULT_FILE_BLOCKS;
  const spaces = db
    .prepare<[], { sid: number; space: string }>('SELECT sid, space FROM space_log ORDER BY sid')
    .all();
  const candidates = db.prepare<[number, string, number, number], Candidate>(
    `SELECT bid, first_pos, last_pos, n, body FROM blocks
     WHERE sid = ? AND max_cursor < ? AND substr(body, 1, 1) <> x'${STUB_FORMAT.toString(16)}'
       AND last_pos > ? ORDER BY last_pos LIMIT ?`,
  );
  const bodyOf = db.prepare<[number], { n: number; body: Buffer }>(
    'SELECT n, body FROM blocks WHERE bid = ?',
  );
  const setBody = db.prepare<[Buffer, number]>('UPDATE blocks SET body = ? WHERE bid = ?');
  const record = db.prepare<[string, number, number, number, number, number, string, number]>(
    'INSERT INTO archive_files (file, sid, first_pos, last_pos, blocks, bytes, sha256, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const report: ArchiveReport = { dir, files: 0, blocks: 0, events: 0, bytes: 0 };
  for (const { sid, space } of spaces) {
    let after = 0;
    for (;;) {
      const blocks = candidates.all(sid, cutoff, after, fileBlocks);
      if (blocks.length === 0) break;
      after = blocks[blocks.length - 1]!.last_pos;
      const first = blocks[0]!.first_pos;
      const name = archiveFileName(`s${sid}`, first, after);
      const written = writeArchiveFile(
        dir,
        name,
        space,
        blocks.map((b) => ({ lastPos: b.last_pos, n: b.n, body: b.body })),
      );
      const moved = db
        .transaction(() => {
          let count = 0;
          let events = 0;
          blocks.forEach((block, i) => {
            const now = bodyOf.get(block.bid);
            if (now === undefined || now.n !== block.n || !now.body.equals(block.body)) return;
            setBody.run(written.stubs[i]!, block.bid);
            count += 1;
            events += block.n;
          });
          if (count > 0) {
            record.run(name, sid, first, after, count, written.bytes, written.sha256, Date.now());
          }
          return { count, events };
        })
        .immediate();
      // A file none of whose blocks moved is an orphan (archive --check lists it).
      if (moved.count === 0) continue;
      report.files += 1;
      report.blocks += moved.count;
      report.events += moved.events;
      report.bytes += written.bytes;
    }
  }
  return report;
}

/** Checks every file the database records (archive-files.ts 3). */
export function checkSqliteArchive(db: Database.Database, dir: string): ArchiveCheck {
  db.exec(ARCHIVE_SCHEMA);
  const recorded = db
    .prepare<[], RecordedFile>(
      'SELECT a.file, s.space, a.bytes, a.sha256 FROM archive_files AS a JOIN space_log AS s ON s.sid = a.sid ORDER BY a.file',
    )
    .all();
  return checkArchiveFiles(dir, recorded);
}
