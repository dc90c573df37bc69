/**
 * The hooks outside a browser: what a server render shows, and their types over the stores of
 * openStore and connectStore. Their behaviour in a live app is test/browser/react/hooks.test.ts.
 */
import { createElement as h } from 'react';
import { renderToString } from 'react-dom/server';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type ConnectedStore,
  defineProjection,
  type EventStore,
  memoryStorage,
  openStore,
  type StoredEvent,
  type SyncStatus,
} from '../../src/index.ts';
import { useProjection, useQuery, useSyncStatus } from '../../src/react/index.ts';

const count = defineProjection<number>({
  name: 'count',
  version: 1,
  initial: () => 0,
  apply: (n) => n + 1,
});

interface HookStore {
  watch(projection: string, listener: (state: unknown) => void): () => void;
  state(projection: string): Promise<unknown>;
  query(projection: string, name: string, ...args: unknown[]): Promise<unknown>;
  sync: EventStore['sync'];
}

function App({ store }: { store: HookStore }) {
  const n = useProjection(store, count);
  const none = useQuery(store, count, 'none');
  const status = useSyncStatus(store);
  return h('p', null, `${n ?? 'loading'} ${none ?? 'loading'} ${status.state}`);
}

describe('react hooks', () => {
  it('render on the server without subscribing: no state yet, the current sync status (hooks.ts 2)', async () => {
    const store = await openStore({ name: 'ssr', storage: memoryStorage(), projections: [count] });
    await store.append('s', { type: 'Tick', data: {} });
    let watched = 0;
    const probe: HookStore = {
      watch: (p, l) => {
        watched++;
        return store.watch(p, l);
      },
      state: (p) => store.state(p),
      query: (p, q, ...args) => store.query(p, q, ...args),
      sync: store.sync,
    };
    expect(renderToString(h(App, { store: probe }))).toBe('<p>loading loading offline</p>');
    expect(watched).toBe(0);
    await store.close();
  });

  it('type the state through the projection object and work with both kinds of store', () => {
    // Checked by tsc (npm run typecheck); never called.
    const typed = (local: EventStore<{ title: string }>, remote: ConnectedStore<unknown>) => {
      expectTypeOf(useProjection(local, count)).toEqualTypeOf<number | undefined>();
      expectTypeOf(useProjection(remote, 'count')).toEqualTypeOf<unknown>();
      expectTypeOf(useProjection<string[]>(remote, 'list')).toEqualTypeOf<string[] | undefined>();
      expectTypeOf(useQuery(local, count, 'any', 1, 'two')).toEqualTypeOf<unknown>();
      expectTypeOf(useQuery<number>(remote, 'todos', 'open')).toEqualTypeOf<number | undefined>();
      expectTypeOf(useSyncStatus(local)).toEqualTypeOf<SyncStatus>();
      expectTypeOf(useSyncStatus(remote)).toEqualTypeOf<SyncStatus>();
      // @ts-expect-error a store is required
      useProjection({}, count);
      // @ts-expect-error the projection's state is a number
      const wrong: string | undefined = useProjection(local, count);
      return wrong;
    };
    expectTypeOf(typed).toBeFunction();
  });

  it('types a query by its projection when the queries are declared precisely', () => {
    const todos = {
      name: 'todos',
      initial: (): string[] => [],
      queries: {
        nth: (state: string[], i: number) => state[i],
        size: (state: string[]) => state.length,
      },
    };
    const typed = (store: EventStore) => {
      expectTypeOf(useQuery(store, todos, 'nth', 2)).toEqualTypeOf<string | undefined>();
      expectTypeOf(useQuery(store, todos, 'size')).toEqualTypeOf<number | undefined>();
      // @ts-expect-error nth takes a number
      useQuery(store, todos, 'nth', 'two');
      // @ts-expect-error no such query
      useQuery(store, todos, 'missing');
    };
    expectTypeOf(typed).toBeFunction();
  });

  it('type state and queries through typed projections of a typed store', () => {
    type TodoEvents = { TodoAdded: { title: string }; TodoDone: { done: boolean } };
    const open = defineProjection<number, TodoEvents>({
      name: 'open',
      version: 1,
      initial: () => 0,
      apply: (n, e) => (e.type === 'TodoAdded' ? n + 1 : n),
    });
    const titles = defineProjection({
      name: 'titles',
      version: 1,
      initial: (): string[] => [],
      apply: (list, e: StoredEvent<TodoEvents>) =>
        e.type === 'TodoAdded' ? [...list, e.data.title] : list,
      queries: { at: (list: string[], i: number) => list[i] },
    });
    const typed = (store: EventStore<TodoEvents>, remote: ConnectedStore<TodoEvents>) => {
      expectTypeOf(useProjection(store, open)).toEqualTypeOf<number | undefined>();
      expectTypeOf(useProjection(remote, titles)).toEqualTypeOf<string[] | undefined>();
      expectTypeOf(useQuery(remote, titles, 'at', 1)).toEqualTypeOf<string | undefined>();
      expectTypeOf(useQuery(store, open, 'any', 1)).toEqualTypeOf<unknown>();
      // @ts-expect-error `at` takes a number
      useQuery(store, titles, 'at', 'one');
      // @ts-expect-error titles has no query `first`
      useQuery(store, titles, 'first');
    };
    expectTypeOf(typed).toBeFunction();
  });
});
