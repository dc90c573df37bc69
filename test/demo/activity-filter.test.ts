/**
 * demo/src/activity-view.ts cardTitles: the Activity's card filter offers the cards of the loaded
 * events only. An option for every card of the board (70,000 after 1M events of the demo's mix)
 * cost a new device seconds per render.
 */
import { describe, expect, it } from 'vitest';
import { cardTitles } from '../../demo/src/activity-view.ts';
import { type BoardState, initialBoard } from '../../demo/src/board.ts';
import type { StoredEvent } from '../../src/index.ts';

function event(stream: string, type: string, data: unknown): StoredEvent<unknown> {
  return { stream, type, data } as StoredEvent<unknown>;
}

function boardWith(cards: Record<string, string>): BoardState {
  const board = initialBoard();
  let position = 0;
  for (const [id, title] of Object.entries(cards)) {
    board.cards[id] = { id, title, column: 'todo', position: position++, changedBy: 'r' };
  }
  return board;
}

describe('the Activity card filter', () => {
  it('offers the cards of the loaded events, by their titles now, not every card of the board', () => {
    const state = boardWith({ a: 'Renamed since', b: 'Not in the loaded events', c: 'Nor this' });
    const titles = cardTitles(
      [
        event('card:a', 'CardAdded', { title: 'First title', column: 'todo', position: 0 }),
        event('card:gone', 'CardRenamed', { title: 'Deleted since' }),
        event('board:main', 'ColumnAdded', { column: 'x', title: 'X', position: 4 }),
      ],
      state,
    );
    expect([...titles]).toEqual([
      ['a', 'Renamed since'],
      ['gone', 'Deleted since'],
    ]);
  });
});
