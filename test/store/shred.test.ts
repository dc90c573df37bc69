/**
 * Crypto-shredding (store.shred, store/shred.ts, store/stream-keys.ts): a stream's key is erased
 * on every replica, online or offline at the time, and the stream reads as shredded everywhere,
 * with the same envelopes, while every other stream is untouched.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, describe, expect, it } from 'vitest';
import { namesKey } from '../../src/core/keyring.ts';
import { streamPseudonym } from '../../src/core/sealing.ts';
import {
  defineProjection,
  type EventStore,
  generateEncryptionKey,
  indexedDbStorage,
  type LooseEvents,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import { until } from '../sync/helpers.ts';

type Events = LooseEvents<{ title: string }>;

const titles = defineProjection<string[], Events>({
  name: 'titles',
  version: 1,
  snapshotEvery: 1,
  initial: () => [],
  apply: (list, e) => [...list, e.data.title],
});

/** The names secret of the describe block running (EncryptionOptions.names), if any. */
let names: Uint8Array | undefined;

function open(storage: StorageAdapter, key?: Uint8Array) {
  return openStore<Events>({
    name: 'shred',
    storage,
    projections: [titles],
    ...(key && { encryption: { key, ...(names && { names }) } }),
  });
}

/** A stream as stored: its pseudonym when names are hidden. */
async function stored(stream: string): Promise<string> {
  return names === undefined ? stream : streamPseudonym(await namesKey(names), stream);
}

/** What a storage holds, as a store without a key reads it. */
async function raw(storage: StorageAdapter, stream?: string) {
  const store = await openStore({ name: 'raw', storage });
  try {
    return await store.read(stream === undefined ? {} : { stream });
  } finally {
    await store.close();
  }
}

function connect(a: EventStore<Events>, b: EventStore<Events>) {
  const [ta, tb] = memoryTransportPair();
  const ca = a.sync.connect(ta);
  const cb = b.sync.connect(tb);
  return { close: () => Promise.all([ca.close(), cb.close()]) };
}

/** The StreamKey events a storage holds for `stream`, with their data (null: erased). */
async function streamKeys(storage: StorageAdapter, stream: string) {
  const as = await stored(stream);
  return (await raw(storage, '$keyring')).filter(
    (e) =>
      e.type === 'StreamKey' && (e.data === null || (e.data as { stream: string }).stream === as),
  );
}

let databases = 0;
const storages: [string, () => StorageAdapter, Uint8Array | undefined][] = [
  ['memory', () => memoryStorage(), undefined],
  [
    'fake-indexeddb',
    () => indexedDbStorage(`shred-${++databases}`, { indexedDB: new IDBFactory() }),
    undefined,
  ],
  ['memory, stream names hidden', () => memoryStorage(), generateEncryptionKey()],
];

