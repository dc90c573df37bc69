/**
 * End-to-end encryption in a store (store/encryption.ts): what is stored is sealed, what the app
 * reads is open, replicas with the key converge, a replica without it keeps syncing and reports,
 * and a rotated key reaches a device that was given only the new one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  defineAggregate,
  defineProjection,
  type EventStore,
  generateEncryptionKey,
  IdempotencyError,
  type LooseEvents,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type StorageAdapter,
  UnreadableError,
} from '../../src/index.ts';
import { until } from '../sync/helpers.ts';

type Events = LooseEvents<{ title: string }>;

const titles = defineProjection<string[], Events>({
  name: 'titles',
  version: 1,
  snapshotEvery: 2,
  initial: () => [],
  apply: (list, e) => [...list, e.data.title],
});

const counter = defineAggregate<number, Events>({
  name: 'counter',
  initial: () => 0,
  apply: (n) => n + 1,
  commands: { add: (_n, input: { title: string }) => ({ type: 'added', data: input }) },
});

/** The names secret of the describe block running (EncryptionOptions.names), if any. */
let names: Uint8Array | undefined;

function open(storage: StorageAdapter, key?: Uint8Array, previousKeys?: Uint8Array[]) {
  return openStore<Events>({
    name: 'enc',
    storage,
    projections: [titles],
    aggregates: [counter],
    ...(key && {
      encryption: { key, ...(previousKeys && { previousKeys }), ...(names && { names }) },
    }),
  });
}

/** What the storage holds, read by a store without any key. */
async function stored(storage: StorageAdapter) {
  const raw = await openStore({ name: 'raw', storage });
  try {
    return await raw.read();
  } finally {
    await raw.close();
  }
}

async function connect(a: EventStore<Events>, b: EventStore<Events>): Promise<void> {
  const [ta, tb] = memoryTransportPair();
  a.sync.connect(ta);
  b.sync.connect(tb);
}

