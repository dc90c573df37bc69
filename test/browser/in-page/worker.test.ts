/**
 * The worker round trip from a page, in real Chromium and Firefox, in both modes: every EventStore method
 * through connectStore, errors with class and code, coalesced watch, and listeners released.
 * Cites the invariants of src/client/connect.ts (C1..C4) and worker/session.ts (S1..S4).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { requestStats } from '../../../src/client/protocol.ts';
import {
  ChronicleError,
  COMMAND_META,
  CommandRejectedError,
  ConcurrencyError,
  type ConnectedStore,
  connectStore,
  defineProjection,
  IdempotencyError,
  NotFoundError,
  StoreClosedError,
  type StoredEvent,
  ValidationError,
} from '../../../src/index.ts';
import { account } from '../../store/fixtures/account.ts';
import { count, todos } from '../fixtures/projections.ts';
import { startTestWorker } from '../fixtures/workers.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let databases = 0;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe.each(['dedicated', 'shared'] as const)('connectStore over a %s worker', (mode) => {
  const opened: { store: ConnectedStore; worker: Worker | SharedWorker }[] = [];

  async function open(db = `worker-${run}-${++databases}`) {
    const worker = startTestWorker({ db }, mode);
    const store = await connectStore(worker);
    opened.push({ store, worker });
    return { store, worker, db };
  }

  function statsEndpoint(worker: Worker | SharedWorker) {
    if (worker instanceof Worker) return worker;
    worker.port.start();
    return worker.port;
  }

  afterEach(async () => {
    for (const { store, worker } of opened.splice(0)) {
      await store.close();
      if (worker instanceof Worker) worker.terminate();
    }
  });

  it('appends to several streams atomically, and writes concurrent appends together, through the worker', async () => {
    const { store } = await open();
    await store.append('b', { type: 'TodoAdded', data: { title: 'B' } });
    const [a, b] = await store.appendMany([
      { stream: 'a', events: { type: 'TodoAdded', data: { title: 'A' } }, expectedVersion: 'none' },
      { stream: 'b', events: { type: 'TodoDone', data: {} }, expectedVersion: 1 },
    ]);
    expect(a!.map((e) => [e.stream, e.version])).toEqual([['a', 1]]);
    expect(b!.map((e) => [e.stream, e.version])).toEqual([['b', 2]]);
    const refused = await rejection(
      store.appendMany([
        { stream: 'c', events: { type: 'TodoAdded', data: { title: 'C' } } },
        { stream: 'b', events: { type: 'TodoDone', data: {} }, expectedVersion: 1 },
      ]),
    );
    expect(refused).toBeInstanceOf(ConcurrencyError);
    expect(await store.read({ stream: 'c' })).toEqual([]);
    // 50 appends fired at once: each settles on its own, in call order; one fails alone.
    const settled = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        store.append(
          i === 25 ? 'a' : `many-${i}`,
          { type: 'TodoAdded', data: { title: `#${i}` } },
          i === 25 ? { expectedVersion: 'none' } : {},
        ),
      ),
    );
    expect(settled.filter((r) => r.status === 'rejected')).toHaveLength(1);
    const seqs = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value[0]!.seq] : []));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(await store.state('count')).toBe(3 + 49);
  });

  it('runs an aggregate’s commands through the worker, refusals arriving as CommandRejectedError', async () => {
    const { store } = await open();
    await store.execute(account, 'acct-1', 'deposit', { cents: 100 });
    // Ten withdrawals racing through the worker: the balance allows three.
    const settled = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        store.execute(account, 'acct-1', 'withdraw', { cents: 30 }, { maxAttempts: 20 }),
      ),
    );
    const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(refused).toHaveLength(7);
    for (const error of refused) {
      expect(error).toBeInstanceOf(CommandRejectedError);
      expect(error).toMatchObject({ code: 'COMMAND_REJECTED', reason: 'INSUFFICIENT_FUNDS' });
    }
    const events = await store.read({ stream: 'acct-1' });
    expect(events.map((e) => e.version)).toEqual([1, 2, 3, 4]);
    const [first] = events;
    expect(
      await store.read({ correlationId: String(first!.meta?.[COMMAND_META.correlationId]) }),
    ).toEqual([first]);
    expect(await rejection(store.execute('nope', 'acct-1', 'deposit', {}))).toBeInstanceOf(
      NotFoundError,
    );
  });

  it('appends, reads, folds state and answers named queries through the worker', async () => {
    const { store } = await open();
    expect(store.replicaId).toMatch(/\S/);
    expect(store.worker.status()).toMatchObject({ mode, storage: 'open' });
    const [added] = await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
    expect(added).toMatchObject({ stream: 'todo-1', version: 1, replica: store.replicaId });
    await store.append('todo-2', [
      { type: 'TodoAdded', data: { title: 'Eggs' } },
      { type: 'TodoDone', data: {} },
    ]);
    expect((await store.read()).map((e) => e.type)).toEqual(['TodoAdded', 'TodoAdded', 'TodoDone']);
    expect(await store.read({ stream: 'todo-2', reverse: true, limit: 1 })).toHaveLength(1);
    expect(await store.state('count')).toBe(3);
    expect(await store.query('todos', 'title', 'todo-1')).toBe('Milk');
    expect(await store.query('todos', 'open')).toBe(1);
    expect(await store.state('count', { at: { eventId: added!.id } })).toBe(1);
    expect(await store.conflicts()).toEqual([]);
    const progress: number[] = [];
    await store.rebuild('count', (done) => progress.push(done));
    expect(await store.state('count')).toBe(3);
    expect(typeof store.persisted).toBe('boolean');
  });

  it('takes projection objects for state, query, watch, rebuild and inspect: only the name crosses', async () => {
    const { store } = await open();
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
    expect(await store.state(count)).toBe(1);
    expect(await store.query(todos, 'title', 'todo-1')).toBe('Milk');
    const states: number[] = [];
    const off = store.watch(count, (n) => states.push(n));
    await vi.waitFor(() => expect(states).toEqual([1]));
    off();
    await store.rebuild(count);
    expect(await store.inspect(count)).toMatchObject({ name: 'count', version: count.version });
    const stranger = defineProjection({
      name: 'nope',
      version: 1,
      initial: () => 0,
      apply: (n) => n,
    });
    expect(await rejection(store.state(stranger))).toBeInstanceOf(NotFoundError);
    expect(await rejection(store.inspect(stranger))).toBeInstanceOf(NotFoundError);
  });

  it('reads in receive order and keeps a local cache through the worker', async () => {
    const { store, db } = await open();
    await store.append('doc', { type: 'a', data: 1 });
    await store.append('other', { type: 'a', data: 2 });
    await store.append('doc', { type: 'b', data: 3 });
    const since = await store.readSince(1, { stream: 'doc' });
    expect(since.events.map((e) => e.data)).toEqual([3]);
    expect(since).toMatchObject({ position: 3, head: 3 });
    await store.local.set('cache', { position: 3, state: 'AAE=' });
    await expect(store.local.set('', 1)).rejects.toMatchObject({ code: 'VALIDATION' });
    await store.close();
    const again = await open(db);
    expect(await again.store.local.get('cache')).toEqual({ position: 3, state: 'AAE=' });
    expect(await again.store.read()).toHaveLength(3);
  });

  it('keeps the class, code and fields of errors thrown in the worker (C3)', async () => {
    const { store } = await open();
    await store.append('s', { type: 'A', data: 1 });
    const stale = await rejection(
      store.append('s', { type: 'A', data: 2 }, { expectedVersion: 0 }),
    );
    expect(stale).toBeInstanceOf(ConcurrencyError);
    expect(stale).toBeInstanceOf(ChronicleError);
    expect(stale).toMatchObject({
      code: 'CONCURRENCY',
      expectedVersion: 0,
      actualVersion: 1,
      stream: 's',
    });

    await store.append('s', { id: 'fixed-id', type: 'A', data: 1 });
    const differs = await rejection(store.append('s', { id: 'fixed-id', type: 'A', data: 9 }));
    expect(differs).toBeInstanceOf(IdempotencyError);
    expect(differs).toMatchObject({
      code: 'IDEMPOTENCY',
      eventId: 'fixed-id',
      reason: 'payload-differs',
    });

    const invalid = await rejection(store.append('s', { type: 'A', data: Number.NaN }));
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid).toMatchObject({ code: 'VALIDATION' });
    expect((invalid as ValidationError).path).toMatch(/data/);

    const missing = await rejection(store.state('nope'));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    expect(await store.read()).toHaveLength(2);
  });

  it('delivers subscribed events from the worker and stops after unsubscribe', async () => {
    const { store } = await open();
    const seen: StoredEvent[] = [];
    const off = store.subscribe((events) => seen.push(...events), { stream: 'a' });
    await vi.waitFor(async () => {
      await store.append('a', { type: 'X', data: 1 });
      expect(seen.length).toBeGreaterThan(0);
    });
    off();
    const before = seen.length;
    await store.append('a', { type: 'X', data: 2 });
    await store.read();
    expect(seen).toHaveLength(before);
    expect(seen.every((e) => e.stream === 'a')).toBe(true);
  });

  it('gives a watch listener the current state, then at most one state per committed append (S3)', async () => {
    const { store } = await open();
    const states: number[] = [];
    const off = store.watch<number>('count', (n) => states.push(n));
    await vi.waitFor(() => expect(states).toEqual([0]));
    const appends = 40;
    await Promise.all(
      Array.from({ length: appends }, (_, i) => store.append(`s-${i}`, { type: 'A', data: i })),
    );
    await vi.waitFor(() => expect(states.at(-1)).toBe(appends));
    expect(states.length).toBeLessThanOrEqual(appends + 1);
    expect([...states].sort((a, b) => a - b)).toEqual(states);
    off();
  });

  it('releases every listener in the worker on unsubscribe and on close (S2)', async () => {
    const { store, worker } = await open();
    const endpoint = statsEndpoint(worker);
    const base = (await requestStats(endpoint)).listeners;
    const offs = [
      store.subscribe(() => {}),
      store.watch('count', () => {}),
      store.watch('todos', () => {}),
    ];
    await vi.waitFor(async () => expect((await requestStats(endpoint)).listeners).toBe(base + 3));
    for (const off of offs) off();
    await vi.waitFor(async () => expect((await requestStats(endpoint)).listeners).toBe(base));
    store.subscribe(() => {});
    await vi.waitFor(async () => expect((await requestStats(endpoint)).listeners).toBe(base + 1));
    await store.close();
    await vi.waitFor(async () => expect((await requestStats(endpoint)).listeners).toBe(base - 1));
  });

  it('lends a token function to the worker, which calls it again on every connection attempt (S5)', async () => {
    const { store } = await open();
    let calls = 0;
    // Nothing listens on the discard port: every attempt fails at once, and is retried.
    const connection = store.sync.connect({
      url: 'ws://127.0.0.1:9/',
      token: async () => {
        calls += 1;
        return `token-${calls}`;
      },
    });
    await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(2), { timeout: 15_000 });
    await connection.close();
  });

  it('takes a list of server URLs across the worker boundary (failover), and refuses an empty one', async () => {
    const { store } = await open();
    let calls = 0;
    // Neither listens: the worker tries them in turn, asking for a token on every attempt.
    const connection = store.sync.connect({
      url: ['ws://127.0.0.1:9/', 'ws://127.0.0.1:7/'],
      token: async () => {
        calls += 1;
        return `token-${calls}`;
      },
    });
    await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(2), { timeout: 15_000 });
    await connection.close();
    expect(() => store.sync.connect({ url: [] })).toThrow(ValidationError);
  });

  it('rejects every call after close with StoreClosedError (C4)', async () => {
    const { store } = await open();
    await store.close();
    expect(await rejection(store.read())).toBeInstanceOf(StoreClosedError);
    expect(() => store.subscribe(() => {})).toThrow(StoreClosedError);
  });
});
