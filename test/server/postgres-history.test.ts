/**
 * History in the total order on postgresStorage (src/server/postgres-history.ts): the
 * conformance suite on plain rows, on everything sealed, and on blocks and a tail of rows; and
 * blocks without a cursor range (a database from before history, or a block sealed by a server of
 * that code during a rolling upgrade) read whole and get their range.
 */
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type PostgresStorageOptions, postgresStorage } from '../../src/server/postgres.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvents } from './events.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema, queryRows } from './postgres-helpers.ts';
import { historyConformance, modelRead } from './storage-conformance-history.ts';

let server: PostgresServer | undefined;
let url = '';
beforeAll(async () => {
  server = await startPostgres();
  url = server.url;
});
afterAll(async () => {
  await server?.stop();
});

const sql = <R extends pg.QueryResultRow>(text: string) => queryRows<R>(url, text);

const configs: { name: string; options: PostgresStorageOptions; compact: boolean }[] = [
  { name: 'postgres, rows only', options: { compaction: false }, compact: false },
  {
    name: 'postgres, everything sealed',
    options: { compaction: { tailEvents: 0, eager: true, idleMs: 60_000 }, recentCacheBytes: 0 },
    compact: true,
  },
  {
    // Blocks below, a tail of 60 rows above: reads cross the boundary.
    name: 'postgres, blocks and a tail of rows',
    options: { compaction: { tailEvents: 60, idleMs: 60_000, maxDelayMs: 60_000 } },
    compact: true,
  },
];

describe.each(configs)('history conformance: $name', ({ options, compact }) => {
  let schema = '';
  let storage: ServerStorage;
  beforeEach(() => {
    schema = freshSchema();
    storage = postgresStorage(url, { schema, poolSize: 4, ...options });
  });
  afterEach(async () => {
    await storage.close();
    await dropSchema(url, schema);
  });
  historyConformance(() => ({
    openSpace: (space) => storage.openSpace(space),
    settle: async () => {
      if (compact) await storage.compact!();
    },
  }));
});

describe('blocks without a cursor range (postgres-history.ts 17)', () => {
  let schema = '';
  const opened: ServerStorage[] = [];
  function instance(options: PostgresStorageOptions = {}): ServerStorage {
    const storage = postgresStorage(url, {
      schema,
      poolSize: 2,
      compaction: { tailEvents: 100, eager: true, idleMs: 60_000 },
      ...options,
    });
    opened.push(storage);
    return storage;
  }
  afterEach(async () => {
    for (const storage of opened.splice(0)) await storage.close().catch(() => {});
    await dropSchema(url, schema);
  });

  it('gives the blocks of a database from before history their ranges when servers start on it at once, and reads it whole', async () => {
    schema = freshSchema();
    const events = makeEvents(1000, { replica: 'pghistoryaaaaaaa' });
    const first = instance();
    await (await first.openSpace('s')).ingest(events);
    await first.compact!();
    await first.close();
    // Back to the tables of the code before history: no columns, no indexes.
    await sql(`DROP INDEX ${schema}.events_by_cursor, ${schema}.event_blocks_by_min_cursor,
      ${schema}.event_blocks_by_max_cursor, ${schema}.event_blocks_unranged;
      ALTER TABLE ${schema}.event_blocks DROP COLUMN min_cursor, DROP COLUMN max_cursor,
      DROP COLUMN streams`);
    const servers = [instance({ compaction: false }), instance(), instance()];
    const logs = await Promise.all(servers.map((s) => s.openSpace('s')));
    expect(
      await sql(`SELECT count(*)::int AS n FROM ${schema}.event_blocks WHERE min_cursor IS NULL`),
    ).toEqual([{ n: 0 }]);
    const query = { stream: events[0]!.stream, reverse: true, limit: 2000 };
    for (const log of logs) {
      expect((await log.readByCursor!(query)).map((r) => r.event.id)).toEqual(
        modelRead(events, query),
      );
    }
  });

  it('reads a block a server of the code before history sealed (no range) during a rolling upgrade, and fills its range', async () => {
    schema = freshSchema();
    const events = makeEvents(500, { replica: 'pghistorybbbbbbb' });
    const storage = instance({ compaction: { tailEvents: 0, eager: true, idleMs: 60_000 } });
    const log = await storage.openSpace('s');
    await log.ingest(events);
    await storage.compact!();
    // What an older server's INSERT leaves: no range, no streams.
    await sql(
      `UPDATE ${schema}.event_blocks SET min_cursor = NULL, max_cursor = NULL, streams = NULL`,
    );
    for (const query of [
      { limit: 1000 },
      { stream: events[1]!.stream, limit: 1000 },
      { reverse: true, limit: 7 },
    ]) {
      expect((await log.readByCursor!(query)).map((r) => r.event.id)).toEqual(
        modelRead(events, query),
      );
    }
    expect(
      await sql(`SELECT count(*)::int AS n FROM ${schema}.event_blocks WHERE min_cursor IS NULL`),
    ).toEqual([{ n: 0 }]);
  });
});
