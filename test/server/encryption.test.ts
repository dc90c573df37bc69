/**
 * End-to-end encryption through a real sync server (SQLite file, PostgreSQL): the server stores,
 * orders, dedupes and decides strict streams on what it cannot read. No byte of the server's
 * files or tables holds the app's data; a replica with the key reads it all; one without keeps
 * syncing and reports it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  defineAggregate,
  type EventStore,
  generateEncryptionKey,
  type LooseEvents,
  reject,
} from '../../src/index.ts';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';
import { syncServerOnPostgres } from './postgres-helpers.ts';
import { storeClients } from './store-clients.ts';

type Events = LooseEvents<{ title?: string; amount?: number }>;

/** A strict stream's rule, on data the server cannot read. */
const wallet = defineAggregate<number, Events>({
  name: 'wallet',
  initial: () => 0,
  apply: (balance, e) => balance + (e.data.amount ?? 0),
  commands: {
    spend: (balance, input: { amount: number; note: string }) =>
      balance < input.amount
        ? reject('NO_FUNDS', 'not enough')
        : { type: 'spent', data: { amount: -input.amount, title: input.note } },
    fund: (_b, input: { amount: number }) => ({ type: 'funded', data: { amount: input.amount } }),
  },
});

const clients = storeClients();

function client(url: string, token: string, key?: Uint8Array): Promise<EventStore<Events>> {
  return clients.open<Events>(url, token, {
    aggregates: [wallet],
    strictStreams: ['wallet-*'],
    ...(key && { encryption: { key } }),
  });
}

/**
 * Alice and Bob share a key, Eve has none: cards with a marker in data and meta, and a strict
 * stream the server decides on (a command Bob ran concurrently is refused and rerun).
 */
async function scenario(url: string, token: (sub: string) => string, marker: string) {
  const key = generateEncryptionKey();
  const alice = await client(url, token('alice'), key);
  const bob = await client(url, token('bob'), key);
  const eve = await client(url, token('eve'));
  for (let i = 0; i < 20; i++) {
    await alice.append(`card-${i}`, {
      type: 'added',
      data: { title: `${marker} card ${i}` },
      meta: { note: `${marker} meta` },
    });
  }
  await alice.execute(wallet, 'wallet-1', 'fund', { amount: 10 });
  await waitFor(async () => (await bob.read({ stream: 'wallet-1' })).length === 1);
  await Promise.allSettled([
    alice.execute(wallet, 'wallet-1', 'spend', { amount: 8, note: `${marker} lunch` }),
    bob.execute(wallet, 'wallet-1', 'spend', { amount: 8, note: `${marker} taxi` }),
  ]);
  const all = 20 + 2;
  await waitFor(async () => {
    const [a, b, e] = await Promise.all([alice.read(), bob.read(), eve.read()]);
    const settled = [alice, bob].every((s) => (s.sync.status().tentative ?? 0) === 0);
    return settled && a.length === all && b.length === all && e.length === all;
  }, 20_000);
  const bobCards = await bob.read({ stream: 'card-3' });
  expect(bobCards[0]).toMatchObject({
    data: { title: `${marker} card 3` },
    meta: { note: `${marker} meta` },
  });
  // The server kept the rule on ciphertext: one spend accepted, the balance never below zero.
  const spends = (await alice.read({ stream: 'wallet-1' })).filter((e) => e.type === 'spent');
  expect(spends).toHaveLength(1);
  expect(await bob.read({ stream: 'wallet-1' })).toEqual(await alice.read({ stream: 'wallet-1' }));
  // Eve holds and forwards every event, reads none, and says so.
  const held = await eve.read();
  expect(held.every((e) => typeof e.data === 'string' && e.meta?.$sealed !== undefined)).toBe(true);
  await waitFor(() => eve.sync.status().unreadable !== undefined);
  expect(JSON.stringify(held)).not.toContain(marker);
}

describe('encryption through a sync server on SQLite', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('stores no byte of the data in the server files, and keeps strict streams decided', async () => {
    t = await startTestServer();
    const server = t;
    const marker = `sqlite-marker-${Date.now().toString(36)}`;
    await scenario(server.server.url, (sub) => server.token({ sub }), marker);
    await clients.closeAll();
    // Every file of the database (main, WAL, shared memory), as bytes.
    const dir = dirname(server.path);
    const needle = Buffer.from(marker);
    for (const name of readdirSync(dir)) {
      expect(readFileSync(join(dir, name)).includes(needle), name).toBe(false);
    }
  });
});

