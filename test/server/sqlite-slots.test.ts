/**
 * sqliteStorage on a file written before the (replica, seq) index, whose rows hold a (replica,
 * seq) twice (sqlite.ts invariant 3, sqlite-schema.ts createSlotIndex; RELIABILITY 34): it still
 * opens, reads both rows, and refuses the next reuse of any (replica, seq) with SEQ_CONFLICT.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { makeEvent } from './events.ts';
import { tempDir } from './helpers.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('sqliteStorage: files that hold a (replica, seq) twice', () => {
  it('opens such a file with a plain slot index, and refuses a reused (replica, seq) by lookup', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'old.sqlite');
    const first = makeEvent({ replica: 'restored', seq: 1, id: 'first' });
    const storage = sqliteStorage(path);
    await (await storage.openSpace('s')).ingest([first]);
    await storage.close();
    // What a server before the slot index could store: a second id at (restored, 1).
    const db = new Database(path);
    db.exec('DROP INDEX events_by_slot');
    db.prepare(
      `INSERT INTO events (space, pos, id, replica, seq, stream, cursor, body)
       SELECT space, 2, 'second', replica, seq, stream, cursor || 'x', body FROM events WHERE pos = 1`,
    ).run();
    db.prepare('UPDATE spaces SET head = 2').run();
    db.close();

    const reopened = sqliteStorage(path);
    try {
      const log = await reopened.openSpace('s');
      expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual(['first', 'second']);
      const fresh = makeEvent({ replica: 'restored', seq: 2, id: 'fresh' });
      const reuse = makeEvent({
        replica: 'restored',
        seq: 2,
        id: 'reuse',
        wall: 1_900_000_000_000,
      });
      expect((await log.ingest([fresh])).written.map((r) => r.pos)).toEqual([3]);
      await expect(log.ingest([reuse])).rejects.toMatchObject({
        code: 'SEQ_CONFLICT',
        eventId: 'reuse',
      });
      expect(await log.headPos()).toBe(3);
    } finally {
      await reopened.close();
    }
  });
});
