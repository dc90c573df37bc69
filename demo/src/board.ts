/**
 * The kanban board's events and its projection. Shared by the worker (which folds the log) and
 * the page (which appends events and renders the state).
 *
 * Streams: `board:<id>` holds column events, `card:<id>` one card's life, `card:<id>/notes` its
 * Yjs notes (bindYDoc), `device:<replica>` the name a replica gave itself.
 *
 * Invariants:
 * 1. `apply` is total: an event it does not know, or a malformed one (any replica can send
 *    anything), leaves the state unchanged rather than failing the projection.
 * 2. Every board starts with three default columns, so that two devices opening an empty board
 *    never race to create them (no seed events, nothing to conflict on).
 * 3. Cards are ordered in a column by a fractional `position`; a move writes a new position,
 *    never renumbers others, so a move is one event on one stream.
 * 4. `apply` folds in place (the store allows it: a snapshot is a copy, and the page gets a copy
 *    of the worker's state), because copying the cards record per event made a fold of n events
 *    O(n × cards): minutes for a new device catching up with 100,000 events. Only the records
 *    (cards, columns, devices) change; a Card or Column is replaced, never changed, so a card
 *    taken from a state keeps its value (history-text.ts keeps them per entry).
 */
import { defineProjection, type JsonObject, type StoredEvent } from '../../src/index.ts';

export const BOARD_ID = 'main';
export const PROJECTION = 'board';

export interface Column {
  id: string;
  title: string;
  position: number;
}

export interface Card {
  id: string;
  title: string;
  column: string;
  position: number;
  /** The replica whose event last changed the card. */
  changedBy: string;
}

export interface BoardState {
  columns: Record<string, Column>;
  cards: Record<string, Card>;
  /** Replica id → device name (DeviceNamed events). */
  devices: Record<string, string>;
}

/** Every event's data, by type. */
export interface EventMap {
  ColumnAdded: { column: string; title: string; position: number };
  ColumnRenamed: { column: string; title: string };
  ColumnDeleted: { column: string };
  /**
   * `resolves`: the conflict's events, when this change keeps one side of it (conflicts.ts);
   * `undoes`: the event this change takes back (undo.ts); `restoredFrom`: the event whose point
   * in time the card is put back to (Activity's "Back to here").
   */
  CardRenamed: { title: string; resolves?: string[]; undoes?: string; restoredFrom?: string };
  CardMoved: {
    column: string;
    position: number;
    resolves?: string[];
    undoes?: string;
    restoredFrom?: string;
    /**
     * Set on the move back of a card whose entry into a limited column the server refused
     * (lane.ts): which column, and why in words.
     */
    refused?: { column: string; reason: string; message: string };
  };
  CardAdded: {
    title: string;
    column: string;
    position: number;
    resolves?: string[];
    undoes?: string;
    restoredFrom?: string;
  };
  CardDeleted: { undoes?: string };
  DeviceNamed: { name: string };
  /** The value a card shows is kept; ends the conflict on every device (the fold ignores it). */
  ConflictResolved: { events: string[]; kept: string };
}
export type EventType = keyof EventMap;

export const boardStream = (board: string): string => `board:${board}`;
export const cardStream = (card: string): string => `card:${card}`;
export const notesStream = (card: string): string => `card:${card}/notes`;
export const deviceStream = (replica: string): string => `device:${replica}`;

/** The card a stream belongs to (its own stream or its notes), if any. */
export function cardOfStream(stream: string): string | undefined {
  const match = /^card:([^/]+)/.exec(stream);
  return match?.[1];
}

export function newEvent<T extends EventType>(
  type: T,
  data: EventMap[T],
): { type: T; data: JsonObject } {
  return { type, data: data as JsonObject };
}

export function initialBoard(): BoardState {
  return {
    columns: {
      todo: { id: 'todo', title: 'To do', position: 1 },
      doing: { id: 'doing', title: 'Doing', position: 2 },
      done: { id: 'done', title: 'Done', position: 3 },
    },
    cards: {},
    devices: {},
  };
}

/** `data[key]` when it is a string (any replica can send anything: board.ts invariant 1). */
export function textOf(data: unknown, key: string): string | undefined {
  const value = (data as Record<string, unknown> | null)?.[key];
  return typeof value === 'string' ? value : undefined;
}

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

/**
 * Folds one event into `state` in place and returns it (invariant 1: unknown or malformed events
 * change nothing; invariant 4: Card and Column values are replaced, never changed).
 */
