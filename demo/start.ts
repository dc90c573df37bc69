/**
 * `npm start`: until the PWA demo lands, a small tour of the store in Node: append, projections,
 * idempotent retries, optimistic concurrency and time travel.
 */
import {
  ConcurrencyError,
  defineProjection,
  memoryStorage,
  openStore,
  type StoredEvent,
} from '../src/index.ts';

type CardEvent =
  | { type: 'CardAdded'; title: string; column: string }
  | { type: 'CardMoved'; column: string };

type Board = Record<string, { title: string; column: string }>;

const board = defineProjection<Board, CardEvent>({
  name: 'board',
  version: 1,
  initial: () => ({}),
  apply: (state, event: StoredEvent<CardEvent>) => {
    const card = event.stream;
    const data = event.data;
    if (data.type === 'CardAdded')
      return { ...state, [card]: { title: data.title, column: data.column } };
    const existing = state[card];
    return existing ? { ...state, [card]: { ...existing, column: data.column } } : state;
  },
  queries: {
    inColumn: (state: Board, column: string) =>
      Object.values(state).filter((c) => c.column === column),
  },
});

let clock = Date.UTC(2026, 10, 26, 9, 0);
const store = await openStore<CardEvent>({
  name: 'demo',
  storage: memoryStorage(),
  projections: [board],
  now: () => (clock += 60_000),
});

await store.append('card-1', {
  type: 'CardAdded',
  data: { type: 'CardAdded', title: 'Write the README', column: 'todo' },
});
await store.append('card-2', {
  type: 'CardAdded',
  data: { type: 'CardAdded', title: 'Ship it', column: 'todo' },
});
const beforeMove = clock;
await store.append(
  'card-1',
  { id: 'move-1', type: 'CardMoved', data: { type: 'CardMoved', column: 'done' } },
  { expectedVersion: 1 },
);
// A retry with the same id is a no-op: the stored event comes back, nothing is written twice.
await store.append('card-1', {
  id: 'move-1',
  type: 'CardMoved',
  data: { type: 'CardMoved', column: 'done' },
});

try {
  await store.append(
    'card-1',
    { type: 'CardMoved', data: { type: 'CardMoved', column: 'todo' } },
    { expectedVersion: 1 },
  );
} catch (error) {
  if (error instanceof ConcurrencyError) {
    console.log(
      `stale write refused: ${error.code}, expected ${error.expectedVersion}, actual ${error.actualVersion}`,
    );
  }
}

console.log(
  'log:',
  (await store.read()).map((e) => `${e.stream}@${e.version} ${e.type}`),
);
console.log('board now:', await store.state('board'));
console.log('board before the move:', await store.state('board', { at: beforeMove }));
console.log('done column:', await store.query('board', 'inColumn', 'done'));
await store.close();
