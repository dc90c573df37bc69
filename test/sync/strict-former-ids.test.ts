/**
 * sync/strict-sync.ts invariant 5: a tentative strict event written under a replica id the log
 * had before a move (a device restored from a backup moves to a fresh id: core/append.ts
 * invariant 8) is still held back from peers that are not servers until an authority decided
 * on it, in this session and after a restart; before, the hold looked at the current id only,
 * and a peer got an event the server could still reject (the peer then kept it for good).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { STRICT_META } from '../../src/core/strict.ts';
import {
  type EventStore,
  memoryStorage,
  memoryTransportPair,
  type StorageAdapter,
} from '../../src/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { manualClock } from '../store/helpers.ts';
import { openWithInternals, until } from './helpers.ts';

const T = Date.UTC(2026, 5, 1);
const open: EventStore[] = [];

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});

async function openCapturing(storage: StorageAdapter, name: string, now: () => number) {
  const opened = await openWithInternals({ name, storage, strictStreams: ['acct-*'], now });
  open.push(opened.store);
  return opened;
}

/**
 * A device restored from a backup: two tentative strict events under its id, then the
 * authority's copy of the first slot arrives and moves it to a fresh id (strict-restored.test.ts).
 */
async function restoredDevice(storage: StorageAdapter) {
  const clock = manualClock(T);
  const { store, internals } = await openCapturing(storage, 'restored', clock.now);
  await store.append('acct-1', { type: 'Deposited', data: 7 });
  clock.advance(1);
  const [tentative] = await store.append('acct-2', { type: 'Deposited', data: 8 });
  const old = store.replicaId;
  const accepted: StoredEventRecord = storedEvent({
    replica: old,
    seq: 1,
    wall: T + 60_000,
    stream: 'acct-1',
    version: 1,
    id: 'accepted-withdrawal',
    type: 'Withdrew',
    data: 30,
    meta: { [STRICT_META.strict]: true },
  });
  clock.set(T + 120_000);
  await internals.ingest([accepted]);
  expect(store.replicaId).not.toBe(old);
  return { store, clock, tentative: tentative!, old };
}

async function linkedPeer(store: EventStore, now: () => number) {
  const { store: peer } = await openCapturing(memoryStorage(), 'peer', now);
  const [a, b] = memoryTransportPair();
  store.sync.connect(a);
  peer.sync.connect(b);
  return peer;
}

/**
 * What the peer holds once the link has carried an event the other way and some time more has
 * passed (the hold keeps the store's side syncing, so there is no idle to wait for).
 */
async function settledIds(store: EventStore, peer: EventStore): Promise<string[]> {
  const [probe] = await peer.append('notes', { type: 'Noted', data: 1 });
  await until(async () => (await store.read({ stream: 'notes' })).some((e) => e.id === probe!.id));
  await new Promise((r) => setTimeout(r, 200));
  return (await peer.read()).map((e) => e.id);
}

describe('a tentative strict event under a former replica id', () => {
  it('is not sent to a peer that is not a server, after the move', async () => {
    const { store, clock, tentative } = await restoredDevice(memoryStorage());
    const peer = await linkedPeer(store, clock.now);
    const got = await settledIds(store, peer);
    expect(got).not.toContain(tentative.id);
  });

  it('is not sent after a restart either: the former id is in the stored identity', async () => {
    const storage = memoryStorage();
    const { store, clock, tentative } = await restoredDevice(storage);
    await store.close();
    open.splice(open.indexOf(store), 1);
    const { store: again } = await openCapturing(storage, 'restored', clock.now);
    const peer = await linkedPeer(again, clock.now);
    const got = await settledIds(again, peer);
    expect(got).not.toContain(tentative.id);
  });
});