describe.each([
  ['', undefined],
  [', stream names and types hidden', generateEncryptionKey()],
])('encryption%s', (_label, secret) => {
  beforeAll(() => {
    names = secret;
  });

  it('stores data and meta sealed, and reads them open', async () => {
    const storage = memoryStorage();
    const key = generateEncryptionKey();
    const store = await open(storage, key);
    await store.append('card-1', {
      type: 'added',
      data: { title: 'secret plan' },
      meta: { author: 'ann' },
    });
    await store.append('card-1', { type: 'added', data: { title: 'second' } });
    const [first] = await store.read();
    expect(first).toMatchObject({ data: { title: 'secret plan' }, meta: { author: 'ann' } });
    expect(await store.state(titles)).toEqual(['secret plan', 'second']);
    await store.close();

    const raw = await stored(storage);
    expect(raw).toHaveLength(2);
    for (const e of raw) {
      expect(e.stream).toEqual(names ? expect.stringMatching(/^~[A-Za-z0-9_-]{22}$/) : 'card-1');
      expect(e.type).toBe(names ? '~' : 'added');
      expect(typeof e.data).toBe('string');
      expect(Object.keys(e.meta ?? {})).toEqual(['$sealed']);
    }
    expect(JSON.stringify(raw)).not.toContain('secret plan');
    expect(JSON.stringify(raw)).not.toContain('ann');

    // Reopened with the key: the projection resumes from a sealed snapshot.
    const again = await open(storage, key);
    expect((await again.inspect(titles)).snapshots.length).toBeGreaterThan(0);
    expect(await again.state(titles)).toEqual(['secret plan', 'second']);
    await again.close();
  });

  it('keeps idempotent retries idempotent: same id and content is one event', async () => {
    const store = await open(memoryStorage(), generateEncryptionKey());
    const event = { id: 'e-1', type: 'added', data: { title: 'once' } };
    await store.append('s', event);
    await store.append('s', event);
    expect(await store.read()).toHaveLength(1);
    await expect(store.append('s', { ...event, data: { title: 'other' } })).rejects.toBeInstanceOf(
      IdempotencyError,
    );
    await store.close();
  });

  it('keeps a retry idempotent after the stream took another key (invariant 6)', async () => {
    const key = generateEncryptionKey();
    const storageA = memoryStorage();
    const b = await open(memoryStorage(), key);
    // B's key for stream s is older than A's: after the sync, a reopened A takes B's.
    await b.append('s', { type: 'added', data: { title: 'by b' } });
    let a = await open(storageA, key);
    const event = { id: 'e-1', type: 'added', data: { title: 'once' } };
    await a.append('s', event);
    await connect(a, b);
    await until(async () => (await a.read()).length === 2 && (await b.read()).length === 2);
    await a.close();
    a = await open(storageA, key);
    const [later] = await a.append('s', { type: 'added', data: { title: 'later' } });
    const kidOf = async (id: string) =>
      (await stored(storageA)).find((e) => e.id === id)?.meta?.$sealed;
    expect(await kidOf(later!.id), 'the stream took another key').not.toBe(await kidOf('e-1'));
    // The retry: one event, not a refusal as a different payload.
    await a.append('s', event);
    expect((await a.read()).map((e) => e.data.title)).toEqual(['by b', 'once', 'later']);
    await expect(a.append('s', { ...event, data: { title: 'other' } })).rejects.toBeInstanceOf(
      IdempotencyError,
    );
    await a.close();
    await b.close();
  });

  it('refuses meta naming $sealed, and appends to $keyring', async () => {
    const store = await open(memoryStorage(), generateEncryptionKey());
    await expect(
      store.append('s', { type: 'x', data: { title: '' }, meta: { $sealed: 'k' } }),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(
      store.append('$keyring', { type: 'x', data: { title: '' } }),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    await store.close();
  });

  it('takes the key from a function, once, and refuses a key it cannot use', async () => {
    const key = generateEncryptionKey();
    let asked = 0;
    const storage = memoryStorage();
    const store = await openStore<Events>({
      name: 'fn',
      storage,
      encryption: {
        key: async () => {
          asked += 1;
          return key;
        },
      },
    });
    await store.append('s', { type: 'added', data: { title: 'x' } });
    expect(asked).toBe(1);
    await store.close();
    const locked = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
    for (const bad of [new Uint8Array(16), locked, 'text' as never]) {
      await expect(
        openStore({ name: 'bad', storage, encryption: { key: bad } }),
      ).rejects.toMatchObject({ code: 'VALIDATION' });
    }
    // Nothing stored was touched: the right key still reads it.
    const again = await open(storage, key);
    expect(await again.state(titles)).toEqual(['x']);
    await again.close();
  });

  it('converges between replicas with the key', async () => {
    const key = generateEncryptionKey();
    const a = await open(memoryStorage(), key);
    const b = await open(memoryStorage(), key);
    await a.append('c', { type: 'added', data: { title: 'from a' } });
    await b.append('c', { type: 'added', data: { title: 'from b' } });
    await connect(a, b);
    await until(async () => (await b.state(titles)).length === 2);
    await until(async () => (await a.state(titles)).length === 2);
    expect(await a.state(titles)).toEqual(await b.state(titles));
    await Promise.all([a.close(), b.close()]);
  });

  it('a replica without the key keeps syncing, reports, and refuses to decide on what it cannot read', async () => {
    const a = await open(memoryStorage(), generateEncryptionKey());
    const storageB = memoryStorage();
    const b = await open(storageB, generateEncryptionKey());
    const c = await open(memoryStorage(), undefined);
    await a.execute(counter, 'n', 'add', { title: 'sealed' });
    await connect(a, b);
    await until(async () => (await b.read()).length === 1);
    expect(await b.state(titles)).toEqual([]);
    await until(() => b.sync.status().unreadable?.events === 1);
    expect(b.sync.status().unreadable?.keys).toHaveLength(1);
    await expect(b.execute(counter, 'n', 'add', { title: 'x' })).rejects.toBeInstanceOf(
      UnreadableError,
    );
    // A replica with no encryption at all forwards it as it is.
    await connect(b, c);
    await until(async () => (await c.read()).length === 1);
    expect(typeof (await c.read())[0]!.data).toBe('string');
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('rotation: a device given only the new key reads what the old one sealed', async () => {
    const k1 = generateEncryptionKey();
    const k2 = generateEncryptionKey();
    const storageA = memoryStorage();
    const a1 = await open(storageA, k1);
    await a1.append('c', { type: 'added', data: { title: 'under k1' } });
    await a1.close();
    const a2 = await open(storageA, k2, [k1]);
    await a2.append('c', { type: 'added', data: { title: 'under k2' } });
    expect(await a2.state(titles)).toEqual(['under k1', 'under k2']);
    const keyring = (await a2.read({ stream: '$keyring' })).filter((e) => e.type === 'KeyAdded');
    expect(keyring).toHaveLength(1);
    expect(JSON.stringify(keyring)).not.toContain(JSON.stringify([...k1]));

    const b = await open(memoryStorage(), k2);
    await connect(a2, b);
    await until(async () => (await b.state(titles)).length === 2);
    expect(await b.state(titles)).toEqual(['under k1', 'under k2']);
    expect(b.sync.status().unreadable).toBeUndefined();

    // A device with only the old key reads the old event and reports the new one.
    const old = await open(memoryStorage(), k1);
    await connect(a2, old);
    await until(async () => (await old.read()).length === 2);
    expect(await old.state(titles)).toEqual(['under k1']);
    await until(() => old.sync.status().unreadable?.events === 1);
    await Promise.all([a2.close(), b.close(), old.close()]);
  });

  it('a device reopened with the key it lacked folds what it could not read', async () => {
    const key = generateEncryptionKey();
    const a = await open(memoryStorage(), key);
    await a.append('c', { type: 'added', data: { title: 'one' } });
    await a.append('c', { type: 'added', data: { title: 'two' } });
    await a.append('c', { type: 'added', data: { title: 'three' } });
    const storageB = memoryStorage();
    const other = generateEncryptionKey();
    const b = await open(storageB, other);
    await connect(a, b);
    await until(async () => (await b.read()).length === 3);
    expect(await b.state(titles)).toEqual([]);
    // Its own events after them: a snapshot now covers the three it skipped.
    await b.append('c', { type: 'added', data: { title: 'b1' } });
    await b.append('c', { type: 'added', data: { title: 'b2' } });
    expect(await b.state(titles)).toEqual(['b1', 'b2']);
    expect((await b.inspect(titles)).snapshots.length).toBeGreaterThan(0);
    await b.close();
    const b2 = await open(storageB, key, [other]);
    expect(await b2.state(titles)).toEqual(['one', 'two', 'three', 'b1', 'b2']);
    await Promise.all([a.close(), b2.close()]);
  });
});
