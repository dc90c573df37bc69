/**
 * What postgresStorage keeps for the broker publisher (publisher.ts): the spaces with their heads,
 * a publisher's durable position per space, and the lock that lets one server of the database
 * publish at a time. The invariant numbers refer to the header of storage.ts.
 *
 * Invariants:
 * 1. The lock is a session-level advisory lock (`pg_try_advisory_lock`) held on a connection of
 *    its own, outside the pool: it lasts exactly as long as that connection, so the database
 *    frees it when its server dies (the socket closes) and another server's next try takes it.
 *    TCP keepalive makes a silent network loss end the connection too.
 * 2. Its key is a 64-bit number computed here from the schema and the publisher's name, so two
 *    schemas (two deployments) on one database, or two publishers, never share a lock.
 * 3. Positions move forward only (storage.ts invariant 6): a plain upsert with a WHERE on the
 *    conflict branch (CockroachDB accepts it as written).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PoolClient } from 'pg';
import { loadPg } from './peers.ts';
import { key, unkey } from './postgres-rows.ts';
import type { PublisherLock, SpaceHead } from './storage.ts';

export async function listSpaces(c: PoolClient, schema: string): Promise<SpaceHead[]> {
  const rows = await c.query<{ space: string; head: string }>(
    `SELECT space, head FROM ${schema}.spaces ORDER BY space`,
  );
  return rows.rows.map((row) => ({ space: unkey(row.space), head: Number(row.head) }));
}

export async function publishedPositions(
  c: PoolClient,
  schema: string,
  publisher: string,
): Promise<Map<string, number>> {
  const rows = await c.query<{ space: string; pos: string }>(
    `SELECT space, pos FROM ${schema}.publish_positions WHERE publisher = $1`,
    [key(publisher)],
  );
  return new Map(rows.rows.map((row) => [unkey(row.space), Number(row.pos)]));
}

export async function setPublishedPos(
  c: PoolClient,
  schema: string,
  publisher: string,
  space: string,
  pos: number,
): Promise<void> {
  await c.query(
    `INSERT INTO ${schema}.publish_positions AS p (publisher, space, pos) VALUES ($1, $2, $3)
     ON CONFLICT (publisher, space) DO UPDATE SET pos = excluded.pos WHERE p.pos < excluded.pos`,
    [key(publisher), key(space), pos],
  );
}

/** The advisory lock key of a publisher (invariant 2), as a signed 64-bit decimal. */
export function lockKey(schema: string, publisher: string): string {
  const digest = createHash('sha256').update(`chronicle-publish\0${schema}\0${publisher}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/**
 * Tries to take the publisher's lock on a new connection (invariant 1); undefined, with the
 * connection closed, when another session holds it.
 */
export async function lockPublisher(
  config: pg.ClientConfig,
  schema: string,
  publisher: string,
): Promise<PublisherLock | undefined> {
  const client = new (loadPg().Client)({ ...config, keepAlive: true });
  let markLost: () => void = () => {};
  const lost = new Promise<void>((resolve) => {
    markLost = resolve;
  });
  // An error on the idle locking connection must not crash the process: it means the lock is gone.
  client.on('error', () => markLost());
  client.on('end', () => markLost());
  try {
    await client.connect();
    const result = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS locked',
      [lockKey(schema, publisher)],
    );
    if (result.rows[0]?.locked !== true) {
      await client.end().catch(() => {});
      return undefined;
    }
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return {
    lost,
    // Ending the session frees the lock (invariant 1).
    release: () => client.end().catch(() => {}),
  };
}