describe('hidden stream names and types through a sync server on SQLite', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  /** Whether the server's files hold `text` after two clients synced a marked stream. */
  async function serverHolds(names: Uint8Array | undefined): Promise<boolean> {
    t = await startTestServer();
    const server = t;
    const key = generateEncryptionKey();
    const marker = `hidden-${Date.now().toString(36)}`;
    const options = { encryption: { key, ...(names && { names }) } };
    const a = await clients.open<Events>(server.server.url, server.token({ sub: 'a' }), options);
    const b = await clients.open<Events>(server.server.url, server.token({ sub: 'b' }), options);
    await a.append(`${marker}-stream`, { type: `${marker}-type`, data: { title: 'x' } });
    await waitFor(async () => (await b.read({ stream: `${marker}-stream` })).length === 1);
    expect((await b.read())[0]).toMatchObject({
      stream: `${marker}-stream`,
      type: `${marker}-type`,
    });
    await clients.closeAll();
    await server.server.close();
    const dir = dirname(server.path);
    return readdirSync(dir).some((name) => readFileSync(join(dir, name)).includes(marker));
  }

  it('keeps stream names and types out of the server files when asked, and only then', async () => {
    expect(await serverHolds(undefined)).toBe(true);
    await t?.stop();
    t = undefined;
    expect(await serverHolds(generateEncryptionKey())).toBe(false);
  });
});

describe('hidden names and a strict stream through a sync server', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('decides the strict stream on its pseudonym and reports the rejection by name', async () => {
    t = await startTestServer();
    const server = t;
    const options = {
      aggregates: [wallet],
      strictStreams: ['wallet-*'],
      encryption: { key: generateEncryptionKey(), names: generateEncryptionKey() },
    };
    const url = server.server.url;
    const bobToken = server.token({ sub: 'bob' });
    const alice = await clients.open<Events>(url, server.token({ sub: 'alice' }), options);
    const bob = await clients.open<Events>(url, bobToken, options, false);
    let bobLink = clients.connect(bob, url, bobToken);
    await alice.execute(wallet, 'wallet-1', 'fund', { amount: 10 });
    await waitFor(async () => (await bob.read({ stream: 'wallet-1' })).length === 1);
    // Bob spends offline while Alice spends online: the server accepts hers, rejects his.
    await bobLink.close();
    await alice.execute(wallet, 'wallet-1', 'spend', { amount: 8, note: 'lunch' });
    await waitFor(() => (alice.sync.status().tentative ?? 0) === 0);
    await bob.execute(wallet, 'wallet-1', 'spend', { amount: 8, note: 'taxi' });
    bobLink = clients.connect(bob, url, bobToken);
    await waitFor(() => {
      const [rejected] = bob.sync.status().rejected ?? [];
      return rejected?.command !== undefined && rejected.command.outcome !== 'pending';
    }, 10_000);
    const [rejected] = bob.sync.status().rejected ?? [];
    // By its name, not its pseudonym; and run again on the accepted events, the handler refused.
    expect(rejected).toMatchObject({ stream: 'wallet-1', command: { outcome: 'rejected' } });
    await waitFor(async () => (await bob.read({ stream: 'wallet-1' })).length === 2);
    for (const store of [alice, bob]) {
      const events = await store.read({ stream: 'wallet-1' });
      expect(events.map((e) => [e.stream, e.type])).toEqual([
        ['wallet-1', 'funded'],
        ['wallet-1', 'spent'],
      ]);
    }
    await bobLink.close();
  });
});

describe('encryption through sync servers on PostgreSQL', () => {
  const postgres = syncServerOnPostgres();

  it('stores no row that holds the data', async () => {
    const { url, token } = await postgres.start();
    const marker = `pg-marker-${Date.now().toString(36)}`;
    await scenario(url, token, marker);
    const rows = await postgres.rows();
    expect(new Set(rows.map((r) => r.table)).size).toBeGreaterThan(3);
    expect(rows.length).toBeGreaterThan(22);
    expect(rows.filter((r) => r.row.includes(marker))).toEqual([]);
  });
});
