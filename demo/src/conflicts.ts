/**
 * What the board says about concurrent changes to a card (issue 15): each side's own value, and
 * what keeping one of them appends. Pure: main.ts feeds it the log, the store's conflicts() and
 * the present board.
 *
 * Invariants:
 * 1. A conflict is shown while the last event of its card's stream is one of its events: any
 *    later event of that card (another change, a kept value, a dismissal) ends it, on every
 *    device, because that event syncs like any other. Nothing is hidden locally.
 * 2. Keeping the value the card shows appends ConflictResolved (the projection ignores it: the
 *    card already shows it); keeping another appends the change that value stands for (a rename
 *    or a move) with `resolves` naming the conflict's events. Either is in the audit trail.
 * 3. A conflict whose card is gone (a delete met a concurrent change) is a notice on the board,
 *    saying who deleted it and who changed it meanwhile, with "Restore" (the card added again
 *    where it was) and "Dismiss".
 */
import type { Conflict, StoredEvent } from '../../src/index.ts';
import type { ConflictRole } from './activity-view.ts';
import { type BoardState, textOf } from './board.ts';

/** One side of a conflict: the value one device wrote. */
export interface ConflictOption {
  eventId: string;
  device: string;
  /** The value in words: “title” for a rename, the column for a move. */
  label: string;
  /** The value the card shows (the change the order applied last). */
  shown: boolean;
  /** What keeping it appends when it is not shown (invariant 2); undefined: nothing to redo. */
  redo: { type: 'CardRenamed'; title: string } | { type: 'CardMoved'; column: string } | undefined;
}

export interface ConflictNote {
  /** Who made the change the order applied last (the one the card shows). */
  winner: string;
  devices: string[];
  options: ConflictOption[];
  /** The conflict's event ids, for `resolves` and ConflictResolved. */
  events: string[];
}

/** A card deleted while another device changed it (invariant 3). */
export interface DeletedNotice {
  card: string;
  /** Its title and column as last known before the delete. */
  title: string;
  column: string;
  deletedBy: string;
  changedBy: string[];
  events: string[];
}

export interface ConflictView {
  cards: Map<string, ConflictNote>;
  deleted: DeletedNotice[];
  roles: Map<string, ConflictRole>;
}

function option(
  event: StoredEvent<unknown>,
  shown: boolean,
  present: BoardState,
  deviceName: (replica: string) => string,
): ConflictOption {
  const device = deviceName(event.replica);
  const title = textOf(event.data, 'title');
  const column = textOf(event.data, 'column');
  if (event.type === 'CardRenamed' && title !== undefined) {
    return {
      eventId: event.id,
      device,
      label: `“${title}”`,
      shown,
      redo: { type: 'CardRenamed', title },
    };
  }
  if (event.type === 'CardMoved' && column !== undefined) {
    const label = `in ${present.columns[column]?.title ?? column}`;
    return { eventId: event.id, device, label, shown, redo: { type: 'CardMoved', column } };
  }
  return { eventId: event.id, device, label: event.type, shown, redo: undefined };
}

/** The conflicts of card streams, as the board and the activity show them (invariants 1–3). */
export function conflictView(
  log: readonly StoredEvent<unknown>[],
  conflicts: readonly Conflict<unknown>[],
  present: BoardState,
  deviceName: (replica: string) => string,
): ConflictView {
  const view: ConflictView = { cards: new Map(), deleted: [], roles: new Map() };
  const lastOfStream = new Map<string, StoredEvent<unknown>>();
  /** The card's last title and column before each event, for a deleted card's notice. */
  const known = new Map<string, { title: string; column: string }>();
  for (const event of log) {
    lastOfStream.set(event.stream, event);
    const card = /^card:([^/]+)$/.exec(event.stream)?.[1];
    if (card === undefined) continue;
    const before = known.get(card);
    known.set(card, {
      title: textOf(event.data, 'title') ?? before?.title ?? card,
      column: textOf(event.data, 'column') ?? before?.column ?? 'todo',
    });
  }
  for (const conflict of conflicts) {
    const card = /^card:([^/]+)$/.exec(conflict.stream)?.[1];
    if (card === undefined) continue;
    const ordered = [...conflict.events].sort((a, b) => (a.cursor < b.cursor ? -1 : 1));
    const winner = ordered.at(-1);
    if (winner === undefined) continue;
    for (const event of ordered) {
      view.roles.set(event.id, event === winner ? 'applied-last' : 'overridden');
    }
    // Invariant 1.
    if (!ordered.some((e) => e.id === lastOfStream.get(conflict.stream)?.id)) continue;
    const events = ordered.map((e) => e.id);
    const deletes = ordered.filter((e) => e.type === 'CardDeleted');
    if (present.cards[card] === undefined && deletes.length > 0) {
      const last = known.get(card);
      view.deleted.push({
        card,
        title: last?.title ?? card,
        column: last?.column ?? 'todo',
        deletedBy: deviceName((deletes.at(-1) as StoredEvent<unknown>).replica),
        changedBy: [
          ...new Set(
            ordered.filter((e) => e.type !== 'CardDeleted').map((e) => deviceName(e.replica)),
          ),
        ],
        events,
      });
      continue;
    }
    view.cards.set(card, {
      winner: deviceName(winner.replica),
      devices: [...new Set(ordered.map((e) => deviceName(e.replica)))],
      options: ordered.map((e) => option(e, e === winner, present, deviceName)),
      events,
    });
  }
  return view;
}
