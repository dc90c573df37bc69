/**
 * A client relaying a peer's events of a replica another subject owns (storage.ts invariant 4)
 * is refused those events one at a time (protocol 6, reason not-owner), leaves that replica out
 * for the server, and goes on syncing its own. Found by the server convergence property in a
 * mixed topology (seed 1327734642, path 293): the whole batch was refused with 4003 at every
 * reconnect, and the relaying client never synced again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type EventStore, memoryStorage, memoryTransportPair, openStore } from '../../src/index.ts';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';

let t: TestServer | undefined;
const stores: EventStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  await t?.stop();
  t = undefined;
});

async function open(name: string): Promise<EventStore> {
  const store = await openStore({
    name,
    storage: memoryStorage(),
    syncOptions: { WebSocket: WebSocket as never },
  });
  stores.push(store);
  return store;
}

/** Syncs two stores peer to peer until `done`, then cuts the link. */
async function peerSync(a: EventStore, b: EventStore, done: () => Promise<boolean>) {
  const [x, y] = memoryTransportPair();
  const left = a.sync.connect(x);
  const right = b.sync.connect(y);
  await waitFor(done, 15_000);
  await Promise.all([left.close(), right.close()]);
}

describe('relaying another subject’s replica through the server', () => {
  it('leaves that replica out and syncs the rest, without closing the connection', async () => {
    t = await startTestServer();
    const server = t;
    const carol = await open('carol');
    const alice = await open('alice');
    const bob = await open('bob');
    await carol.append('notes', { type: 'note', data: 'carol 1' });
    // alice relays carol's first event: the server gives carol's replica to alice's subject.
    await peerSync(carol, alice, async () => (await alice.read()).length === 1);
    alice.sync.connect({ url: server.server.url, token: server.token({ sub: 'alice' }) });
    await waitFor(
      async () => (await server.storage.openSpace('space-a').then((s) => s.headPos())) === 1,
      15_000,
    );

    // bob holds carol's second event, then appends his own after it.
    const [carol2] = await carol.append('notes', { type: 'note', data: 'carol 2' });
    await peerSync(carol, bob, async () => (await bob.read()).length === 2);
    await bob.append('notes', { type: 'note', data: 'bob 1' });
    bob.sync.connect({ url: server.server.url, token: server.token({ sub: 'bob' }) });

    const space = await server.storage.openSpace('space-a');
    const datas = async () => (await space.readByPos(0, 100)).map((r) => r.event.data);
    await waitFor(async () => (await datas()).includes('bob 1'), 15_000);
    expect(await datas()).not.toContain('carol 2');
    await waitFor(() => bob.sync.status().state === 'idle', 15_000);
    const status = bob.sync.status();
    expect(status.pending).toBe(0);
    expect(status.lastError).toMatchObject({ code: 'ORIGIN_FORBIDDEN', eventId: carol2!.id });
    expect(server.logs.filter((l) => l.event === 'close' && l.code === 4003)).toEqual([]);
  });
});
