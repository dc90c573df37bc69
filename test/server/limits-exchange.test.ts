/**
 * Limits exchanged with a real sync server on 127.0.0.1 with its default limits (RELIABILITY.md
 * case 37; issue 12, defects 6 and 7): memory and fake-indexeddb stores through the public API.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  type OpenStoreOptions,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import { helloFrom } from '../sync/helpers.ts';
import { makeEvents } from './events.ts';
import { ProtocolClient, RawClient, startTestServer, type TestServer, waitFor } from './helpers.ts';

const KiB = 1024;
const text = (bytes: number) => 'x'.repeat(bytes - 2); // JSON text of a string: two quotes more

let t: TestServer | undefined;
const stores: EventStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  await t?.stop();
  t = undefined;
});

async function open(
  name: string,
  storage: StorageAdapter,
  options: Partial<OpenStoreOptions> = {},
): Promise<EventStore> {
  const store = await openStore({
    name,
    storage,
    ...options,
    syncOptions: { ...options.syncOptions, WebSocket: WebSocket as never },
  });
  stores.push(store);
  return store;
}

function connect(server: TestServer, store: EventStore, sub: string) {
  return store.sync.connect({ url: server.server.url, token: server.token({ sub }) });
}

describe('limits exchanged with the sync server', () => {
  it('one event over the server limit is reported and does not hold back the others (defect 7)', async () => {
    t = await startTestServer();
    const a = await open('a', memoryStorage(), { limits: { maxEventBytes: 1024 * KiB } });
    const b = await open('b', indexedDbStorage('limits-b', { indexedDB: new IDBFactory() }));
    // Appended offline, before a knew the server's limit.
    const [small1] = await a.append('s', { type: 't', data: 'small 1' });
    const [big] = await a.append('s', { type: 't', data: text(600 * KiB) });
    const [small2] = await a.append('s', { type: 't', data: 'small 2' });
    connect(t, a, 'alice');
    connect(t, b, 'bob');
    await waitFor(async () => (await b.read()).length === 2, 15_000);
    expect((await b.read()).map((e) => e.id)).toEqual([small1!.id, small2!.id]);
    await waitFor(() => a.sync.status().pending === 0, 15_000);
    const status = a.sync.status();
    expect(status.lastError).toMatchObject({ code: 'LIMIT_EXCEEDED', eventId: big!.id });
    expect(status.refused).toEqual([
      expect.objectContaining({ eventId: big!.id, code: 'LIMIT_EXCEEDED' }),
    ]);
    // What comes after it is not stuck, and a second such event is refused at append.
    const [small3] = await a.append('s', { type: 't', data: 'small 3' });
    await waitFor(async () => (await b.read()).some((e) => e.id === small3!.id), 15_000);
    await expect(a.append('s', { type: 't', data: text(600 * KiB) })).rejects.toMatchObject({
      code: 'VALIDATION',
    });
  });

  it('keeps the learnt limit after a restart, offline (fake-indexeddb)', async () => {
    t = await startTestServer({ limits: { maxEventBytes: 64 * KiB } });
    const factory = new IDBFactory();
    const options = { limits: { maxEventBytes: 1024 * KiB } };
    const first = await open('r', indexedDbStorage('limits-r', { indexedDB: factory }), options);
    await first.append('s', { type: 't', data: text(100 * KiB) }); // offline: its own limit
    connect(t, first, 'alice');
    await waitFor(() => first.sync.status().refused !== undefined, 15_000);
    await first.close();
    const again = await open('r', indexedDbStorage('limits-r', { indexedDB: factory }), options);
    await expect(again.append('s', { type: 't', data: text(100 * KiB) })).rejects.toMatchObject({
      code: 'VALIDATION',
    });
    await expect(again.append('s', { type: 't', data: text(60 * KiB) })).resolves.toHaveLength(1);
    expect(again.sync.status().refused).toHaveLength(1);
  });

  it('a store with maxBatchEvents 2 receives every event from the server (defect 6)', async () => {
    t = await startTestServer();
    const a = await open('a', memoryStorage());
    await a.append(
      's',
      [1, 2, 3].map((n) => ({ type: 't', data: n })),
    );
    connect(t, a, 'alice');
    await waitFor(() => a.sync.status().state === 'idle' && a.sync.status().pending === 0, 15_000);
    const b = await open('b', memoryStorage(), { syncOptions: { limits: { maxBatchEvents: 2 } } });
    connect(t, b, 'bob');
    await waitFor(async () => (await b.read()).length === 3, 15_000);
    expect(b.sync.status().lastError).toBeUndefined();
  });

  it('announces its limits in hello', async () => {
    t = await startTestServer({ limits: { maxBatchEvents: 7 } });
    const client = await ProtocolClient.connect(t.server.url, t.token());
    expect(client.serverHello.limits).toEqual({
      ...DEFAULT_SYNC_LIMITS,
      maxBatchEvents: 7,
      maxEventBytes: 512 * KiB,
    });
    client.close();
  });

  it('refuses one event over maxEventBytes from a client that announced limits, without closing; the resend without it is stored', async () => {
    t = await startTestServer({ limits: { maxEventBytes: KiB } });
    const raw = await RawClient.connect(t.server.url, { token: t.token() });
    await raw.nextOfType('hello');
    const replica = 'clientlimits0001';
    raw.send({ ...helloFrom(replica), limits: DEFAULT_SYNC_LIMITS });
    await raw.nextOfType('pull');
    const [small, big] = makeEvents(2, { replica });
    const large = { ...big!, data: { text: 'y'.repeat(2 * KiB) } };
    raw.send({ type: 'events', from: 0, to: 2, toId: large.id, events: [small, large] });
    const refusal = await raw.nextOfType('error');
    expect(refusal).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      eventId: large.id,
      refused: { from: 0, reason: { kind: 'too-large', limit: KiB } },
    });
    expect(refusal.fatal).toBeUndefined();
    raw.send({ type: 'events', from: 0, to: 2, toId: large.id, events: [small] });
    expect(await raw.nextOfType('ack')).toMatchObject({ to: 2 });
    expect(await t.storage.openSpace('space-a').then((s) => s.headPos())).toBe(1);
    raw.close();
  });

  it('leaves out, and logs, an event over the maxEventBytes a client announced', async () => {
    t = await startTestServer();
    const a = await open('a', memoryStorage());
    await a.append('s', { type: 't', data: 'before' });
    const [big] = await a.append('s', { type: 't', data: text(300 * KiB) });
    await a.append('s', { type: 't', data: 'after' });
    connect(t, a, 'alice');
    await waitFor(() => a.sync.status().pending === 0, 15_000);
    const b = await open('b', memoryStorage(), {
      syncOptions: { limits: { maxEventBytes: 100 * KiB } },
    });
    connect(t, b, 'bob');
    await waitFor(async () => (await b.read()).length === 2, 15_000);
    expect((await b.read()).map((e) => e.data)).toEqual(['before', 'after']);
    await waitFor(() => t!.logs.some((l) => l.event === 'event_not_sent'), 15_000);
    expect(t.logs.find((l) => l.event === 'event_not_sent')).toMatchObject({
      eventId: big!.id,
      code: 'LIMIT_EXCEEDED',
      sub: 'bob',
    });
  });
});
