/**
 * Type-level tests of typed events (core/event-map.ts, store/typed.ts). `tsc --noEmit` (npm test's
 * typecheck) checks this file: a loosened type makes an `@ts-expect-error` line unused, or an
 * `expectTypeOf` line fail, and so fails CI. The runtime parts run on a memory store.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  type Conflict,
  type ConnectedStore,
  connectStore,
  defineProjection,
  type EventStore,
  type JsonObject,
  type LooseEvents,
  memoryStorage,
  type NewEvent,
  openStore,
  type Projection,
  type ReceivedEvents,
  type StoredEvent,
  type StoredEventOf,
  type StoreOptions,
} from '../../src/index.ts';

type TodoEvents = {
  TodoAdded: { title: string; note?: string };
  TodoDone: { done: boolean };
  TodoCleared: null;
};

const open = defineProjection<number, TodoEvents>({
  name: 'open',
  version: 1,
  initial: () => 0,
  apply: (n, e) => {
    if (e.type === 'TodoAdded') {
      expectTypeOf(e.data).toEqualTypeOf<{ title: string; note?: string }>();
      return n + 1;
    }
    if (e.type === 'TodoDone') {
      expectTypeOf(e.data).toEqualTypeOf<{ done: boolean }>();
      return e.data.done ? n - 1 : n;
    }
    expectTypeOf(e.type).toEqualTypeOf<'TodoCleared'>();
    expectTypeOf(e.data).toEqualTypeOf<null>();
    return 0;
  },
});

/** Left to inference: the state, the event map and the queries come from the definition. */
const titles = defineProjection({
  name: 'titles',
  version: 1,
  initial: (): string[] => [],
  apply: (list, e: StoredEvent<TodoEvents>) =>
    e.type === 'TodoAdded' ? [...list, e.data.title] : list,
  queries: {
    count: (list: string[]) => list.length,
    at: (list: string[], i: number) => list[i],
    startingWith: async (list: string[], prefix: string, limit = 10) =>
      list.filter((t) => t.startsWith(prefix)).slice(0, limit),
  },
});

const typedStore = () =>
  openStore<TodoEvents>({ name: 'todos', storage: memoryStorage(), projections: [open, titles] });

describe('typed events: append', () => {
  it('checks type and data together, for one event and for a batch', async () => {
    const store = await typedStore();
    const [added] = await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
    expectTypeOf(added!).toEqualTypeOf<StoredEvent<TodoEvents>>();
    await store.append('todo-1', [
      { type: 'TodoAdded', data: { title: 'Bread', note: 'brown' }, meta: { by: 'ann' } },
      { type: 'TodoDone', data: { done: true }, id: 'done-1', schema: 1 },
      { type: 'TodoCleared', data: null },
    ]);
    const batch: readonly NewEvent<TodoEvents>[] = [{ type: 'TodoDone', data: { done: false } }];
    await store.append('todo-1', batch, { expectedVersion: 4 });

    // @ts-expect-error a typo in the type
    await store.append('todo-1', { type: 'TodoAddd', data: { title: 'x' } }).catch(() => {});
    // @ts-expect-error the data of another type
    await store.append('todo-1', { type: 'TodoAdded', data: { done: true } }).catch(() => {});
    // @ts-expect-error data of the right shape with a wrong field type
    await store.append('todo-1', { type: 'TodoDone', data: { done: 'yes' } }).catch(() => {});
    const wrongBatch = store.append('todo-1', [
      { type: 'TodoAdded', data: { title: 'ok' } },
      // @ts-expect-error one wrong event in a batch
      { type: 'TodoDone', data: { title: 'not done' } },
    ]);
    await wrongBatch.catch(() => {});
    // @ts-expect-error data is required, even when it is null
    await store.append('todo-1', { type: 'TodoCleared' }).catch(() => {});
    await store.close();
  });

  it('is friendly to exactOptionalPropertyTypes: optional fields may be left out, not set to undefined', async () => {
    const store = await typedStore();
    await store.append('t', { type: 'TodoAdded', data: { title: 'no note' } });
    await store
      // @ts-expect-error exactOptionalPropertyTypes: undefined is no JSON value (the store refuses it)
      .append('t', { type: 'TodoAdded', data: { title: 'x', note: undefined } })
      .catch(() => {});
    // @ts-expect-error exactOptionalPropertyTypes: meta is left out, never undefined
    await store.append('t', { type: 'TodoDone', data: { done: true }, meta: undefined });
    await store.close();
  });
});

