/**
 * History in the total order on the SQLite server storage (src/server/sqlite-history.ts): the
 * conformance suite on plain rows, on everything sealed, and on blocks and a tail of rows; and
 * files of layout 2 (blocks without cursor ranges) migrate and read whole.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SqliteStorageOptions, sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvents } from './events.ts';
import { historyConformance, modelRead } from './storage-conformance-history.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'chronicle-history-'));
}

const configs: { name: string; options: SqliteStorageOptions; compact: boolean }[] = [
  { name: 'sqlite, rows only', options: { compaction: false }, compact: false },
  {
    name: 'sqlite, everything sealed',
    options: { compaction: { tailEvents: 0, eager: true }, recentCacheBytes: 0 },
    compact: true,
  },
  {
    // Blocks below, a tail of 60 rows above: reads cross the boundary.
    name: 'sqlite, blocks and a tail of rows',
    options: { compaction: { tailEvents: 60, idleMs: 60_000, maxDelayMs: 60_000 } },
    compact: true,
  },
];

describe.each(configs)('history conformance: $name', ({ options, compact }) => {
  let dir: string;
  let storage: ServerStorage;
  beforeEach(() => {
    dir = tempDir();
    storage = sqliteStorage(join(dir, 'db.sqlite'), options);
  });
  afterEach(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  historyConformance(() => ({
    openSpace: (space) => storage.openSpace(space),
    settle: async () => {
      if (compact) await storage.compact!();
    },
  }));
});

describe('layout 3: the cursor ranges of blocks', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates a layout-2 file (blocks without ranges) and reads its history whole', async () => {
    dir = tempDir();
    const path = join(dir, 'db.sqlite');
    const events = makeEvents(1000, { replica: 'layouttwoaaaaaa' });
    let storage = sqliteStorage(path, { compaction: { tailEvents: 100 } });
    await (await storage.openSpace('s')).ingest(events);
    await storage.compact!();
    await storage.close();
    // Back to layout 2: the columns, their indexes and the stream entries gone.
    const db = new Database(path);
    db.exec(`DROP INDEX blocks_by_min_cursor; DROP INDEX blocks_by_max_cursor;
      DROP INDEX blocks_unranged; DROP TABLE block_streams;
      ALTER TABLE blocks DROP COLUMN min_cursor; ALTER TABLE blocks DROP COLUMN max_cursor;`);
    expect((db.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n).toBe(8);
    db.close();
    storage = sqliteStorage(path, { compaction: false });
    try {
      const log = await storage.openSpace('s');
      const query = { stream: events[0]!.stream, reverse: true, limit: 2000 };
      expect((await log.readByCursor!(query)).map((r) => r.event.id)).toEqual(
        modelRead(events, query),
      );
    } finally {
      await storage.close();
    }
  });

  it('gives a block a layout-2 server sealed into a layout-3 file its range before reading (history 4)', async () => {
    dir = tempDir();
    const path = join(dir, 'db.sqlite');
    const events = makeEvents(500, { replica: 'layouttwobbbbbbb' });
    let storage = sqliteStorage(path, { compaction: { tailEvents: 0 } });
    await (await storage.openSpace('s')).ingest(events);
    await storage.compact!();
    await storage.close();
    // What a layout-2 server's INSERT leaves: no range, no stream entries.
    const db = new Database(path);
    db.exec('UPDATE blocks SET min_cursor = NULL, max_cursor = NULL; DELETE FROM block_streams;');
    db.close();
    storage = sqliteStorage(path, { compaction: false });
    try {
      const log = await storage.openSpace('s');
      for (const query of [{ limit: 1000 }, { stream: events[1]!.stream, limit: 1000 }]) {
        expect((await log.readByCursor!(query)).map((r) => r.event.id)).toEqual(
          modelRead(events, query),
        );
      }
    } finally {
      await storage.close();
    }
  });
});
