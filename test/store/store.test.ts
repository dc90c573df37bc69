import { describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  defineProjection,
  IdempotencyError,
  memoryStorage,
  openStore,
  StoreClosedError,
  ValidationError,
} from '../../src/index.ts';
import { manualClock } from './helpers.ts';

type Todo = unknown;

const counter = defineProjection<number, Todo>({
  name: 'count',
  version: 1,
  initial: () => 0,
  apply: (n) => n + 1,
});

async function open(storage = memoryStorage(), clock = manualClock()) {
  return openStore<Todo>({ name: 'test', storage, projections: [counter], now: clock.now });
}

describe('append', () => {
  it('assigns dense seq and stream versions from 1 and returns the stored events', async () => {
    const store = await open();
    const first = await store.append('a', [
      { type: 'added', data: { title: 'x' } },
      { type: 'added', data: { title: 'y' } },
    ]);
    const second = await store.append('b', { type: 'added', data: {} });
    expect(first.map((e) => [e.stream, e.version, e.seq])).toEqual([
      ['a', 1, 1],
      ['a', 2, 2],
    ]);
    expect(second.map((e) => [e.stream, e.version, e.seq])).toEqual([['b', 1, 3]]);
    expect(new Set([...first, ...second].map((e) => e.replica))).toEqual(
      new Set([store.replicaId]),
    );
    expect(first[0]!.cursor < first[1]!.cursor && first[1]!.cursor < second[0]!.cursor).toBe(true);
    await store.close();
  });

  it('checks expectedVersion and writes nothing on a mismatch', async () => {
    const store = await open();
    await store.append('a', { type: 't', data: null }, { expectedVersion: 'none' });
    await expect(
      store.append('a', { type: 't', data: null }, { expectedVersion: 'none' }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY', expectedVersion: 'none', actualVersion: 1 });
    const stale = store.append('a', { type: 't', data: null }, { expectedVersion: 0 });
    await expect(stale).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(stale).rejects.toMatchObject({
      expectedVersion: 0,
      actualVersion: 1,
      stream: 'a',
    });
    await store.append('a', { type: 't', data: null }, { expectedVersion: 1 });
    await store.append('a', { type: 't', data: null }, { expectedVersion: 'any' });
    expect((await store.read({ stream: 'a' })).map((e) => e.version)).toEqual([1, 2, 3]);
    await store.close();
  });

  it('rejects a batch with one bad event and writes nothing of it', async () => {
    const store = await open();
    const bad = store.append('a', [
      { type: 'ok', data: { n: 1 } },
      { type: 'bad', data: { when: new Date() } as unknown as Todo },
    ]);
    await expect(bad).rejects.toBeInstanceOf(ValidationError);
    await expect(bad).rejects.toMatchObject({ code: 'VALIDATION', path: 'events[1].data.when' });
    expect(await store.read()).toEqual([]);
    await store.close();
  });

  it('treats a fully stored batch as a no-op, also after a restart (reliability 1)', async () => {
    const storage = memoryStorage();
    const clock = manualClock();
    const store = await open(storage, clock);
    const stored = await store.append('a', [
      { id: 'e1', type: 't', data: { a: 1, b: 2 } },
      { id: 'e2', type: 't', data: null },
    ]);
    await store.close();
    clock.advance(10 * 60_000);
    const reopened = await open(storage, clock);
    const again = await reopened.append(
      'a',
      [
        { id: 'e1', type: 't', data: { b: 2, a: 1 } },
        { id: 'e2', type: 't', data: null },
      ],
      { expectedVersion: 0 },
    );
    expect(again).toEqual(stored);
    expect(await reopened.read()).toHaveLength(2);
    await reopened.close();
  });

  it('rejects a stored id with another payload, and a batch mixing stored and new ids (reliability 2)', async () => {
    const store = await open();
    await store.append('a', { id: 'e1', type: 't', data: { v: 1 } });
    await expect(store.append('a', { id: 'e1', type: 't', data: { v: 2 } })).rejects.toMatchObject({
      code: 'IDEMPOTENCY',
      reason: 'payload-differs',
      eventId: 'e1',
    });
    await expect(store.append('b', { id: 'e1', type: 't', data: { v: 1 } })).rejects.toBeInstanceOf(
      IdempotencyError,
    );
    await expect(
      store.append('a', [
        { id: 'e1', type: 't', data: { v: 1 } },
        { id: 'e2', type: 't', data: null },
      ]),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY', reason: 'mixed-batch' });
    expect((await store.read()).map((e) => e.id)).toEqual(['e1']);
    await store.close();
  });

  it('checks idempotency before expectedVersion', async () => {
    const store = await open();
    await store.append('a', { id: 'e1', type: 't', data: 1 });
    await store.append('a', { type: 't', data: 2 });
    await expect(
      store.append('a', { id: 'e1', type: 't', data: 1 }, { expectedVersion: 0 }),
    ).resolves.toHaveLength(1);
    await expect(
      store.append('a', { id: 'e1', type: 't', data: 3 }, { expectedVersion: 0 }),
    ).rejects.toBeInstanceOf(IdempotencyError);
    await store.close();
  });

  it('keeps every resolved append after close and reopen', async () => {
    const storage = memoryStorage();
    const store = await open(storage);
    for (let i = 0; i < 20; i++) await store.append(`s${i % 3}`, { type: 't', data: i });
    await store.close();
    const reopened = await open(storage);
    expect((await reopened.read()).map((e) => e.data)).toEqual([...Array(20).keys()]);
    expect(await reopened.state('count')).toBe(20);
    await reopened.close();
  });
});

describe('close', () => {
  it('makes every later call reject with StoreClosedError', async () => {
    const store = await open();
    await store.append('a', { type: 't', data: 1 });
    await store.close();
    await expect(store.append('a', { type: 't', data: 1 })).rejects.toBeInstanceOf(
      StoreClosedError,
    );
    await expect(store.read()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    await expect(store.state('count')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    expect(() => store.subscribe(() => {})).toThrow(StoreClosedError);
    await store.close();
  });

  it('lets an append in flight finish before closing', async () => {
    const storage = memoryStorage();
    const store = await open(storage);
    const pending = store.append('a', { type: 't', data: 1 });
    await store.close();
    await expect(pending).resolves.toHaveLength(1);
    const reopened = await open(storage);
    expect(await reopened.read()).toHaveLength(1);
    await reopened.close();
  });
});

describe('openStore options', () => {
  it('refuses a durability it does not know with VALIDATION, before opening anything', async () => {
    let opened = 0;
    const storage = memoryStorage();
    const counting = {
      ...storage,
      open: (o?: object) => {
        opened++;
        return storage.open(o);
      },
    };
    const error = await openStore({
      name: 'test',
      storage: counting,
      durability: 'fast' as unknown as 'strict',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'VALIDATION' });
    expect(opened).toBe(0);
    for (const durability of ['strict', 'relaxed', 'default'] as const) {
      await (await openStore({ name: 'test', storage, durability })).close();
    }
  });
});
