/**
 * A store relays what it holds after one of its copies lost to another (core/copies.ts): the
 * event after a run of a replica's events, in the server's batch to the store, is the copy that
 * loses, so nothing that store holds may need it to be proven. Once it did: the server left out
 * the signatures that event covered, the store held them so, and when the cover lost the store
 * could prove them to no peer, which refused them as unsigned for ever: a peer reached only
 * through that store never had them (convergence property, seed -1355665519).
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type EventStore,
  memoryStorage,
  memoryTransportPair,
  openStore,
  webSocketTransport,
} from '../../src/index.ts';
import { spaceToken, startTestServer, waitFor } from './helpers.ts';

const SPACE = 'space-r';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function store(name: string) {
  const s = await openStore({ name, storage: memoryStorage() });
  cleanups.push(() => s.close());
  return s;
}

function connect(s: EventStore, url: string, sub: string) {
  return s.sync.connect(
    webSocketTransport(url, { token: spaceToken(SPACE, sub), WebSocket: WebSocket as never }),
  );
}

const titles = async (s: EventStore) =>
  (await s.read()).map((e) => `${e.id}:${JSON.stringify(e.data)}`);

describe('relaying after a copy lost', () => {
  it('a peer reached only through a store gets every event that store holds, proven', async () => {
    const { server: s, stop } = await startTestServer({ requireSignatures: true });
    cleanups.push(stop);
    // Dave writes `dup` first, offline: his copy sorts first and wins once it meets Carol's.
    const dave = await store('dave');
    await dave.append('cards', { type: 'added', id: 'dup', data: { by: 'dave' } });
    const carol = await store('carol');
    await carol.append('cards', [
      ...Array.from({ length: 10 }, (_, i) => ({ type: 'added', data: { title: `card ${i}` } })),
      { type: 'added', id: 'dup', data: { by: 'carol' } },
    ]);
    connect(carol, s.url, 'carol');
    const bob = await store('bob');
    connect(bob, s.url, 'bob');
    await waitFor(async () => (await bob.read()).length === 11, 20_000);
    // Dave comes online: his `dup` replaces Carol's on the server and then on Bob.
    connect(dave, s.url, 'dave');
    await waitFor(async () => (await titles(bob)).includes('dup:{"by":"dave"}'), 20_000);
    // Pat is reached only through Bob.
    const pat = await store('pat');
    const [a, b] = memoryTransportPair();
    bob.sync.connect(a);
    pat.sync.connect(b);
    await waitFor(
      async () =>
        (await pat.read()).length === 11 &&
        pat.sync.status().state === 'idle' &&
        bob.sync.status().pending === 0,
      20_000,
    );
    expect(await titles(pat)).toEqual(await titles(bob));
    expect(pat.sync.status().tampered).toBeUndefined();
    expect(bob.sync.status().refused).toBeUndefined();
  });
});
