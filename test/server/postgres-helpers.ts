/**
 * Helpers for tests on postgresStorage: a fresh schema per storage instance keeps tests on one
 * throwaway cluster independent of each other (and of test files running at the same time).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A schema name no other test uses. */
export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
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