describe('typed events: upcasters and meta', () => {
  it("checks an upcaster's type against the map; meta stays a JSON object", async () => {
    const store = await openStore<TodoEvents>({
      name: 'up',
      storage: memoryStorage(),
      upcasters: [{ type: 'TodoAdded', fromSchema: 1, up: (data) => data }],
    });
    const [e] = await store.append('t', {
      type: 'TodoDone',
      data: { done: true },
      meta: { by: 'ann', tags: ['x'] },
    });
    expectTypeOf(e!.meta).toEqualTypeOf<JsonObject | undefined>();
    const dated = { type: 'TodoDone', data: { done: true }, meta: { at: new Date() } } as const;
    // @ts-expect-error meta is JSON, whatever the event type
    await store.append('t', dated).catch(() => {});
    await store.close();
    void openStore<TodoEvents>({
      name: 'up2',
      storage: memoryStorage(),
      // @ts-expect-error an upcaster for a type the map lacks
      upcasters: [{ type: 'TodoAddd', fromSchema: 1, up: (data) => data }],
    }).then((s) => s.close());
  });
});

describe('typed events: what the store hands out', () => {
  it('narrows by type in read, readSince, subscribe and conflicts', async () => {
    const store = await typedStore();
    const unsubscribe = store.subscribe((events) => {
      expectTypeOf(events).toEqualTypeOf<StoredEvent<TodoEvents>[]>();
      for (const e of events) if (e.type === 'TodoDone') expectTypeOf(e.data.done).toBeBoolean();
    });
    await store.append('t', { type: 'TodoAdded', data: { title: 'Milk' } });
    const [first] = await store.read();
    if (first?.type === 'TodoAdded') expectTypeOf(first.data.title).toBeString();
    expectTypeOf(first!.type).toEqualTypeOf<'TodoAdded' | 'TodoDone' | 'TodoCleared'>();
    expectTypeOf(store.readSince(0)).resolves.toEqualTypeOf<ReceivedEvents<TodoEvents>>();
    expectTypeOf(store.conflicts()).resolves.toEqualTypeOf<Conflict<TodoEvents>[]>();
    expectTypeOf<Conflict<TodoEvents>['events'][number]>().toEqualTypeOf<StoredEvent<TodoEvents>>();
    expectTypeOf<StoredEventOf<TodoEvents, 'TodoDone'>>().toEqualTypeOf<
      Extract<StoredEvent<TodoEvents>, { type: 'TodoDone' }>
    >();
    unsubscribe();
    await store.close();
  });

  it('checks the type names in read, readSince and subscribe filters', async () => {
    const store = await typedStore();
    await store.read({ types: ['TodoAdded', 'TodoDone'] });
    await store.readSince(0, { types: ['TodoCleared'] });
    store.subscribe(() => {}, { types: ['TodoDone'] })();
    // @ts-expect-error a typo in a read filter
    await store.read({ types: ['TodoAddd'] });
    // @ts-expect-error a typo in a readSince filter
    await store.readSince(0, { types: ['Todo'] });
    // @ts-expect-error a typo in a subscribe filter
    store.subscribe(() => {}, { types: ['TodoDon'] })();
    await store.close();
    const loose = await openStore({ name: 'l', storage: memoryStorage() });
    await loose.read({ types: ['anything'] });
    await loose.close();
  });
});

describe('typed events: projections as typed handles', () => {
  it('types state and watch from the projection object', async () => {
    const store = await typedStore();
    const n: number = await store.state(open);
    expectTypeOf(n).toBeNumber();
    expectTypeOf(store.state(titles, { at: 0 })).resolves.toEqualTypeOf<string[]>();
    // @ts-expect-error the projection's state is a number
    const wrong: string = await store.state(open);
    void wrong;
    // The name still works, typed by the caller as before.
    expectTypeOf(store.state('open')).resolves.toBeUnknown();
    expectTypeOf(store.state<number>('open')).resolves.toBeNumber();
    store.watch(titles, (list) => expectTypeOf(list).toEqualTypeOf<string[]>())();
    // @ts-expect-error the listener gets the projection's state
    store.watch(open, (state: string) => state)();
    await store.rebuild(open);
    await store.close();
  });

  it("checks a query's name and arguments and types its result", async () => {
    const store = await typedStore();
    expectTypeOf(store.query(titles, 'count')).resolves.toBeNumber();
    expectTypeOf(store.query(titles, 'at', 0)).resolves.toEqualTypeOf<string | undefined>();
    expectTypeOf(store.query(titles, 'startingWith', 'M')).resolves.toEqualTypeOf<string[]>();
    expectTypeOf(store.query(titles, 'startingWith', 'M', 2)).resolves.toEqualTypeOf<string[]>();
    // @ts-expect-error no such query
    await store.query(titles, 'cnt').catch(() => {});
    // @ts-expect-error an argument of the wrong type
    await store.query(titles, 'at', 'first').catch(() => {});
    // @ts-expect-error a missing argument
    await store.query(titles, 'at').catch(() => {});
    // @ts-expect-error an argument too many
    await store.query(titles, 'count', 1).catch(() => {});
    // By name, or with a projection declared with explicit type arguments: loose, as before.
    expectTypeOf(store.query('titles', 'anything', 1, 'x')).resolves.toBeUnknown();
    expectTypeOf(store.query(open, 'anything', 1)).resolves.toBeUnknown();
    await store.close();
  });

  it('refuses a projection over another event map', async () => {
    type Other = { Paid: { amount: number } };
    const paid = defineProjection<number, Other>({
      name: 'paid',
      version: 1,
      initial: () => 0,
      apply: (n, e) => n + e.data.amount,
    });
    const store = await typedStore();
    // @ts-expect-error its apply reads events this store does not hold
    void store.state(paid).catch(() => {});
    // @ts-expect-error the same at open
    void openStore<TodoEvents>({ name: 'x', storage: memoryStorage(), projections: [paid] });
    await store.close();
  });

  it('fits loose projections and typed ones in one list', () => {
    const count = defineProjection({
      name: 'count',
      version: 1,
      initial: () => 0,
      apply: (n: number) => n + 1,
    });
    expectTypeOf(count).toEqualTypeOf<Projection<number, unknown>>();
    void openStore<TodoEvents>({
      name: 'mixed',
      storage: memoryStorage(),
      projections: [open, titles, count],
    }).then(async (store) => {
      expectTypeOf(store.state(count)).resolves.toBeNumber();
      await store.close();
    });
  });
});

