/**
 * The SQLite server storage's sealed events (issue 18; src/server/sqlite-blocks.ts): reads across
 * the boundary of blocks and rows, ids and slots re-sent after sealing, a copy collision whose
 * loser is sealed, and the compactor running by itself.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { type SqliteStorageOptions, sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { makeEvent, makeEvents } from './events.ts';
import { tempDir, waitFor } from './helpers.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A storage on a fresh file; no recent cache, so that reads go to the database. */
function open(options: SqliteStorageOptions = {}): { storage: ServerStorage; path: string } {
  const tmp = tempDir();
  const path = join(tmp.dir, 'server.sqlite');
  const storage = sqliteStorage(path, { recentCacheBytes: 0, ...options });
  cleanups.push(() => tmp.cleanup());
  cleanups.push(() => storage.close());
  return { storage, path };
}

/** Rows left in `events` and events in blocks, read from the file itself. */
function layout(path: string): { rows: number; sealed: number; blocks: number } {
  const db = new Database(path, { readonly: true });
  try {
    const rows = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    const blocks = db
      .prepare('SELECT count(*) AS b, coalesce(sum(n), 0) AS n FROM blocks')
      .get() as {
      b: number;
      n: number;
    };
    return { rows, sealed: blocks.n, blocks: blocks.b };
  } finally {
    db.close();
  }
}

async function readAll(log: SpaceLog, page: number): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  for (;;) {
    const records = await log.readByPos(out[out.length - 1]?.pos ?? 0, page);
    if (records.length === 0) return out;
    out.push(...records);
  }
}

