/**
 * Crypto-shredding through a real sync server: after a shred syncs, the stream's wrapped key is
 * in no byte of the server's SQLite files (secure_delete, then the WAL checkpointed on close) and
 * in no row of its PostgreSQL tables; every replica, and one that joins later, reads the stream
 * as shredded and the rest as before.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  defineProjection,
  type EventStore,
  generateEncryptionKey,
  type LooseEvents,
} from '../../src/index.ts';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';
import { syncServerOnPostgres } from './postgres-helpers.ts';
import { storeClients } from './store-clients.ts';

type Events = LooseEvents<{ title: string }>;

const titles = defineProjection<string[], Events>({
  name: 'titles',
  version: 1,
  initial: () => [],
  apply: (list, e) => [...list, e.data.title],
});

const clients = storeClients();

function client(url: string, token: string, key?: Uint8Array): Promise<EventStore<Events>> {
  return clients.open<Events>(url, token, {
    projections: [titles],
    ...(key && { encryption: { key } }),
  });
}

const wrappedOf = async (store: EventStore<Events>, stream: string) =>
  (await store.read({ stream: '$keyring' }))
    .map((e) => e.data as { stream?: string; wrapped?: string } | null)
    .find((d) => d?.stream === stream)?.wrapped;

/** Alice shreds a stream Bob holds too; Carol joins afterwards. Returns the erased key's text. */
async function scenario(
  url: string,
  token: (sub: string) => string,
  beforeShred: (wrapped: string) => void = () => {},
): Promise<string> {
  const key = generateEncryptionKey();
  const alice = await client(url, token('alice'), key);
  const bob = await client(url, token('bob'), key);
  await alice.append('card-1', { type: 'added', data: { title: 'secret' } });
  await alice.append('card-2', { type: 'added', data: { title: 'kept' } });
  await waitFor(async () => (await bob.state(titles)).length === 2, 10_000);
  const wrapped = await wrappedOf(alice, 'card-1');
  expect(wrapped).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  await waitFor(() => alice.sync.status().pending === 0);
  beforeShred(wrapped!);

  await alice.shred('card-1');
  await waitFor(async () => (await bob.state(titles)).length === 1, 10_000);
  expect(await bob.state(titles)).toEqual(['kept']);
  await waitFor(async () => (await wrappedOf(bob, 'card-1')) === undefined, 10_000);

  const carol = await client(url, token('carol'), key);
  await waitFor(async () => (await carol.read()).length === 2, 10_000);
  expect(await carol.state(titles)).toEqual(['kept']);
  expect(await wrappedOf(carol, 'card-1')).toBeUndefined();
  expect((await carol.read({ stream: 'card-1' }))[0]).toMatchObject({
    data: null,
    meta: { $shredded: true },
  });
  // Everyone is idle: the server holds what they hold.
  await waitFor(() =>
    [alice, bob, carol].every(
      (s) => s.sync.status().state === 'idle' && s.sync.status().pending === 0,
    ),
  );
  return wrapped!;
}

describe('shredding through a sync server on SQLite', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('leaves the erased key in no byte of the server files', async () => {
    t = await startTestServer();
    const server = t;
    const dir = dirname(server.path);
    const held = (text: string) =>
      readdirSync(dir).filter((name) => readFileSync(join(dir, name)).includes(Buffer.from(text)));
    const wrapped = await scenario(
      server.server.url,
      (sub) => server.token({ sub }),
      // The control: before the shred, the server's files do hold the wrapped key.
      (text) => expect(held(text).length).toBeGreaterThan(0),
    );
    await clients.closeAll();
    // Closing checkpoints the WAL into the database file; secure_delete zeroed the old row.
    await server.server.close();
    expect(held(wrapped)).toEqual([]);
  });
});

describe('shredding through a sync server on PostgreSQL', () => {
  const postgres = syncServerOnPostgres();

  it('leaves the erased key in no row', async () => {
    const { url, token } = await postgres.start();
    const wrapped = await scenario(url, token);
    expect((await postgres.rows()).filter((r) => r.row.includes(wrapped))).toEqual([]);
  });
});
