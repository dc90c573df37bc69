/**
 * A partial replica against a real sync server (docs/storage-growth.md parts 2 and 3): the sync
 * controller hands the store its server link (store/server-link.ts), so retention trims what
 * the server acknowledged, reads below the horizon page the server's history, and a late event
 * below it rebases through that history to the state a full replica holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type EventStore, memoryStorage, memoryTransportPair, openStore } from '../../src/index.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { StoreInternals } from '../../src/store/internal.ts';
import { createSyncController } from '../../src/sync/controller.ts';
import { webSocketTransport } from '../../src/sync/transports/websocket.ts';
import { type SeenEvents, seenProjection } from '../store/retention-harness.ts';
import { SECRET, spaceToken, tempDir, waitFor } from './helpers.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

type Ev = SeenEvents;
const seen = seenProjection(5);

async function server(): Promise<SyncServer> {
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup());
  const s = await createSyncServer({
    storage: sqliteStorage(`${tmp.dir}/server.sqlite`),
    auth: { secret: SECRET },
    log: () => {},
  });
  cleanups.push(() => s.close());
  return s;
}

interface Device {
  store: EventStore<Ev>;
  internals: StoreInternals;
  connect(): { close(): Promise<void> };
}

async function device(
  s: SyncServer,
  name: string,
  options: { retain?: { events: number }; now?: () => number } = {},
): Promise<Device> {
  let internals: StoreInternals | undefined;
  const store = await openStore<Ev>({
    name,
    storage: memoryStorage(),
    projections: [seen],
    ...(options.retain === undefined ? {} : { retain: options.retain }),
    ...(options.now === undefined ? {} : { now: options.now }),
    syncFactory: (i) => {
      internals = i;
      return createSyncController(i, { WebSocket: WebSocket as never });
    },
  });
  cleanups.push(() => store.close());
  const connect = () =>
    store.sync.connect(
      webSocketTransport(s.url, {
        token: spaceToken('space-a', name),
        WebSocket: WebSocket as never,
      }),
    );
  return { store, internals: internals!, connect };
}

/** The events the device itself holds in full (trimmed ones are not read back). */
const held = async (d: Device) => (await d.internals.log.readByPos(0, 1000)).length;

const ns = async (store: EventStore<Ev>) =>
  (await store.read({ limit: 1000 })).map((e) => (e.data as { n: number }).n);

