import { describe, expect, it } from 'vitest';
import { applyEvent, cardsByColumn, cardsIn, initialBoard } from '../../demo/src/board.ts';
import type { StoredEvent } from '../../src/index.ts';

let seq = 0;
const event = (stream: string, type: string, data: unknown): StoredEvent<unknown> =>
  ({ id: `e${++seq}`, stream, type, data, replica: 'r1', seq, version: seq }) as never;

describe('the board projection (board.ts)', () => {
  it('folds in place, but replaces a card rather than changing it (invariant 4)', () => {
    const state = initialBoard();
    const added = applyEvent(
      state,
      event('card:a', 'CardAdded', { title: 'Plan', column: 'todo', position: 1 }),
    );
    expect(added).toBe(state);
    const before = state.cards.a;
    applyEvent(state, event('card:a', 'CardRenamed', { title: 'Plan the sprint' }));
    applyEvent(state, event('card:a', 'CardMoved', { column: 'doing', position: 2 }));
    expect(before).toMatchObject({ title: 'Plan', column: 'todo', position: 1 });
    expect(state.cards.a).toMatchObject({ title: 'Plan the sprint', column: 'doing' });
    applyEvent(state, event('card:a', 'CardDeleted', {}));
    expect(state.cards.a).toBeUndefined();
    expect(before?.title).toBe('Plan');
  });

  it('leaves the state as it was on a malformed event (invariant 1)', () => {
    const state = initialBoard();
    const copy = structuredClone(state);
    applyEvent(state, event('card:b', 'CardAdded', { title: 7, column: 'todo', position: 1 }));
    applyEvent(state, event('card:b', 'CardMoved', { column: 'done', position: 1 }));
    applyEvent(state, event('board:main', 'ColumnRenamed', { column: 'nope', title: 'x' }));
    expect(state).toEqual(copy);
  });

  it("groups every column's cards in one pass, in the order cardsIn gives each", () => {
    const state = initialBoard();
    const columns = ['todo', 'doing', 'done', 'gone'];
    for (let i = 0; i < 200; i++) {
      // Ties on position too: broken by id.
      const data = { title: `c${i}`, column: columns[i % 4], position: (i * 7) % 13 };
      applyEvent(state, event(`card:k${(i * 31) % 200}`, 'CardAdded', data));
    }
    const grouped = cardsByColumn(state);
    for (const column of columns) {
      expect(grouped.get(column) ?? []).toEqual(cardsIn(state, column));
    }
    expect([...grouped.values()].flat()).toHaveLength(Object.keys(state.cards).length);
  });
});