describe('typed events: loose mode', () => {
  it('stays as loose as before without a type parameter', async () => {
    const store = await openStore({ name: 'loose', storage: memoryStorage() });
    expectTypeOf(store).toEqualTypeOf<EventStore<unknown>>();
    const [e] = await store.append('s', { type: 'anything', data: { any: ['json', 1] } });
    expectTypeOf(e!.type).toBeString();
    expectTypeOf(e!.data).toBeUnknown();
    expectTypeOf(store.read()).resolves.toEqualTypeOf<StoredEvent[]>();
    expectTypeOf(store.state('x')).resolves.toBeUnknown();
    expectTypeOf(store.query('x', 'y', 1)).resolves.toBeUnknown();
    const count = defineProjection({
      name: 'count',
      version: 1,
      initial: () => 0,
      apply: (n: number, event) => (event.type === 'x' ? n + 1 : n),
    });
    expectTypeOf(store.state(count)).resolves.toBeNumber();
    await store.close();
  });

  it('keeps one data type for every event type with LooseEvents<D>', async () => {
    const store = await openStore<LooseEvents<{ n: number }>>({
      name: 'n',
      storage: memoryStorage(),
    });
    const [e] = await store.append('s', { type: 'whatever', data: { n: 1 } });
    expectTypeOf(e!.type).toBeString();
    expectTypeOf(e!.data).toEqualTypeOf<{ n: number }>();
    // @ts-expect-error the data type is still checked
    await store.append('s', { type: 'whatever', data: { n: 'one' } }).catch(() => {});
    await store.close();
  });

  it('treats unknown and any as loose maps', () => {
    expectTypeOf<StoredEvent<unknown>>().toEqualTypeOf<StoredEvent>();
    expectTypeOf<NewEvent<unknown>['type']>().toBeString();
    expectTypeOf<EventStore<unknown>>().toEqualTypeOf<EventStore>();
  });
});

describe('typed events: assignability', () => {
  it('lets a typed store, its results and its options go where loose ones are expected', () => {
    // What bindYDoc, loose helpers and hooks take: EventStore (loose).
    expectTypeOf<EventStore<TodoEvents>>().toExtend<EventStore>();
    expectTypeOf<ConnectedStore<TodoEvents>>().toExtend<EventStore>();
    expectTypeOf<Conflict<TodoEvents>>().toExtend<Conflict>();
    expectTypeOf<ReceivedEvents<TodoEvents>>().toExtend<ReceivedEvents>();
    expectTypeOf<StoreOptions<TodoEvents>>().toExtend<StoreOptions>();
    expectTypeOf<Projection<number, TodoEvents>>().toExtend<Projection<number>>();
    expectTypeOf<EventStore>().toExtend<EventStore<LooseEvents>>();
    expectTypeOf<EventStore<TodoEvents>>().not.toExtend<EventStore<{ Paid: { amount: number } }>>();
  });
});

describe('typed events: connectStore', () => {
  it('returns the same typed EventStore on the main thread', () => {
    expectTypeOf(connectStore<TodoEvents>).returns.resolves.toEqualTypeOf<
      ConnectedStore<TodoEvents>
    >();
    expectTypeOf<ConnectedStore<TodoEvents>>().toExtend<EventStore<TodoEvents>>();
    expectTypeOf<ConnectedStore<TodoEvents>['append']>().toEqualTypeOf<
      EventStore<TodoEvents>['append']
    >();
    expectTypeOf<ConnectedStore<TodoEvents>['query']>().toEqualTypeOf<
      EventStore<TodoEvents>['query']
    >();
  });
});
