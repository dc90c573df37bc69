/**
 * Helpers for tests on postgresStorage: a fresh schema per storage instance keeps tests on one
 * throwaway cluster independent of each other (and of test files running at the same time).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { createToken } from '../../src/server/auth.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { SECRET } from './helpers.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';

/** A schema name no other test uses. */
export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** The rows of one statement, on a connection of its own (for checks on a storage's tables). */
export async function queryRows<R extends pg.QueryResultRow>(
  url: string,
  text: string,
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Drops a test's schema and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * Every record a space holds in the database, in log order, read through postgresStorage: the
 * rows and the sealed blocks alike (issue 18), which a look into the `events` table alone would
 * not show.
 */
export async function storedRecords(
  url: string,
  space: string,
  schema = 'chronicle',
): Promise<LocalRecord[]> {
  const storage = postgresStorage(url, { schema, poolSize: 1, compaction: false });
  try {
    const log = await storage.openSpace(space);
    const out: LocalRecord[] = [];
    for (;;) {
      const page = await log.readByPos(out.at(-1)?.pos ?? 0, 1000);
      if (page.length === 0) return out;
      out.push(...page);
    }
  } finally {
    await storage.close();
  }
}

/**
 * A PostgreSQL cluster for the describe block it is called in, and a sync server on a fresh
 * schema per test: `start()` opens it; `rows()` reads every row of the schema's tables as text
 * (what a look into the database shows, for tests that check what the server stores).
 */
export function syncServerOnPostgres() {
  let pgServer: PostgresServer | undefined;
  let schema = '';
  let server: SyncServer | undefined;
  beforeAll(async () => {
    pgServer = await startPostgres();
  });
  afterAll(async () => {
    await pgServer?.stop();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    if (schema !== '') await dropSchema(pgServer!.url, schema);
    schema = '';
  });
  return {
    async start(): Promise<{ url: string; token(sub: string): string }> {
      schema = freshSchema();
      server = await createSyncServer({
        storage: postgresStorage(pgServer!.url, { schema, poolSize: 4 }),
        auth: { secret: SECRET },
        log: () => {},
      });
      const token = (sub: string) =>
        createToken(SECRET, {
          space: 'space-a',
          sub,
          scope: ['read', 'write'],
          expiresInSeconds: 600,
        });
      return { url: server.url, token };
    },
    async rows(): Promise<{ table: string; row: string }[]> {
      const db = new pg.Client({ connectionString: pgServer!.url });
      await db.connect();
      try {
        const tables = await db.query<{ table_name: string }>(
          'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
          [schema],
        );
        const out: { table: string; row: string }[] = [];
        for (const { table_name } of tables.rows) {
          const result = await db.query<{ row: string }>(
            `SELECT t::text AS row FROM ${schema}."${table_name}" t`,
          );
          for (const { row } of result.rows) out.push({ table: table_name, row });
        }
        return out;
      } finally {
        await db.end();
      }
    },
  };
}
