/**
 * Undo for this device's own recent changes (issue 15). In an event log undo is a new event, not
 * a deletion: each change remembers the event that puts the board back as it was (its inverse),
 * and Undo appends that event, so the undo syncs and is in the audit trail like any change.
 *
 * Invariants:
 * 1. Undo appends the inverse of the newest change not undone yet, and forgets it: undoing again
 *    reaches the change before. At most MAX_UNDO changes are remembered, for this page only.
 * 2. An inverse records the change it undoes (`undoes`: that event's id) in its data.
 */
import type { EventMap, EventType } from './board.ts';

export const MAX_UNDO = 20;

/** An event to append, as main.ts appends them. */
export interface PlannedEvent<T extends EventType = EventType> {
  stream: string;
  type: T;
  data: EventMap[T];
}

export interface UndoEntry {
  /** What the change did, for the Undo button ("Deleted “Plan”"). */
  label: string;
  inverse: PlannedEvent;
  /** The id of the change's event, once stored (invariant 2). */
  eventId?: string;
}

export class UndoStack {
  private readonly entries: UndoEntry[] = [];

  push(entry: UndoEntry): void {
    this.entries.push(entry);
    if (this.entries.length > MAX_UNDO) this.entries.shift();
  }

  /** The change Undo would take back, if any. */
  peek(): UndoEntry | undefined {
    return this.entries.at(-1);
  }

  /** Takes the newest change off the stack (invariant 1). */
  pop(): UndoEntry | undefined {
    return this.entries.pop();
  }
}
