/**
 * History on demand from a PostgreSQL-backed server (postgres-history.ts, protocol.ts invariant
 * 9): `chronicle-server --postgres` as a child process, over a database whose space is sealed
 * into blocks below a tail of rows, announces history and serves a store's pages by cursor,
 * forward, reversed and by stream.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresStorage } from '../../src/server/postgres.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import { history, historyHarness, pageAll } from './history-helpers.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { startServerProcess } from './server-process.ts';
import { modelRead } from './storage-conformance-history.ts';

let pg: PostgresServer | undefined;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const { storeWith } = historyHarness(cleanups);

describe('history on demand from a --postgres server', () => {
  it("pages the server's history by cursor, forward, reversed and by stream, across blocks and rows", async () => {
    const events = history();
    // Seeded and sealed beforehand, on the schema the CLI uses: blocks below, 100 rows above.
    const seed = postgresStorage(pg!.url, { compaction: { tailEvents: 100, eager: true } });
    await (await seed.openSpace('space-a')).ingest(events);
    expect((await seed.compact!()).events).toBe(200);
    await seed.close();
    const { url } = await startServerProcess({ postgres: pg!.url }, cleanups);
    const { history: source } = await storeWith(url);
    const read = (q: CursorQuery) => source.read(q);
    expect(await pageAll(read, { limit: 100 })).toEqual(modelRead(events, { limit: 10_000 }));
    expect(await pageAll(read, { limit: 37, reverse: true })).toEqual(
      modelRead(events, { limit: 10_000, reverse: true }),
    );
    expect(await pageAll(read, { stream: 'card-1', limit: 25 })).toEqual(
      modelRead(events, { stream: 'card-1', limit: 10_000 }),
    );
  });
});
