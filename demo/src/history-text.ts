/**
 * The audit trail in words (issue 15): each event of the log described as it was when it
 * happened — its own payload against the board just before it ("renamed "Plan" → "Plan the
 * sprint"", "moved To do → Doing"), the card's title and the device's name at that moment — and
 * a burst of Yjs note edits as one entry.
 *
 * Invariants:
 * 1. An entry's words come from the board folded up to the event (board.ts applyEvent, the
 *    projection's own fold), never from the present: a later rename does not rewrite the past.
 * 2. Yjs updates of one notes stream by one device, each within BURST_MS of the previous one and
 *    with no other event of that stream between, are one entry listing every event it stands
 *    for; every event of the log is in exactly one entry, in the total order.
 * 3. Pure: the same log gives the same entries.
 */
import type { StoredEvent } from '../../src/index.ts';
import {
  applyEvent,
  type BoardState,
  type Card,
  cardOfStream,
  initialBoard,
  textOf,
} from './board.ts';

/** Edits of one note closer than this are one burst. */
export const BURST_MS = 60_000;

export interface HistoryEntry {
  /** The events it stands for, oldest first (one, or a burst of note edits). */
  events: StoredEvent<unknown>[];
  /** What happened, in words ("renamed "Plan" → "Plan the sprint""). */
  summary: string;
  /** The card or column it concerns, as it was named then; the stream otherwise. */
  subject: string;
  /** The device's name then (its latest DeviceNamed before the event), if it had one. */
  device: string | undefined;
  /** The card as the entry left it (its id, and its fields; undefined: no card then). */
  card?: { id: string; state: Card | undefined };
}

const quoted = (text: string) => `“${text}”`;

function columnTitle(state: BoardState, column: unknown): string {
  return typeof column === 'string' ? (state.columns[column]?.title ?? column) : '?';
}

/**
 * The words a change adds when it keeps one side of a conflict (`resolves`: conflicts.ts), takes
 * back an earlier change (`undoes`: undo.ts) or puts a card back (`restoredFrom`); empty for a
 * plain change.
 */
function resolving(data: unknown): string {
  const fields = (data ?? {}) as Record<string, unknown>;
  return (
    (Array.isArray(fields.resolves) ? ', keeping it over the conflict' : '') +
    (typeof fields.undoes === 'string' ? ' (undo)' : '') +
    (typeof fields.restoredFrom === 'string' ? ' (back to an earlier point)' : '')
  );
}

/** One event in words, against the board just before it (invariant 1). */
function describe(
  before: BoardState,
  event: StoredEvent<unknown>,
  titles: ReadonlyMap<string, string>,
): string {
  const card = cardOfStream(event.stream);
  const held = card === undefined ? undefined : before.cards[card];
  const data = event.data;
  switch (event.type) {
    case 'CardAdded':
      return (
        `${held === undefined && resolving(data) !== '' ? 'restored' : 'added'} ${quoted(textOf(data, 'title') ?? '?')} to ${columnTitle(before, textOf(data, 'column'))}` +
        resolving(data)
      );
    case 'CardRenamed':
      return (
        (held === undefined
          ? `renamed to ${quoted(textOf(data, 'title') ?? '?')}`
          : `renamed ${quoted(held.title)} → ${quoted(textOf(data, 'title') ?? '?')}`) +
        resolving(data)
      );
    case 'CardMoved': {
      const to = columnTitle(before, textOf(data, 'column'));
      if (held === undefined) return `moved to ${to} (the card was gone)`;
      const from = columnTitle(before, held.column);
      const refused = (data as { refused?: { message?: unknown } } | null)?.refused;
      if (typeof refused?.message === 'string') {
        return `moved back ${from} → ${to}: ${refused.message}`;
      }
      return (from === to ? `moved within ${to}` : `moved ${from} → ${to}`) + resolving(data);
    }
    case 'ConflictResolved':
      return `kept ${textOf(data, 'kept') ?? 'one side'}, ending the conflict`;
    case 'CardDeleted':
      return (
        (held === undefined ? 'deleted (already gone)' : `deleted ${quoted(held.title)}`) +
        resolving(data)
      );
    case 'ColumnAdded':
      return `added the column ${quoted(textOf(data, 'title') ?? '?')}`;
    case 'ColumnRenamed':
      return `renamed the column ${quoted(columnTitle(before, textOf(data, 'column')))} → ${quoted(textOf(data, 'title') ?? '?')}`;
    case 'ColumnDeleted':
      return `deleted the column ${quoted(columnTitle(before, textOf(data, 'column')))}`;
    case 'DeviceNamed': {
      const replica = event.stream.startsWith('device:') ? event.stream.slice(7) : '';
      const was = before.devices[replica];
      const name = quoted(textOf(data, 'name') ?? '?');
      return was === undefined
        ? `named a device ${name}`
        : `renamed a device ${quoted(was)} → ${name}`;
    }
    case 'yjs.update':
      return 'edited the notes';
    case 'yjs.snapshot':
      return 'compacted the notes';
    case 'CardEnteredLane':
      return `took a place in Doing for ${quoted(laneCardTitle(before, data, titles))}`;
    case 'CardLeftLane':
      return `freed the place in Doing of ${quoted(laneCardTitle(before, data, titles))}`;
    default:
      return event.type;
  }
}

