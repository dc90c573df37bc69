/**
 * The clock tolerance on a sync server over postgresStorage (the SQLite case is in
 * clock-skew.test.ts): the same refusal, whatever the storage (session-receiver.ts invariant 4).
 */
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { createToken } from '../../src/server/auth.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { serverRefusesEventsAhead } from './clock-refusal.ts';
import { SECRET } from './helpers.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema } from './postgres-helpers.ts';

let pg: PostgresServer | undefined;
let schema = '';
let server: SyncServer | undefined;

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await dropSchema(pg!.url, schema);
});

describe('clock tolerance on a PostgreSQL-backed server', () => {
  it('refuses alone an event stamped beyond its clock + tolerance: nothing of its batch stored, the resend without it stored (K1)', async () => {
    schema = freshSchema();
    server = await createSyncServer({
      // Hand-made, unsigned logs (helpers.ts startTestServer).
      requireSignatures: false,
      storage: postgresStorage(pg!.url, { schema, poolSize: 2 }),
      auth: { secret: SECRET },
      log: () => {},
    });
    const token = createToken(SECRET, {
      space: 'space-a',
      sub: 'skewed',
      scope: ['read', 'write'],
      expiresInSeconds: 600,
    });
    await serverRefusesEventsAhead(server.url, token);
  });
});