export function applyEvent(state: BoardState, event: StoredEvent<unknown>): BoardState {
  const data = (event.data ?? {}) as Record<string, unknown>;
  const cardId = event.stream.startsWith('card:') ? event.stream.slice(5) : '';
  const card = state.cards[cardId];
  switch (event.type) {
    case 'ColumnAdded': {
      if (!isText(data.column) || !isText(data.title) || !isNumber(data.position)) return state;
      state.columns[data.column] = { id: data.column, title: data.title, position: data.position };
      return state;
    }
    case 'ColumnRenamed': {
      const column = isText(data.column) ? state.columns[data.column] : undefined;
      if (column === undefined || !isText(data.title)) return state;
      state.columns[column.id] = { ...column, title: data.title };
      return state;
    }
    case 'ColumnDeleted':
      if (isText(data.column)) delete state.columns[data.column];
      return state;
    case 'CardAdded': {
      if (!isText(data.title) || !isText(data.column) || !isNumber(data.position)) return state;
      if (cardId === '' || cardId.includes('/')) return state;
      state.cards[cardId] = {
        id: cardId,
        title: data.title,
        column: data.column,
        position: data.position,
        changedBy: event.replica,
      };
      return state;
    }
    case 'CardRenamed':
      if (card === undefined || !isText(data.title)) return state;
      state.cards[cardId] = { ...card, title: data.title, changedBy: event.replica };
      return state;
    case 'CardMoved':
      if (card === undefined || !isText(data.column) || !isNumber(data.position)) return state;
      state.cards[cardId] = {
        ...card,
        column: data.column,
        position: data.position,
        changedBy: event.replica,
      };
      return state;
    case 'CardDeleted':
      if (card !== undefined) delete state.cards[cardId];
      return state;
    case 'DeviceNamed': {
      const replica = event.stream.startsWith('device:') ? event.stream.slice(7) : '';
      if (replica === '' || !isText(data.name)) return state;
      state.devices[replica] = data.name;
      return state;
    }
    default:
      return state;
  }
}

export const boardProjection = defineProjection<BoardState, unknown>({
  name: PROJECTION,
  version: 1,
  initial: initialBoard,
  apply: applyEvent,
  // A snapshot copies and writes the whole board (7,000 cards after 100,000 events of the
  // demo's mix): every 1,000 events, as the store's default, rather than every 200, which made
  // snapshots most of a catch-up's fold. A late event refolds at most 1,000 events (milliseconds).
  snapshotEvery: 1000,
});

/** Columns in display order. */
export function sortedColumns(state: BoardState): Column[] {
  return Object.values(state.columns).sort(
    (a, b) => a.position - b.position || a.id.localeCompare(b.id),
  );
}

/** Display order in a column (ties, from concurrent moves, broken by id). */
const byPosition = (a: Card, b: Card): number =>
  a.position - b.position || a.id.localeCompare(b.id);

/** A column's cards in display order. */
export function cardsIn(state: BoardState, column: string): Card[] {
  return Object.values(state.cards)
    .filter((card) => card.column === column)
    .sort(byPosition);
}

/**
 * Every column's cards in display order, in one pass over the cards: a board drawn with
 * cardsIn per column cost columns × cards (the demo's mix adds a column per 100 events: 1,000
 * columns and 7,000 cards after 100,000 events, seconds per render).
 */
export function cardsByColumn(state: BoardState): Map<string, Card[]> {
  const out = new Map<string, Card[]>();
  for (const card of Object.values(state.cards)) {
    const list = out.get(card.column);
    if (list === undefined) out.set(card.column, [card]);
    else list.push(card);
  }
  for (const list of out.values()) list.sort(byPosition);
  return out;
}

/** A position after every card of the column. */
export function endOf(state: BoardState, column: string): number {
  const cards = cardsIn(state, column);
  return (cards.at(-1)?.position ?? 0) + 1;
}

/**
 * The position that puts `card` one step up (-1) or down (+1) in its column: between the
 * neighbour it passes and the one after that; undefined at either end.
 */
export function stepPosition(state: BoardState, card: Card, step: -1 | 1): number | undefined {
  const cards = cardsIn(state, card.column).filter((c) => c.id !== card.id);
  const index = cardsIn(state, card.column).findIndex((c) => c.id === card.id);
  const target = index + step;
  if (target < 0 || target > cards.length) return undefined;
  const before = cards[target - 1]?.position;
  const after = cards[target]?.position;
  if (before === undefined && after === undefined) return undefined;
  if (before === undefined) return (after as number) - 1;
  if (after === undefined) return before + 1;
  return (before + after) / 2;
}

/**
 * Where a card dropped into `column` goes: before `before` (between it and the card above it),
 * or after every card; undefined when it would not move.
 */
export function dropPosition(
  state: BoardState,
  card: string,
  column: string,
  before: string | undefined,
): number | undefined {
  const others = cardsIn(state, column).filter((c) => c.id !== card);
  const at = before === undefined ? -1 : others.findIndex((c) => c.id === before);
  if (at < 0) {
    const current = state.cards[card];
    const last = others.at(-1);
    if (current?.column === column && (last === undefined || current.position > last.position)) {
      return undefined;
    }
    return (last?.position ?? 0) + 1;
  }
  const next = others[at] as Card;
  const previous = others[at - 1];
  return previous === undefined ? next.position - 1 : (previous.position + next.position) / 2;
}