/** The title of the card a lane event (lane.ts) names. */
function laneCardTitle(
  state: BoardState,
  data: unknown,
  titles: ReadonlyMap<string, string>,
): string {
  const card = textOf(data, 'card');
  return card === undefined ? '?' : (state.cards[card]?.title ?? titles.get(card) ?? 'a card');
}

/**
 * What an event concerns, named as it was just before it (`before`: its card's title then) or
 * just after (for a creation); a card already deleted keeps the last title it had (`titles`).
 */
function subjectOf(
  before: string | undefined,
  after: BoardState,
  event: StoredEvent<unknown>,
  titles: ReadonlyMap<string, string>,
): string {
  const card = cardOfStream(event.stream);
  if (card !== undefined) {
    return (
      before ?? after.cards[card]?.title ?? textOf(event.data, 'title') ?? titles.get(card) ?? card
    );
  }
  if (event.stream.startsWith('device:')) {
    const replica = event.stream.slice(7);
    return after.devices[replica] ?? replica;
  }
  if (event.stream.startsWith('lane:')) return 'WIP limit of Doing';
  return event.stream;
}

/** What a StreamShredded event erased, in words: a card, its notes, or a stream. */
function erasedWhat(event: StoredEvent<unknown>): string {
  const stream = (event.data as { stream?: unknown } | null)?.stream;
  if (typeof stream !== 'string') return 'erased a stream';
  // Hidden names (an encrypted board): the event names the stream by its pseudonym only.
  if (stream.startsWith('~')) return 'erased a card’s data for good';
  if (stream.endsWith('/notes')) return 'erased a card’s notes for good';
  return cardOfStream(stream) === undefined ? `erased ${stream}` : 'erased a card for good';
}

const isNoteEdit = (event: StoredEvent<unknown>) =>
  event.type === 'yjs.update' && event.stream.endsWith('/notes');

/**
 * The log as entries, oldest first (invariants 1–3). `start`: the board just before `events[0]`
 * when they are not the whole log (a bounded device's loaded part, loaded-log.ts).
 */
export function describeHistory(
  events: readonly StoredEvent<unknown>[],
  start: BoardState = initialBoard(),
): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  /** The open burst of each notes stream (invariant 2). */
  const bursts = new Map<string, HistoryEntry>();
  // The fold is in place (board.ts invariant 4): the caller's board stays as it was given.
  let state: BoardState = {
    columns: { ...start.columns },
    cards: { ...start.cards },
    devices: { ...start.devices },
  };
  /** Every card's last title, kept after it is deleted. */
  const titles = new Map<string, string>();
  for (const event of events) {
    // An erased card's events (store.shred): they say that something was, not what.
    if (event.meta?.$shredded === true || event.type === 'StreamShredded') {
      entries.push({
        events: [event],
        summary: event.type === 'StreamShredded' ? erasedWhat(event) : 'erased',
        subject: 'Erased card',
        device: state.devices[event.replica],
      });
      continue;
    }
    // The fold is in place (board.ts invariant 4): what the entry says of the board before the
    // event is read before folding it.
    const card = cardOfStream(event.stream);
    const title = card === undefined ? undefined : state.cards[card]?.title;
    if (card !== undefined && title !== undefined) titles.set(card, title);
    const device = state.devices[event.replica];
    const open = bursts.get(event.stream);
    if (isNoteEdit(event)) {
      const last = open?.events.at(-1);
      if (
        open !== undefined &&
        last !== undefined &&
        last.replica === event.replica &&
        event.time - last.time <= BURST_MS
      ) {
        state = applyEvent(state, event);
        open.events.push(event);
        open.summary = `edited the notes (${open.events.length} edits)`;
        continue;
      }
    }
    const summary = describe(state, event, titles);
    state = applyEvent(state, event);
    const entry: HistoryEntry = {
      events: [event],
      summary,
      subject: subjectOf(title, state, event, titles),
      device,
    };
    if (card !== undefined && !isNoteEdit(event))
      entry.card = { id: card, state: state.cards[card] };
    entries.push(entry);
    if (isNoteEdit(event)) bursts.set(event.stream, entry);
    else bursts.delete(event.stream);
  }
  return entries;
}