describe('a partial replica through a real server', () => {
  it('trims what the server holds, reads below the horizon from its history, and rebases a late event to a full replica’s state', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 10 } });
    const full = await device(s, 'full');
    partial.connect();
    full.connect();
    for (let n = 1; n <= 40; n++) await partial.store.append('s', { type: 't', data: { n } });
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);

    // The server's acks move its checkpoint, and retention runs by itself (store/server-link.ts).
    await waitFor(async () => (await held(partial)) <= 10, 15_000);
    expect(await partial.internals.log.horizon?.()).toBeDefined();
    const expected = Array.from({ length: 40 }, (_, i) => i + 1);
    // Below the horizon, reads go to the server's history, merged in the total order.
    expect(await ns(partial.store)).toEqual(expected);
    expect(await partial.store.state(seen)).toEqual(expected);

    // A device offline since long ago comes back with an event stamped before the horizon.
    const late = await device(s, 'late', { now: () => Date.now() - 60 * 60_000 });
    await late.store.append('s', { type: 't', data: { n: 0 } });
    late.connect();
    await waitFor(async () => (await full.store.read({ limit: 1000 })).length === 41, 15_000);
    await waitFor(async () => (await partial.store.state(seen)).length === 41, 15_000);
    expect(await partial.store.state(seen)).toEqual(await full.store.state(seen));
    expect(await partial.store.state(seen)).toEqual([0, ...expected]);
  });

  it('resumes at a server checkpoint whose event it trimmed, and goes idle (session-sender.ts 13)', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 2 } });
    const behind = await device(s, 'behind', { now: () => Date.now() - 60_000 });
    behind.connect();
    await behind.store.append('s', { type: 't', data: { n: 0 } });
    await waitFor(() => behind.store.sync.status().pending === 0, 15_000);
    for (let n = 1; n <= 4; n++) await partial.store.append('s', { type: 't', data: { n } });
    // Received last (position 5), it sorts first: the server's checkpoint of the partial log is
    // at its position, and retention trims it with events 1 and 2 (two newer ones stay).
    let link = partial.connect();
    await waitFor(async () => (await partial.internals.log.trimmedPos?.()) === 5, 15_000);
    expect(await partial.internals.log.headPos()).toBe(5);
    await waitFor(() => partial.store.sync.status().state === 'idle', 10_000);
    await link.close();
    link = partial.connect();
    // The id at the checkpoint cannot be read here: a restart from 0 never reached the head.
    await waitFor(() => partial.store.sync.status().state === 'idle', 10_000);
    expect(await ns(partial.store)).toEqual([0, 1, 2, 3, 4]);
  });

  it('trims nothing a linked peer replica still lacks: the peer, which syncs with no server, gets every event when it comes back (controller.ts 13)', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 5 } });
    partial.connect();
    const peer = await openStore<Ev>({
      name: 'peer',
      storage: memoryStorage(),
      projections: [seen],
    });
    cleanups.push(() => peer.close());
    const [a, b] = memoryTransportPair();
    partial.store.sync.connect(a);
    let toPartial = peer.sync.connect(b);
    for (let n = 1; n <= 10; n++) await partial.store.append('s', { type: 't', data: { n } });
    await waitFor(async () => (await peer.read({ limit: 100 })).length === 10, 15_000);
    // The peer goes away; the partial replica's link to it stays, and keeps trying.
    await toPartial.close();
    for (let n = 11; n <= 40; n++) await partial.store.append('s', { type: 't', data: { n } });
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);
    await waitFor(
      () =>
        partial.store.sync.status().connections?.some((c) => c.server && c.pending === 0) ?? false,
      15_000,
    );
    await partial.internals.retainNow?.();
    // The server holds all 40; the peer acknowledged 10: the 30 it lacks stay whole here.
    expect(await held(partial)).toBeGreaterThanOrEqual(30);
    toPartial = peer.sync.connect(b);
    await waitFor(async () => (await peer.read({ limit: 100 })).length === 40, 15_000);
    expect(peer.sync.status().tampered).toBeUndefined();
    expect(await peer.state(seen)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Once the peer holds them, they go.
    await waitFor(async () => {
      await partial.internals.retainNow?.();
      return (await held(partial)) <= 5;
    }, 15_000);
    await toPartial.close();
  });

  it('reports no tampering for a link to an event it trimmed (integrity.ts invariant 6)', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 2 } });
    const writer = await device(s, 'writer');
    partial.connect();
    writer.connect();
    for (let n = 1; n <= 10; n++) await writer.store.append('s', { type: 't', data: { n } });
    await waitFor(async () => (await partial.internals.log.headPos()) === 10, 15_000);
    // Its own newer events push all of the writer's below the horizon.
    for (let n = 11; n <= 14; n++) await partial.store.append('p', { type: 't', data: { n } });
    await waitFor(async () => (await partial.internals.log.trimmedPos?.()) === 12, 15_000);
    // The writer's next event links to its 10th, which the partial replica no longer holds.
    await writer.store.append('s', { type: 't', data: { n: 15 } });
    await waitFor(async () => (await partial.internals.log.headPos()) === 15, 15_000);
    await waitFor(() => partial.store.sync.status().state === 'idle', 10_000);
    expect(partial.store.sync.status().tampered).toBeUndefined();
    expect(await ns(partial.store)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  });

  it('pages history newest first below the horizon (reverse reads), as an activity list does', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 10 } });
    partial.connect();
    for (let n = 1; n <= 30; n++) await partial.store.append('s', { type: 't', data: { n } });
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);
    await waitFor(async () => (await held(partial)) <= 10, 15_000);
    const n = (events: { data: unknown }[]) => events.map((e) => (e.data as { n: number }).n);
    // A reverse page that does not fill above the horizon asks the server for what is below it:
    // its bound just above the horizon must be a cursor the server accepts.
    const first = await partial.store.read({ reverse: true, limit: 15 });
    expect(n(first)).toEqual(Array.from({ length: 15 }, (_, i) => 30 - i));
    const next = await partial.store.read({
      reverse: true,
      after: first.at(-1)?.cursor ?? '',
      limit: 100,
    });
    expect(n(next)).toEqual(Array.from({ length: 15 }, (_, i) => 15 - i));
    // Time bounds below the horizon (state at a time, read from/to) go to the server as cursors.
    const fifth = next.find((e) => (e.data as { n: number }).n === 5);
    const atFifth = await partial.store.state(seen, { at: fifth?.time ?? 0 });
    expect(atFifth.at(-1)).toBeGreaterThanOrEqual(5);
    expect(atFifth.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    const window = await partial.store.read({ from: fifth?.time ?? 0, to: fifth?.time ?? 0 });
    expect(n(window)).toContain(5);
    expect(partial.store.sync.status().state).toBe('idle');
  });

  it('says older history is on the server when offline (HISTORY_OFFLINE), and keeps what it holds readable', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 5 } });
    const connection = partial.connect();
    for (let n = 1; n <= 20; n++) await partial.store.append('s', { type: 't', data: { n } });
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);
    await waitFor(async () => (await held(partial)) <= 5, 15_000);
    await connection.close();
    await expect(partial.store.read({ limit: 100 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
    });
    // The newest events, above the horizon, read without the server.
    const newest = await partial.store.read({ reverse: true, limit: 5 });
    expect(newest.map((e) => (e.data as { n: number }).n)).toEqual([20, 19, 18, 17, 16]);
  });

  it('reports a conflict whose events it trimmed, reading them from the server (store.conflicts)', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 2 } });
    const other = await device(s, 'other');
    // Both append version 1 of stream c offline: one conflict, two replicas.
    await partial.store.append('c', { type: 't', data: { n: 1 } }, { expectedVersion: 0 });
    await other.store.append('c', { type: 't', data: { n: 2 } }, { expectedVersion: 0 });
    other.connect();
    await waitFor(() => other.store.sync.status().pending === 0, 15_000);
    partial.connect();
    for (let n = 3; n <= 12; n++) await partial.store.append('s', { type: 't', data: { n } });
    for (const d of [partial, other]) {
      await waitFor(async () => (await d.store.read({ limit: 100 })).length === 12, 15_000);
    }
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);
    await waitFor(async () => (await held(partial)) <= 2, 15_000);
    const conflict = (await other.store.conflicts()).map((c) => [c.stream, c.version]);
    expect(conflict).toEqual([['c', 1]]);
    expect((await partial.store.conflicts()).map((c) => [c.stream, c.version])).toEqual(conflict);
  });

  it('travels in time to a trimmed event named by its id (state at { eventId })', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 3 } });
    partial.connect();
    for (let n = 1; n <= 12; n++) await partial.store.append('s', { type: 't', data: { n } });
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);
    await waitFor(async () => (await held(partial)) <= 3, 15_000);
    const events = await partial.store.read({ limit: 100 });
    // The 5th event is below the horizon: its body is on the server only.
    expect((await partial.internals.log.getByIds([events[4]!.id]))[0]).toBeUndefined();
    expect(await partial.store.state(seen, { at: { eventId: events[4]!.id } })).toEqual([
      1, 2, 3, 4, 5,
    ]);
    await expect(
      partial.store.state(seen, { at: { eventId: 'no-such-id' } }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reads and travels in time by wall times below the horizon, and stays connected', async () => {
    const s = await server();
    const partial = await device(s, 'partial', { retain: { events: 3 } });
    partial.connect();
    const times: number[] = [];
    for (let n = 1; n <= 12; n++) {
      const [e] = await partial.store.append('s', { type: 't', data: { n } });
      times.push(e!.time);
    }
    await waitFor(() => partial.store.sync.status().pending === 0, 15_000);
    await waitFor(async () => (await held(partial)) <= 3, 15_000);
    const all = Array.from({ length: 12 }, (_, i) => i + 1);
    const upTo = (t: number) => all.filter((n) => times[n - 1]! <= t);
    const since = (t: number) => all.filter((n) => times[n - 1]! >= t);
    const ns2 = (events: { data: unknown }[]) => events.map((e) => (e.data as { n: number }).n);
    expect(await partial.store.state(seen, { at: times[4]! })).toEqual(upTo(times[4]!));
    expect(ns2(await partial.store.read({ to: times[4]!, limit: 100 }))).toEqual(upTo(times[4]!));
    expect(ns2(await partial.store.read({ from: times[2]!, limit: 100 }))).toEqual(
      since(times[2]!),
    );
    expect(ns2(await partial.store.read({ to: times[4]!, reverse: true, limit: 100 }))).toEqual(
      upTo(times[4]!).reverse(),
    );
    expect(partial.store.sync.status().lastError).toBeUndefined();
  });
});
