/**
 * A React app over a store, built by Vite like an app ships (tabs harness startBuiltServer):
 * the three hooks of @chronicle-es/store/react render into the DOM, each component counts its
 * renders, and the store handed to the hooks counts the watch subscriptions it holds and the
 * states it delivered. No JSX: createElement keeps the tsconfig as it is.
 */
import { Component, createElement as h, memo, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { requestStats } from '../../../src/client/protocol.ts';
import { connectStore, type EventStore, memoryStorage, openStore } from '../../../src/index.ts';
import { useProjection, useQuery, useSyncStatus } from '../../../src/react/index.ts';
import { count, todos } from '../fixtures/projections.ts';
import { startTestWorker } from '../fixtures/workers.ts';
import type { ReactPageApi, StoreKind } from './page-api.ts';

const renders: Record<string, number> = {};
const rendered = (name: string) => {
  renders[name] = (renders[name] ?? 0) + 1;
};

/** The store as the hooks see it, counting what they hold and receive. */
function counting(store: EventStore<unknown>) {
  return {
    watch(projection: string, listener: (state: unknown) => void): () => void {
      const stop = store.watch(projection, (state: unknown) => {
        app.emitted[projection] = (app.emitted[projection] ?? 0) + 1;
        listener(state);
      });
      app.watching++;
      app.subscribed++;
      let on = true;
      return () => {
        if (!on) return;
        on = false;
        app.watching--;
        stop();
      };
    },
    state: (projection: string) => store.state(projection),
    query: (projection: string, name: string, ...args: unknown[]) =>
      store.query(projection, name, ...args),
    sync: store.sync,
  };
}
type HookStore = ReturnType<typeof counting>;

function CountView({ store }: { store: HookStore }) {
  rendered('count');
  const n = useProjection(store, count);
  return h('output', { id: 'count' }, n === undefined ? 'loading' : String(n));
}

// Memoised on the todo object itself: it renders again only when that object is a new one.
const TodoItem = memo(function TodoItem({ todo }: { todo: { title: string; done: boolean } }) {
  rendered('item');
  return h('li', null, `${todo.done ? '✓' : '○'} ${todo.title}`);
});

function TodosView({ store }: { store: HookStore }) {
  rendered('todos');
  const list = useProjection(store, todos);
  if (list === undefined) return h('ul', { id: 'todos' }, 'loading');
  return h(
    'ul',
    { id: 'todos' },
    Object.entries(list).map(([id, todo]) => h(TodoItem, { key: id, todo })),
  );
}

function OpenView({ store }: { store: HookStore }) {
  rendered('open');
  const open = useQuery<number>(store, todos, 'open');
  return h('output', { id: 'open' }, open === undefined ? 'loading' : String(open));
}

function TitleView({ store, todoId }: { store: HookStore; todoId: string }) {
  rendered('title');
  const title = useQuery<string | undefined>(store, 'todos', 'title', todoId);
  return h('output', { id: 'title' }, title ?? '-');
}

/** An argument made anew on every render (String(['t1']) is 't1' for the fixture's query). */
function TitleByListView({ store, todoId }: { store: HookStore; todoId: string }) {
  rendered('title-list');
  const title = useQuery<string | undefined>(store, 'todos', 'title', [todoId]);
  return h('output', { id: 'title-list' }, title ?? '-');
}

function StatusView({ store }: { store: HookStore }) {
  rendered('status');
  const status = useSyncStatus(store);
  return h('output', { id: 'sync' }, `${status.state} ${status.pending}`);
}

function Missing({ store }: { store: HookStore }) {
  useProjection(store, 'no-such-projection');
  return h('output', null, 'unreachable');
}

function BadQuery({ store }: { store: HookStore }) {
  useQuery(store, todos, 'no-such-query');
  return h('output', null, 'unreachable');
}

class Boundary extends Component<{ id: string; children?: ReactNode }, { error?: unknown }> {
  override state: { error?: unknown } = {};
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  override render() {
    if (this.state.error === undefined) return this.props.children;
    const code = (this.state.error as { code?: unknown }).code;
    return h('output', { id: this.props.id }, String(code));
  }
}

function App({ store, todoId }: { store: HookStore; todoId: string }) {
  return h(
    'main',
    null,
    h(CountView, { store }),
    h(TodosView, { store }),
    h(OpenView, { store }),
    h(TitleView, { store, todoId }),
    h(TitleByListView, { store, todoId }),
    h(StatusView, { store }),
    h(Boundary, { id: 'missing' }, h(Missing, { store })),
    h(Boundary, { id: 'bad-query' }, h(BadQuery, { store })),
  );
}

let store: EventStore<unknown> | undefined;
let hookStore: HookStore | undefined;
let worker: Worker | undefined;
let root: Root | undefined;
const store$ = () => {
  if (store === undefined) throw new Error('no store open');
  return store;
};

const app: ReactPageApi = {
  renders,
  emitted: {},
  watching: 0,
  subscribed: 0,
  async open(kind: StoreKind, db: string) {
    if (kind === 'memory') {
      store = await openStore({ name: db, storage: memoryStorage(), projections: [count, todos] });
    } else {
      worker = startTestWorker({ db }, 'dedicated') as Worker;
      store = await connectStore(worker);
    }
    hookStore = counting(store$());
  },
  render(props) {
    root ??= createRoot(document.getElementById('root')!);
    root.render(h(App, { store: hookStore!, todoId: props.todoId }));
  },
  unmount() {
    root?.unmount();
    root = undefined;
  },
  async burst(n) {
    const s = store$();
    await Promise.all(
      Array.from({ length: n }, (_, i) => s.append('burst', { type: 'Tick', data: { i } })),
    );
  },
  async addTodo(id, title) {
    await store$().append(id, { type: 'TodoAdded', data: { title } });
  },
  async doneTodo(id) {
    await store$().append(id, { type: 'TodoDone', data: {} });
  },
  syncTo(url) {
    store$().sync.connect({ url });
  },
  async workerListeners() {
    if (worker === undefined) throw new Error('no worker');
    return (await requestStats(worker)).listeners;
  },
  count: () => store$().state<number>('count'),
};
(window as unknown as { app: ReactPageApi }).app = app;
document.title = 'ready';