describe.each(storages)('store.shred on %s', (_name, fresh, secret) => {
  beforeAll(() => {
    names = secret;
  });

  it('erases a stream here: its events read as shredded, its key is gone, the rest stays', async () => {
    const storage = fresh();
    const key = generateEncryptionKey();
    const store = await open(storage, key);
    await store.append('card-1', { type: 'added', data: { title: 'secret' } });
    await store.append('card-2', { type: 'added', data: { title: 'kept' } });
    await store.append('card-1', { type: 'renamed', data: { title: 'more secret' } });
    expect(await store.state(titles)).toEqual(['secret', 'kept', 'more secret']);
    const before = await store.read();

    await store.shred('card-1');
    expect(await store.state(titles)).toEqual(['kept']);
    const after = await store.read();
    // Same envelopes, in the same order. With names hidden, a shredded event's name and type
    // went with its content: it shows its pseudonym and the type `~`.
    expect(after.map((e) => [e.id, e.version, e.cursor])).toEqual(
      before.map((e) => [e.id, e.version, e.cursor]),
    );
    const erasedStream = names ? await stored('card-1') : 'card-1';
    const erased = after.filter((e) => e.stream === erasedStream);
    expect(erased).toHaveLength(2);
    for (const e of erased) {
      expect(e).toMatchObject({ data: null, meta: { $shredded: true } });
      if (names) expect(e.type).toBe('~');
    }
    expect(after.filter((e) => e.stream === 'card-2')).toHaveLength(1);
    // The audit trail: who erased which stream, when; not what it held.
    const [shredded] = (await store.read({ stream: '$keyring' })).filter(
      (e) => e.type === 'StreamShredded',
    );
    expect(shredded).toMatchObject({ data: { stream: erasedStream }, replica: store.replicaId });
    await expect(
      store.append('card-1', { type: 'added', data: { title: 'again' } }),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    // Snapshots were taken of every state: none holds the stream any more.
    const info = await store.inspect(titles);
    expect(info.snapshots.length).toBeGreaterThan(0);
    await store.close();

    const keys = await streamKeys(storage, 'card-1');
    expect(keys.some((e) => e.data === null)).toBe(true);
    expect(keys.every((e) => e.data === null)).toBe(true);
    // Reopened with the key: still shredded, the rest still readable.
    const again = await open(storage, key);
    expect(await again.state(titles)).toEqual(['kept']);
    expect((await again.read({ stream: 'card-1' }))[0]).toMatchObject({ data: null });
    await again.close();
  });

  it('erases in another tab of the replica when that tab’s sync brought the shred', async () => {
    const key = generateEncryptionKey();
    const storage = fresh();
    const tabA = await open(storage, key);
    const tabB = await open(storage, key);
    const other = await open(fresh(), key);
    await tabA.append('card-1', { type: 'added', data: { title: 'secret' } });
    await tabA.append('card-2', { type: 'added', data: { title: 'kept' } });
    connect(tabA, other);
    await until(async () => (await other.state(titles)).length === 2);
    await until(async () => (await tabB.state(titles)).length === 2);
    await other.shred('card-1');
    // Tab B hears of tab A's ingest only through the storage's notice (onRemoteWrite), and
    // reads nothing but the stream: no read of its own passes the keyring's events.
    await until(async () => (await tabB.read({ stream: 'card-1' }))[0]?.data === null);
    expect(await tabB.state(titles)).toEqual(['kept']);
    await Promise.all([tabA.close(), tabB.close(), other.close()]);
  });

  it('refuses to shred without encryption', async () => {
    const store = await open(fresh());
    await store.append('s', { type: 'added', data: { title: 'x' } });
    await expect(store.shred('s')).rejects.toMatchObject({ code: 'VALIDATION' });
    await store.close();
  });

  it('erases on every replica: one online, one offline at the time, one that joins later', async () => {
    const key = generateEncryptionKey();
    const storages = { a: fresh(), b: fresh(), d: fresh() };
    const a = await open(storages.a, key);
    const b = await open(storages.b, key);
    const d = await open(storages.d, key);
    const replicas = [a.replicaId, b.replicaId, d.replicaId];
    await a.append('card-1', { type: 'added', data: { title: 'secret' } });
    await a.append('card-2', { type: 'added', data: { title: 'kept' } });
    const ab = connect(a, b);
    const ad = connect(a, d);
    await until(async () => (await b.state(titles)).length === 2);
    await until(async () => (await d.state(titles)).length === 2);
    await ad.close();
    // D, offline, appends to the stream before it hears of the shred.
    await d.append('card-1', { type: 'renamed', data: { title: 'late secret' } });

    await a.shred('card-1');
    // Erasing its own StreamKey is not a fork (core/append.ts invariant 8): same replica id.
    expect(a.replicaId).toBe(replicas[0]);
    await until(async () => (await b.state(titles)).length === 1);
    expect(await b.state(titles)).toEqual(['kept']);

    // D comes back: it erases, and its late event is shredded everywhere.
    connect(d, b);
    await until(async () => (await d.state(titles)).length === 1);
    await until(async () => (await a.read({ stream: 'card-1' })).length === 2);
    expect([a.replicaId, b.replicaId, d.replicaId]).toEqual(replicas);
    for (const store of [a, b, d]) {
      expect(await store.state(titles)).toEqual(['kept']);
      const events = await store.read({ stream: 'card-1' });
      expect(events).toHaveLength(2);
      expect(events.every((e) => e.data === null && e.meta?.$shredded === true)).toBe(true);
    }
    // A device that joins later never sees the key.
    const storageC = fresh();
    const c = await open(storageC, key);
    connect(c, b);
    await until(async () => (await c.read()).length === 3);
    expect(await c.state(titles)).toEqual(['kept']);
    await Promise.all([a.close(), b.close(), c.close(), d.close()]);
    await ab.close().catch(() => {});
    // No storage holds the stream's key any more.
    for (const storage of [storages.a, storages.b, storages.d, storageC]) {
      const keys = await streamKeys(storage, 'card-1');
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((e) => e.data === null)).toBe(true);
    }
  });
});
