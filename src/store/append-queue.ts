/**
 * Group commit: local appends that arrive while a write transaction is running join the next
 * one, so that many concurrent appends (a hundred cards moved at once, a burst of edits to
 * several documents) cost a few transactions instead of one each. IndexedDB runs write
 * transactions over the same stores one after another anyway; each costs a commit (a flush to
 * disk when strict), which is most of a small append's price.
 *
 * Invariants:
 * 1. An append that finds no write running starts one at once: none waits for a timer, so a
 *    lone awaited append costs what it cost before.
 * 2. Appends that arrive during a write are queued in call order and written together when it
 *    ends (core/append-group.ts): positions and seqs follow the order of the calls.
 * 3. Each unit settles with its own outcome (core/append-group.ts invariants 1, 2). When a
 *    group's transaction fails as a whole (a quota, a failing disk), its units are written again
 *    one by one, so that a unit fails only for a reason of its own.
 * 4. A group holds at most MAX_GROUP_EVENTS events; the rest wait for the next one.
 */
import type { AppendUnitOutcome, StreamAppendOutcome } from '../core/append-group.ts';
import type { StreamAppendRequest } from '../storage/adapter.ts';

/** Events in one group at most: a transaction stays a few MB, its commit a fraction of a second. */
export const MAX_GROUP_EVENTS = 5_000;

/** Writes the units in one transaction (EventLog.appendGroup), each with its outcome. */
export type WriteGroup = (
  units: readonly (readonly StreamAppendRequest[])[],
) => Promise<AppendUnitOutcome[]>;

interface Waiting {
  unit: readonly StreamAppendRequest[];
  events: number;
  resolve: (outcome: StreamAppendOutcome[]) => void;
  reject: (error: unknown) => void;
}

export class AppendQueue {
  private readonly waiting: Waiting[] = [];
  private writing = false;
  private readonly writeGroup: WriteGroup;

  constructor(writeGroup: WriteGroup) {
    this.writeGroup = writeGroup;
  }

  /** Writes `unit` (all or nothing); resolves with one outcome per stream part. */
  append(unit: readonly StreamAppendRequest[]): Promise<StreamAppendOutcome[]> {
    return new Promise((resolve, reject) => {
      let events = 0;
      for (const part of unit) events += part.events.length;
      this.waiting.push({ unit, events, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.waiting.length > 0) await this.writeNext(this.takeGroup());
    } finally {
      this.writing = false;
    }
  }

  /** The longest prefix of the queue within MAX_GROUP_EVENTS, and at least one unit. */
  private takeGroup(): Waiting[] {
    let events = this.waiting[0]!.events;
    let n = 1;
    while (n < this.waiting.length && events + this.waiting[n]!.events <= MAX_GROUP_EVENTS) {
      events += this.waiting[n]!.events;
      n++;
    }
    return this.waiting.splice(0, n);
  }

  private async writeNext(group: Waiting[]): Promise<void> {
    let outcomes: AppendUnitOutcome[];
    try {
      outcomes = await this.writeGroup(group.map((w) => w.unit));
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return;
      }
      // Invariant 3: nothing of the group was written; each unit is tried alone.
      for (const w of group) await this.writeNext([w]);
      return;
    }
    group.forEach((w, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) w.reject(new Error('the group write returned too few outcomes'));
      else if (outcome.kind === 'rejected') w.reject(outcome.error);
      else w.resolve(outcome.streams);
    });
  }
}
