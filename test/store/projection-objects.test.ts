/**
 * Projection objects as handles at runtime (store/typed.ts invariant 1): state, watch, query and
 * rebuild look an object up by its name among the projections the store was opened with.
 */
import { describe, expect, it } from 'vitest';
import {
  defineProjection,
  memoryStorage,
  NotFoundError,
  openStore,
  type Projection,
  type StoredEvent,
} from '../../src/index.ts';

type TodoEvents = { TodoAdded: { title: string }; TodoDone: { done: boolean } };

const titles = defineProjection({
  name: 'titles',
  version: 1,
  initial: (): string[] => [],
  apply: (list, e: StoredEvent<TodoEvents>) =>
    e.type === 'TodoAdded' ? [...list, e.data.title] : list,
  queries: { at: (list: string[], i: number) => list[i] },
});

const stranger = defineProjection<number, TodoEvents>({
  name: 'stranger',
  version: 1,
  initial: () => 0,
  apply: (n) => n + 1,
});

async function seeded() {
  const store = await openStore<TodoEvents>({
    name: 'objects',
    storage: memoryStorage(),
    projections: [titles],
  });
  await store.append('t', [
    { type: 'TodoAdded', data: { title: 'Milk' } },
    { type: 'TodoAdded', data: { title: 'Eggs' } },
    { type: 'TodoDone', data: { done: true } },
  ]);
  return store;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('projection objects', () => {
  it('answer state, query, watch and rebuild as their name does', async () => {
    const store = await seeded();
    expect(await store.state(titles)).toEqual(['Milk', 'Eggs']);
    expect(await store.state(titles)).toEqual(await store.state('titles'));
    const [first] = await store.read({ limit: 1 });
    expect(await store.state(titles, { at: { eventId: first!.id } })).toEqual(['Milk']);
    expect(await store.query(titles, 'at', 1)).toBe('Eggs');
    const seen: string[][] = [];
    const off = store.watch(titles, (list) => seen.push([...list]));
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]).toEqual(['Milk', 'Eggs']);
    off();
    await store.rebuild(titles);
    expect(await store.state(titles)).toEqual(['Milk', 'Eggs']);
    await store.close();
  });

  it('refuses a projection the store was not opened with, like an unknown name', async () => {
    const store = await seeded();
    const byName = await rejection(store.state('stranger'));
    const byObject = await rejection(store.state(stranger));
    expect(byName).toBeInstanceOf(NotFoundError);
    expect(byObject).toBeInstanceOf(NotFoundError);
    expect(byObject).toMatchObject({
      code: 'NOT_FOUND',
      message: (byName as Error).message,
      details: (byName as NotFoundError).details,
    });
    expect(await rejection(store.query(stranger, 'anything'))).toBeInstanceOf(NotFoundError);
    expect(thrown(() => store.watch(stranger, () => {}))).toBeInstanceOf(NotFoundError);
    await store.close();
  });

  it('rejects a rebuild of an unknown projection rather than throwing, by name or object', async () => {
    const store = await seeded();
    let byName: Promise<void> | undefined;
    let byObject: Promise<void> | undefined;
    expect(() => {
      byName = store.rebuild('stranger');
      byObject = store.rebuild(stranger);
    }).not.toThrow();
    expect(await rejection(byName!)).toBeInstanceOf(NotFoundError);
    expect(await rejection(byObject!)).toBeInstanceOf(NotFoundError);
    await store.close();
  });

  it('names the projection, not the object, when its query is missing', async () => {
    const store = await seeded();
    // Loose queries: the names are not checked, so a missing one reaches the store.
    const loose: Projection<string[], TodoEvents> = titles;
    const error = await rejection(store.query(loose, 'count'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({
      message: 'projection "titles" has no query "count"',
      details: { projection: 'titles', query: 'count' },
    });
    await store.close();
  });
});
