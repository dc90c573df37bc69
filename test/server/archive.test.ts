/**
 * Archival of old blocks to cold files (issue 18 part 4; src/server/archive-files.ts,
 * sqlite-archive.ts, postgres-archive.ts), on SQLite and on a real PostgreSQL: reads across
 * archived ranges give what they gave before; a missing or damaged file fails the read with a
 * coded StorageError (archive-files.ts 3) and `checkArchive` reports it; an old id re-arriving
 * is still deduped; an archived block rewritten by a lost copy comes back into the database.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { parseAge } from '../../src/server/archive-files.ts';
import { parseCliArgs } from '../../src/server/cli.ts';
import { parseArchiveArgs } from '../../src/server/cli-archive.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import { makeEvents } from './events.ts';
import { tempDir } from './helpers.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema } from './postgres-helpers.ts';

const TOTAL = 2000;
/** The events' walls run from 1_700_000_000_000 up (events.ts): this is after all of them. */
const AFTER_ALL = 1_800_000_000_000;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let pgServer: PostgresServer | undefined;
beforeAll(async () => {
  pgServer = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pgServer?.stop();
});

interface Kind {
  name: string;
  /** A storage on a fresh database whose archive is `archiveDir`; reopen gives a second one. */
  make(archiveDir: string): { open(dir?: string | null): ServerStorage };
}

const kinds: Kind[] = [
  {
    name: 'sqlite',
    make(archiveDir) {
      const tmp = tempDir();
      cleanups.push(() => tmp.cleanup());
      const path = join(tmp.dir, 'server.sqlite');
      return {
        open: (dir = archiveDir) =>
          sqliteStorage(path, {
            ...(dir === null ? {} : { archiveDir: dir }),
            compaction: { tailEvents: 100, idleMs: 60_000 },
          }),
      };
    },
  },
  {
    name: 'postgres',
    make(archiveDir) {
      const schema = freshSchema();
      const url = pgServer!.url;
      cleanups.push(() => dropSchema(url, schema));
      return {
        open: (dir = archiveDir) =>
          postgresStorage(url, {
            schema,
            poolSize: 2,
            ...(dir === null ? {} : { archiveDir: dir }),
            compaction: { tailEvents: 100, idleMs: 60_000, eager: true },
          }),
      };
    },
  },
];

async function readAll(log: SpaceLog): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  for (;;) {
    const page = await log.readByPos(out.at(-1)?.pos ?? 0, 300);
    if (page.length === 0) return out;
    out.push(...page);
  }
}

async function histories(log: SpaceLog, events: readonly StoredEventRecord[]) {
  const queries: CursorQuery[] = [
    { limit: 5000 },
    { limit: 5000, reverse: true },
    { limit: 50, after: events[700]!.cursor },
    { limit: 50, after: events[1500]!.cursor, reverse: true },
    { limit: 5000, stream: 'odd' },
  ];
  const out: string[][] = [];
  for (const q of queries) out.push((await log.readByCursor!(q)).map((r) => r.event.id));
  return out;
}

/** A fresh storage holding TOTAL events in two streams, compacted (all but 100 in blocks). */
async function filled(kind: Kind) {
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup());
  const archiveDir = join(tmp.dir, 'archive');
  const db = kind.make(archiveDir);
  const storage = db.open();
  cleanups.push(() => storage.close());
  const events = makeEvents(TOTAL, { replica: 'archived', prefix: `a${Math.random()}` }).map(
    (e, i) => ({ ...e, stream: i % 2 === 0 ? 'even' : 'odd' }),
  );
  const log = await storage.openSpace('board');
  for (let i = 0; i < TOTAL; i += 500) await log.ingest(events.slice(i, i + 500));
  await storage.compact!();
  return { storage, log, events, archiveDir, db };
}

async function rejection(promise: Promise<unknown>): Promise<{ code: unknown; reason: unknown }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code?: string; details?: { reason?: unknown } };
    return { code: e.code, reason: e.details?.reason };
  }
  throw new Error('expected a rejection');
}

