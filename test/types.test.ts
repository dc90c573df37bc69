/** Type-level tests for the public generics (CONVENTIONS: tests). */
import { describe, expectTypeOf, it } from 'vitest';
import {
  ConcurrencyError,
  defineProjection,
  type EventStore,
  memoryStorage,
  openStore,
  type Projection,
  type StoredEvent,
} from '../src/index.ts';

type TodoEvent = { added: { title: string }; removed: null };

describe('public types', () => {
  it('carries the event type through append, read and subscribe', async () => {
    const store = await openStore<TodoEvent>({ name: 't', storage: memoryStorage() });
    expectTypeOf(store).toEqualTypeOf<EventStore<TodoEvent>>();
    const stored = await store.append('s', { type: 'added', data: { title: 'x' } });
    expectTypeOf(stored).toEqualTypeOf<StoredEvent<TodoEvent>[]>();
    expectTypeOf(stored[0]!.data).toEqualTypeOf<{ title: string } | null>();
    // @ts-expect-error data must be the data of an `added` event
    void store.append('s', { type: 'added', data: { nope: 1 } }).catch(() => {});
    expectTypeOf(store.read()).resolves.toEqualTypeOf<StoredEvent<TodoEvent>[]>();
    expectTypeOf(store.state<number>('count')).resolves.toEqualTypeOf<number>();
    await store.close();
  });

  it('infers a projection from its definition and fits it in the store options', () => {
    const titles = defineProjection({
      name: 'titles',
      version: 1,
      initial: (): string[] => [],
      apply: (list, event: StoredEvent<TodoEvent>) =>
        event.type === 'added' ? [...list, event.data.title] : list,
      queries: {
        count: (list: string[]) => list.length,
        at: (list: string[], i: number) => list[i],
      },
    });
    expectTypeOf(titles).toExtend<Projection<string[], TodoEvent>>();
    expectTypeOf(titles.queries.at).toEqualTypeOf<
      (list: string[], i: number) => string | undefined
    >();
    const count = defineProjection({
      name: 'count',
      version: 1,
      initial: () => 0,
      apply: (n: number) => n + 1,
    });
    expectTypeOf(openStore<TodoEvent>)
      .parameter(0)
      .toHaveProperty('projections')
      .toEqualTypeOf<readonly Projection<unknown, TodoEvent>[] | undefined>();
    void openStore<TodoEvent>({
      name: 'x',
      storage: memoryStorage(),
      projections: [titles, count],
    }).then((s) => s.close());
  });

  it('gives errors their structured fields', () => {
    const error = new ConcurrencyError('s', 1, 2);
    expectTypeOf(error.code).toEqualTypeOf<import('../src/index.ts').ErrorCode>();
    expectTypeOf(error.actualVersion).toEqualTypeOf<number>();
  });
});
