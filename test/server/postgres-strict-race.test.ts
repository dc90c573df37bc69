/**
 * Two servers on one PostgreSQL database, racing on a strict stream (postgres-ingest.ts): an
 * ingest that waits for a space's lock while another server writes the stream's first strict
 * head must see that head once it holds the lock. A read of the heads in the locking statement
 * itself would use the snapshot taken before the wait, and accept a second event at a taken
 * version.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { STRICT_META } from '../../src/core/strict.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { storedEvent } from '../fixtures/events.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema, queryRows } from './postgres-helpers.ts';

let server: PostgresServer | undefined;
let url = '';

beforeAll(async () => {
  server = await startPostgres();
  url = server.url;
});
afterAll(async () => {
  await server?.stop();
});

const strictEvent = (replica: string, stream: string, version: number) =>
  storedEvent({
    replica,
    seq: 1,
    wall: 1_750_000_000_000 + version,
    stream,
    version,
    id: `${replica}-1`,
    data: { version },
    meta: { [STRICT_META.strict]: true },
  });

it('an ingest that waited for the space lock sees the strict head written while it waited', async () => {
  const schema = freshSchema();
  const storage = postgresStorage(url, { schema, poolSize: 2, compaction: false });
  const other = new pg.Client({ connectionString: url });
  try {
    const log = await storage.openSpace('s');
    // Another server's ingest, in SQL: it holds the space's lock and writes the stream's first
    // strict head (as its ingest of a strict event at version 1 would), then commits.
    await other.connect();
    const [row] = await queryRows<{ space: string }>(url, `SELECT space FROM ${schema}.spaces`);
    await other.query('BEGIN');
    await other.query(`SELECT head FROM ${schema}.spaces WHERE space = $1 FOR UPDATE`, [
      row!.space,
    ]);
    await other.query(
      `INSERT INTO ${schema}.strict_heads (space, stream, version, id) VALUES ($1, $2, 1, $3)`,
      [row!.space, JSON.stringify('acct'), JSON.stringify('aaaaaaaaaaaaaaaa-1')],
    );
    // This server ingests a strict event at the same version: it waits for the lock.
    const ingest = log.ingest([strictEvent('bbbbbbbbbbbbbbbb', 'acct', 1)]);
    for (;;) {
      const waiting = await queryRows<{ n: string }>(
        url,
        `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`,
      );
      if (Number(waiting[0]!.n) > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await other.query('COMMIT');
    const result = await ingest;
    expect(result.written).toEqual([]);
    expect(result.rejected?.map((r) => r.reason)).toEqual(['stale']);
  } finally {
    await other.end().catch(() => undefined);
    await storage.close();
    await dropSchema(url, schema);
  }
});
