/**
 * Colliding copies between peers, without a server (RELIABILITY 34 and 35; core/copies.ts): the
 * public API (openStore, memoryTransportPair) on memory and fake-indexeddb storage.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import {
  defineProjection,
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import type { SyncMessage } from '../../src/sync/protocol.ts';
import { storedEvent } from '../fixtures/events.ts';
import { helloFrom, until } from './helpers.ts';
import { fromWire, toWire } from './wire.ts';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

let databases = 0;
const idb = (): StorageAdapter =>
  indexedDbStorage(`collisions-${++databases}`, { indexedDB: new IDBFactory() });

/** Titles by stream, and how many events were folded: snapshotted after every event. */
const titles = defineProjection<{ titles: Record<string, string>; folded: number }>({
  name: 'titles',
  version: 1,
  initial: () => ({ titles: {}, folded: 0 }),
  snapshotEvery: 1,
  apply: (state, event) => {
    const data = event.data as { title?: string } | null;
    const next = { titles: { ...state.titles }, folded: state.folded + 1 };
    if (typeof data?.title === 'string') next.titles[event.stream] = data.title;
    return next;
  },
});

async function store(
  storage: StorageAdapter,
  now: () => number,
  signing = true,
): Promise<EventStore> {
  const s = await openStore({
    name: `store-${++databases}`,
    storage,
    now,
    signing,
    projections: [titles],
    syncOptions: { backoff: { initialMs: 20, maxMs: 100 } },
  });
  closers.push(() => s.close());
  return s;
}

/** state() must equal the fold of read() (the projection rebased away every loser it folded). */
async function expectStateIsFoldOfRead(s: EventStore): Promise<void> {
  let expected = titles.initial();
  for (const event of await s.read()) expected = titles.apply(expected, event);
  expect(await s.state('titles')).toEqual(expected);
}

const T0 = 1_700_000_000_000;
const HOSTILE = 'hostile000000001';

describe('peers that hold two copies of one event id (RELIABILITY 35)', () => {
  it.each([
    ['A connects first', true],
    ['C connects first', false],
  ])(
    'end with the same copy on both, projected, and C is told its copy lost (%s)',
    async (_, aFirst) => {
      const a = await store(memoryStorage(), () => T0);
      const c = await store(idb(), () => T0 + 60_000);
      // Offline, both append the same id; A's copy sorts first in the total order (earlier HLC).
      await a.append('doc', { id: 'doc-title-v1', type: 'titled', data: { title: 'from A' } });
      await c.append('doc', { id: 'doc-title-v1', type: 'titled', data: { title: 'from C' } });
      // C folded its own copy and took snapshots after it.
      await c.append('other', [
        { type: 'titled', data: { title: 'x' } },
        { type: 'titled', data: { title: 'y' } },
      ]);
      expect((await c.state<{ titles: Record<string, string> }>('titles')).titles.doc).toBe(
        'from C',
      );
      const seen: string[] = [];
      c.subscribe((events) => {
        for (const e of events) seen.push(`${e.id}:${(e.data as { title: string }).title}`);
      });
      const [ta, tc] = memoryTransportPair();
      if (aFirst) a.sync.connect(ta);
      c.sync.connect(tc);
      if (!aFirst) a.sync.connect(ta);
      await until(async () => (await a.read()).length === 3 && (await c.read()).length === 3);
      await until(() => a.sync.status().pending === 0 && c.sync.status().pending === 0);
      const copies = async (s: EventStore) =>
        (await s.read()).map((e) => `${e.id}:${(e.data as { title: string }).title}`);
      expect(await copies(c)).toEqual(await copies(a));
      expect(await copies(c)).toContain('doc-title-v1:from A');
      for (const s of [a, c]) {
        expect((await s.state<{ titles: Record<string, string> }>('titles')).titles.doc).toBe(
          'from A',
        );
        await expectStateIsFoldOfRead(s);
      }
      // C's subscribers get the winner as a new event.
      expect(seen).toContain('doc-title-v1:from A');
      expect(c.sync.status().lastError).toMatchObject({
        code: 'ID_CONFLICT',
        eventId: 'doc-title-v1',
      });
      expect(await a.conflicts()).toEqual(await c.conflicts());
    },
  );
});

describe('a peer that sends two events with one (replica, seq) (RELIABILITY 34)', () => {
  it.each([
    ['memory', memoryStorage],
    ['fake-indexeddb', idb],
  ])(
    'does not wedge a %s replica: it keeps one copy, reports the other and keeps syncing',
    async (_, storage) => {
      // The hostile peer sends hand-made, unsigned events: this replica takes them (signing off)
      // so that what is tested is the copies machinery (a signing replica refuses them: TAMPERED).
      const c = await store(storage(), Date.now, false);
      const [hostile, cEnd] = memoryTransportPair();
      const got: SyncMessage[] = [];
      hostile.onMessage((text) => got.push(fromWire<SyncMessage>(text)));
      c.sync.connect(cEnd);
      await hostile.open();
      const send = (m: unknown) => hostile.send(toWire(m));
      await until(() => got.some((m) => m.type === 'hello'));
      send(helloFrom(HOSTILE));
      await until(() => got.some((m) => m.type === 'pull'));
      const now = Date.now();
      // Two ids at (HOSTILE, 1) with the same wall time (one cursor), and a correct event after.
      const pair = (id: string): StoredEventRecord =>
        storedEvent({ replica: HOSTILE, seq: 1, wall: now - 1_000, id, data: { id } });
      const fine = storedEvent({ replica: HOSTILE, seq: 2, wall: now - 999, id: 'fine' });
      send({
        type: 'events',
        from: 0,
        to: 3,
        toId: 'fine',
        events: [pair('evt-a'), pair('evt-b'), fine],
      });
      await until(() => got.some((m) => m.type === 'ack' && m.to === 3));
      // Equal cursors: the canonical JSON decides ("evt-a" sorts first), on every adapter.
      expect((await c.read()).map((e) => e.id)).toEqual(['evt-a', 'fine']);
      expect(c.sync.status().lastError).toMatchObject({ code: 'SEQ_CONFLICT', eventId: 'evt-b' });
      // The link keeps working: the next batch is stored on the same connection.
      const later = storedEvent({ replica: HOSTILE, seq: 3, wall: now - 998, id: 'later' });
      send({ type: 'events', from: 3, to: 4, toId: 'later', events: [later] });
      await until(() => got.some((m) => m.type === 'ack' && m.to === 4));
      expect((await c.read()).map((e) => e.id)).toEqual(['evt-a', 'fine', 'later']);
      expect(got.some((m) => m.type === 'error')).toBe(false);
      await expectStateIsFoldOfRead(c);
    },
  );
});