describe('sqliteStorage: sealed events (issue 18)', () => {
  it('reads pages across blocks and the tail as one log, by position, id and slot', async () => {
    const { storage, path } = open({ compaction: { tailEvents: 100, idleMs: 60_000 } });
    const log = await storage.openSpace('s');
    const events = makeEvents(300, { replica: 'boundary', prefix: 'b' });
    await log.ingest(events);
    expect(await storage.compact!()).toEqual({ blocks: 2, events: 200 });
    expect(layout(path)).toEqual({ rows: 100, sealed: 200, blocks: 2 });

    for (const page of [7, 128, 500]) {
      const all = await readAll(log, page);
      expect(all.map((r) => r.pos)).toEqual(events.map((_, i) => i + 1));
      expect(all.map((r) => r.event)).toEqual(events);
    }
    // One page from inside the first block, through the second, into the rows.
    const across = await log.readByPos(120, 100);
    expect(across.map((r) => r.event.id)).toEqual(events.slice(120, 220).map((e) => e.id));
    expect(await log.headPos()).toBe(300);
    for (const pos of [1, 128, 129, 200, 201, 300]) {
      expect(await log.idAtPos(pos)).toBe(events[pos - 1]!.id);
      expect(await log.eventAtSlot('boundary', pos)).toEqual(events[pos - 1]);
    }
    expect(await log.idAtPos(301)).toBeUndefined();
    expect(await log.eventAtSlot('boundary', 301)).toBeUndefined();
    expect(await log.eventAtSlot('other', 1)).toBeUndefined();
  });

  it('recognises an old id re-sent after its event was sealed, alone or among new events', async () => {
    const { storage, path } = open({ compaction: { tailEvents: 0, idleMs: 60_000 } });
    const log = await storage.openSpace('s');
    const events = makeEvents(200, { replica: 'again', prefix: 'a' });
    await log.ingest(events);
    await storage.compact!();
    expect(layout(path).rows).toBe(0);

    expect((await log.ingest([events[5]!])).written).toEqual([]);
    const more = makeEvents(10, { replica: 'again', prefix: 'a', firstSeq: 201 });
    const result = await log.ingest([...events.slice(190), ...more]);
    expect(result.written.map((r) => r.event.id)).toEqual(more.map((e) => e.id));
    expect(result.written.map((r) => r.pos)).toEqual(more.map((_, i) => 201 + i));
    expect(await log.headPos()).toBe(210);
    const ids = (await readAll(log, 1000)).map((r) => r.event.id);
    expect(new Set(ids).size).toBe(210);

    // The same id under another (replica, seq) is a copy of it (core/copies.ts), not a new event:
    // the held copy sorts first and stays.
    const copy = makeEvent({ replica: 'zzzz', seq: 1, id: events[0]!.id, wall: 1_800_000_000_000 });
    const copied = await log.ingest([copy]);
    expect(copied.written).toEqual([]);
    expect(copied.lost?.map((l) => l.event.replica)).toEqual(['zzzz']);
    // A sealed (replica, seq) reused under a new id is refused.
    const reuse = makeEvent({ replica: 'again', seq: 3, id: 'reuse', wall: 1_800_000_000_000 });
    await expect(log.ingest([reuse])).rejects.toMatchObject({ code: 'SEQ_CONFLICT' });
    expect(await log.headPos()).toBe(210);
  });

  it('rewrites the block of a sealed copy that loses: a hole in its place, read, looked up and reopened', async () => {
    const { storage, path } = open({ compaction: { tailEvents: 0, idleMs: 60_000 } });
    const log = await storage.openSpace('s');
    const loser = makeEvent({ replica: 'replicac', seq: 1, id: 'doc', wall: 1_700_000_001_000 });
    const before = makeEvents(5, { replica: 'filler', prefix: 'f' });
    const after = makeEvents(5, { replica: 'filler', prefix: 'f', firstSeq: 6 });
    await log.ingest([...before, loser, ...after]);
    await storage.compact!();
    expect(layout(path)).toEqual({ rows: 0, sealed: 11, blocks: 1 });

    const winner = makeEvent({ replica: 'replicaa', seq: 1, id: 'doc', wall: 1_700_000_000_000 });
    const result = await log.ingest([winner]);
    expect(result.written.map((r) => r.pos)).toEqual([12]);
    expect(result.lost?.[0]?.event.replica).toBe('replicac');
    expect(layout(path)).toEqual({ rows: 1, sealed: 10, blocks: 1 });

    const all = await readAll(log, 4);
    expect(all.map((r) => r.pos)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]);
    expect(all[all.length - 1]!.event).toEqual(winner);
    expect(await log.idAtPos(6)).toBeUndefined();
    expect(await log.eventAtSlot('replicac', 1)).toBeUndefined();
    expect(await log.eventAtSlot('filler', 6)).toEqual(after[0]);
    // Sent again, the loser changes nothing; nor does the winner.
    expect((await log.ingest([loser, winner])).written).toEqual([]);
    await storage.compact!();
    expect((await log.ingest([loser, winner])).written).toEqual([]);
    expect(await log.headPos()).toBe(12);
  });

  it('compacts by itself once the server is quiet, whole blocks only, keeping the tail as rows', async () => {
    const { storage, path } = open({ compaction: { tailEvents: 200, idleMs: 20 } });
    const log = await storage.openSpace('s');
    const events = makeEvents(1000, { replica: 'quiet', prefix: 'q' });
    for (let i = 0; i < events.length; i += 100) await log.ingest(events.slice(i, i + 100));
    // 800 positions are past the tail: six whole blocks of 128; 32 wait for more.
    await waitFor(() => layout(path).blocks === 6, 10_000);
    expect(layout(path)).toEqual({ rows: 232, sealed: 768, blocks: 6 });
    expect((await readAll(log, 300)).map((r) => r.event.id)).toEqual(events.map((e) => e.id));
  });

  it('leaves every event a row with compaction: false', async () => {
    const { storage, path } = open({ compaction: false });
    const log = await storage.openSpace('s');
    await log.ingest(makeEvents(300));
    expect(await storage.compact!()).toEqual({ blocks: 0, events: 0 });
    expect(layout(path)).toEqual({ rows: 300, sealed: 0, blocks: 0 });
  });
});
