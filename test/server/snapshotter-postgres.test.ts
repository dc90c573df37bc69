/**
 * The snapshotter on PostgreSQL (snapshotter-suite.ts), and its lock: while one server's
 * snapshotter runs, another cannot take it (snapshotter.ts invariant 4).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresStorage } from '../../src/server/postgres.ts';
import { SNAPSHOT_LOCK, Snapshotter } from '../../src/server/snapshotter.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema } from './postgres-helpers.ts';
import { countsProjection, events, snapshotterSuite } from './snapshotter-suite.ts';

let server: PostgresServer | undefined;
let url = '';
beforeAll(async () => {
  server = await startPostgres();
  url = server.url;
});
afterAll(async () => {
  await server?.stop();
});

const schemas: string[] = [];
afterEach(async () => {
  for (const schema of schemas.splice(0)) await dropSchema(url, schema).catch(() => {});
});

describe('snapshotter on PostgreSQL', () => {
  snapshotterSuite(() => {
    const schema = freshSchema();
    schemas.push(schema);
    return { open: () => postgresStorage(url, { schema, poolSize: 4 }) };
  });

  it('builds on one server of a database at a time', async () => {
    const schema = freshSchema();
    schemas.push(schema);
    const a: ServerStorage = postgresStorage(url, { schema, poolSize: 2 });
    const b: ServerStorage = postgresStorage(url, { schema, poolSize: 2 });
    const snapshotter = new Snapshotter(
      a,
      { projections: [countsProjection()], every: 5 },
      { log: () => {} },
    );
    try {
      await (await a.openSpace('s1')).ingest(events('replicaa', 1, 6));
      snapshotter.start();
      await snapshotter.whenIdle();
      expect(await b.lockPublisher(SNAPSHOT_LOCK)).toBeUndefined();
      // Server b answers from the database all the same.
      const other = new Snapshotter(b, { projections: [countsProjection()] }, { log: () => {} });
      expect((await other.latest('s1', [{ name: 'counts', version: 1 }]))?.pos).toBe(6);
    } finally {
      await snapshotter.close();
      await a.close();
      await b.close();
    }
  });
});