describe.each(kinds)('archival on $name', (kind) => {
  it('reads the same events by position, cursor, slot and id after archiving as before', async () => {
    const { storage, log, events, archiveDir, db } = await filled(kind);
    const before = await readAll(log);
    const history = await histories(log, events);
    expect(before).toHaveLength(TOTAL);

    const report = await storage.archive!({ before: AFTER_ALL, fileBlocks: 4 });
    expect(report.events).toBeGreaterThanOrEqual(TOTAL - 100 - 128);
    expect(report.files).toBe(Math.ceil(report.blocks / 4));
    expect(readdirSync(archiveDir).filter((f) => f.endsWith('.blocks'))).toHaveLength(report.files);
    // A second run finds nothing left to move.
    expect((await storage.archive!({ before: AFTER_ALL })).blocks).toBe(0);

    expect(await readAll(log)).toEqual(before);
    expect(await histories(log, events)).toEqual(history);
    expect(await log.eventAtSlot('archived', 10)).toEqual(events[9]);
    expect(await log.idAtPos(before[10]!.pos)).toBe(events[10]!.id);
    const check = await storage.checkArchive!();
    expect(check).toMatchObject({ files: report.files, missing: [], damaged: [], orphans: [] });

    // A fresh storage (a restarted server) reads the files too.
    await storage.close();
    const again = db.open();
    cleanups.push(() => again.close());
    expect(await readAll(await again.openSpace('board'))).toEqual(before);
  });

  it('archives only blocks whose newest event is older than the cutoff', async () => {
    const { storage, log, events } = await filled(kind);
    const before = await readAll(log);
    const cutoff = events[1000]!.time;
    const report = await storage.archive!({ before: cutoff });
    expect(report.events).toBeGreaterThan(0);
    expect(report.events).toBeLessThanOrEqual(1000);
    expect(await readAll(log)).toEqual(before);
  });

  it('still dedupes an old id re-arriving after its block was archived', async () => {
    const { storage, log, events } = await filled(kind);
    await storage.archive!({ before: AFTER_ALL });
    const head = await log.headPos();
    const again = await log.ingest(events.slice(5, 25));
    expect(again.written).toEqual([]);
    expect(await log.headPos()).toBe(head);
    expect(await readAll(log)).toHaveLength(TOTAL);
  });

  it('fails reads of a missing or damaged file with a coded StorageError, and checkArchive reports both', async () => {
    const { storage, events, archiveDir, db } = await filled(kind);
    await storage.archive!({ before: AFTER_ALL, fileBlocks: 2 });
    const files = readdirSync(archiveDir)
      .filter((f) => f.endsWith('.blocks'))
      .sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
    expect(files.length).toBeGreaterThanOrEqual(3);
    // The first file (positions 1..256) goes missing; the second is damaged in its last byte.
    rmSync(join(archiveDir, files[0]!));
    const damaged = join(archiveDir, files[1]!);
    const bytes = readFileSync(damaged);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    writeFileSync(damaged, bytes);

    // A fresh storage: nothing of the files is cached.
    await storage.close();
    const cold = db.open();
    cleanups.push(() => cold.close());
    const check = await cold.checkArchive!();
    expect(check.missing).toEqual([files[0]]);
    expect(check.damaged).toEqual([files[1]]);
    const space = await cold.openSpace('board');
    expect(await rejection(space.readByPos(0, 10))).toEqual({
      code: 'STORAGE',
      reason: 'archive-missing',
    });
    expect(await rejection(space.readByPos(300, 10))).toEqual({
      code: 'STORAGE',
      reason: 'archive-damaged',
    });
    expect(await rejection(space.readByCursor!({ limit: 10 }))).toMatchObject({ code: 'STORAGE' });
    expect(await rejection(space.eventAtSlot('archived', 3))).toEqual({
      code: 'STORAGE',
      reason: 'archive-missing',
    });
    // An old id re-arriving whose block cannot be read fails its ingest: never stored twice.
    const head = await space.headPos();
    await rejection(space.ingest(events.slice(2, 4)));
    expect(await space.headPos()).toBe(head);
    // Positions past the damaged files still read.
    const tail = await space.readByPos(TOTAL - 50, 100);
    expect(tail.map((r) => r.event.id)).toEqual(events.slice(TOTAL - 50).map((e) => e.id));
  });

  it('gives a storage pointed at the wrong archive directory, or none, a coded error, not a gap', async () => {
    const { storage, db, archiveDir } = await filled(kind);
    await storage.archive!({ before: AFTER_ALL });
    await storage.close();
    const wrong = db.open(`${archiveDir}-elsewhere`);
    cleanups.push(() => wrong.close());
    expect(await rejection((await wrong.openSpace('board')).readByPos(0, 10))).toEqual({
      code: 'STORAGE',
      reason: 'archive-missing',
    });
    expect((await wrong.checkArchive!()).missing.length).toBeGreaterThan(0);
    await wrong.close();
    // SQLite falls back on its default (`<file>-archive`); PostgreSQL has none.
    const none = db.open(null);
    cleanups.push(() => none.close());
    expect(await rejection((await none.openSpace('board')).readByPos(0, 10))).toEqual({
      code: 'STORAGE',
      reason: kind.name === 'sqlite' ? 'archive-missing' : 'archive-unconfigured',
    });
  });
});

describe('the archive flags', () => {
  it('reads ages, the archive command and the server flag, and refuses bad ones', () => {
    expect(parseAge('90d')).toBe(90 * 86_400_000);
    expect(parseAge('12h')).toBe(12 * 3_600_000);
    expect(parseAge('1500')).toBe(1500);
    expect(() => parseAge('ninety days')).toThrow(TypeError);
    const now = Date.now();
    const args = parseArchiveArgs(['--before', '1d', '--to', 'cold'], {}, 'd.sqlite');
    expect(args).toMatchObject({ data: 'd.sqlite', dir: 'cold', check: false });
    expect(args.check === false && Math.abs(args.beforeMs - (now - 86_400_000))).toBeLessThan(
      60_000,
    );
    expect(
      parseArchiveArgs(['--check'], { CHRONICLE_POSTGRES: 'pg://db', CHRONICLE_ARCHIVE: 'a' }, 'd'),
    ).toEqual({ postgres: 'pg://db', dir: 'a', check: true });
    // PostgreSQL has no default directory; an archive run needs a cutoff.
    expect(() => parseArchiveArgs(['--check', '--postgres', 'pg://db'], {}, 'd')).toThrow(/--to/);
    expect(() => parseArchiveArgs([], {}, 'd')).toThrow(/--before/);
    expect(() => parseArchiveArgs(['--before', '1d', '--file-blocks', '0'], {}, 'd')).toThrow(
      /--file-blocks/,
    );
    expect(parseCliArgs(['--archive', '/srv/cold'], {}).archive).toBe('/srv/cold');
    expect(parseCliArgs([], { CHRONICLE_ARCHIVE: 'x' }).archive).toBe('x');
    expect(parseCliArgs([], {}).archive).toBeUndefined();
  });
});
