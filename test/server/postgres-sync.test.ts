/**
 * Sync servers on postgresStorage, with the real session on both sides: one server and two
 * clients, then two servers sharing one database (one schema) serving the same space, a client
 * on each. Live tailing across servers needs the NOTIFY of the other server's appends.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { memoryStorage, openStore, webSocketTransport } from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { SECRET, waitFor } from './helpers.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema } from './postgres-helpers.ts';
import { connectSession, MemorySyncLog, type SessionClient } from './session-client.ts';

let pg: PostgresServer | undefined;
let schema = '';
const servers: SyncServer[] = [];
const clients: SessionClient[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
  await dropSchema(pg!.url, schema);
});

/** A sync server on this test's schema; its close() closes the storage. */
async function startServer(): Promise<SyncServer> {
  const server = await createSyncServer({
    // Hand-made, unsigned logs (helpers.ts startTestServer).
    requireSignatures: false,
    storage: postgresStorage(pg!.url, { schema, poolSize: 4 }),
    auth: { secret: SECRET },
    log: () => {},
  });
  servers.push(server);
  return server;
}

function tokenFor(sub: string): string {
  return createToken(SECRET, {
    space: 'space-a',
    sub,
    scope: ['read', 'write'],
    expiresInSeconds: 600,
  });
}

async function join(server: SyncServer, log: MemorySyncLog, sub: string): Promise<SessionClient> {
  const client = await connectSession(server.url, tokenFor(sub), log);
  clients.push(client);
  return client;
}

async function converge(first: SyncServer, second: SyncServer): Promise<void> {
  const a = new MemorySyncLog();
  const b = new MemorySyncLog();
  a.append(400);
  b.append(250);
  await join(first, a, 'alice');
  await join(second, b, 'bob');
  await waitFor(() => a.records.length === 650 && b.records.length === 650, 20_000);
  expect(new Set(a.ids())).toEqual(new Set(b.ids()));
  // Live tailing: new appends after the catch-up reach the other client.
  a.append(3);
  b.append(2);
  await waitFor(() => a.records.length === 655 && b.records.length === 655, 10_000);
  expect(new Set(a.ids())).toEqual(new Set(b.ids()));
  expect(a.ids()).toHaveLength(655);
}

describe('sync servers on postgresStorage', () => {
  it('makes two clients of one server converge: catch-up both ways, then live tailing', async () => {
    schema = freshSchema();
    const server = await startServer();
    await converge(server, server);
  });

  it('makes a client of server 1 and a client of server 2 converge, both servers on one database', async () => {
    schema = freshSchema();
    const [one, two] = await Promise.all([startServer(), startServer()]);
    await converge(one!, two!);
    expect(one!.metrics.eventsIn + two!.metrics.eventsIn).toBe(655);
  });

  it('makes two stores (the public API) converge, one on each of two servers on one database', async () => {
    schema = freshSchema();
    const [one, two] = await Promise.all([startServer(), startServer()]);
    const storeOn = async (server: SyncServer, name: string, sub: string) => {
      const store = await openStore({ name, storage: memoryStorage() });
      closers.push(() => store.close());
      // ws's class is structurally a browser WebSocket for what the transport uses.
      store.sync.connect(
        webSocketTransport(server.url, { token: tokenFor(sub), WebSocket: WebSocket as never }),
      );
      return store;
    };
    const a = await storeOn(one!, 'a', 'alice');
    const b = await storeOn(two!, 'b', 'bob');
    await a.append('todo-1', [
      { type: 'added', data: { title: 'milk' } },
      { type: 'done', data: null },
    ]);
    await b.append('todo-2', { type: 'added', data: { title: 'bread' } });
    await waitFor(
      async () => (await a.read()).length === 3 && (await b.read()).length === 3,
      15_000,
    );
    const ids = async (s: typeof a) => (await s.read()).map((e) => e.id);
    expect(await ids(a)).toEqual(await ids(b));
    await waitFor(() => a.sync.status().pending === 0 && b.sync.status().pending === 0, 15_000);
  });
});
