/**
 * Runs one projection against the log: catch-up, rebase on late events, snapshots, time travel.
 * The decisions are core/projection.ts's; this module only reads and writes storage.
 *
 * Invariants (see core/projection.ts for 1–4):
 * 5. Catch-ups of one projection never overlap (one queue per runtime).
 * 6. Time travel folds into a fresh state and never touches the present state or its progress.
 * 7. A throwing `apply` leaves the state and progress at the last event folded successfully.
 * 9. After a re-stamp moved events to cursors >= `from` (adapter.ts restamp), no state or
 *    snapshot that may hold a moved event, or fold around one, is used again: snapshots at or
 *    after `from` are deleted, and a present state whose cursor is >= `from` is rebased from a
 *    snapshot before it (or initial()). A state before `from` holds no moved event, old or new.
 * 8. The runtime starts loading as soon as it exists (the store opens): its newest valid snapshot,
 *    and the events after it. This is a head start, never a promise: every state() still catches
 *    up with what is stored when it is called, and a failure here is met again by the caller.
 * 10. current() returns the fold of one log the store held: a catch-up that one of the store's
 *    ingests or re-stamps overlapped (write-gate.ts) is caught up again, and after
 *    CONSISTENT_TRIES overlapping tries it runs with the store's writes held back. A re-stamp is
 *    noted (noteRestamp) before its write counts as finished, so the next try rebases first.
 * 11. On a partial replica (docs/storage-growth.md) folds read through `reader`, which fetches what
 *    lies at or below the log's horizon from the server (store/history-reads.ts). A rebase that
 *    needs history no server can give now (HISTORY_OFFLINE) leaves the projection stale: it keeps
 *    the state it had, folds what follows it, and notes `staleFrom`; every later catch-up (and
 *    the store when its server link says history may answer: retry()) rebases from before it
 *    again. The late event stays in the log meanwhile.
 * 13. A projection whose progress is below the largest trimmed position (it had not folded every
 *    event retention trimmed: in another tab, or a late one) starts again from its newest valid
 *    snapshot, which retention wrote at H with a position no smaller than any it trims (or folds
 *    what it lacks from history): it never takes a trimmed event as absent.
 * 12. Retention's snapshots (retainAt) are kept: pruning never deletes the newest
 *    RETAINED_SNAPSHOTS snapshots at or below the log's horizon, from which a late event below it
 *    is rebased.
 * 14. Folds read with `withoutSignatures` (projection-fold.ts UNSIGNED): the store hands every
 *    runtime an upcast that strips the integrity meta first (store.ts invariant 2), and the fold
 *    itself reads none, so a log need not write a `$sig` out only for it to be dropped.
 */
import { HistoryUnavailableError, ProjectionError } from '../core/errors.ts';
import type { LocalRecord } from '../core/events.ts';
import {
  decideCatchUp,
  type FoldProgress,
  NO_PROGRESS,
  type Projection,
  projectionVersionKey,
  snapshotCandidates,
  snapshotDue,
  snapshotIsValid,
} from '../core/projection.ts';
import { foldable } from '../core/sealing.ts';
import type { UpcastFn } from '../core/upcast.ts';
import type { EventLog, SnapshotMeta, SnapshotRecord } from '../storage/adapter.ts';
import type { CursorReader } from './history-reads.ts';
import { applyEvent, foldRange, PAGE, prunable, UNSIGNED } from './projection-fold.ts';
import type { WriteGate } from './write-gate.ts';

/** Snapshots kept per projection: enough to rebase from near a late event. */
const KEEP_SNAPSHOTS = 8;
/** Snapshots at or below the horizon that pruning keeps (invariant 12). */
export const RETAINED_SNAPSHOTS = 2;
/** Catch-ups tried while writes overlap before one holds them back (invariant 10). */
const CONSISTENT_TRIES = 3;

export class ProjectionRuntime {
  private state: unknown;
  private progress: FoldProgress = NO_PROGRESS;
  private foldedSinceSnapshot = 0;
  /** Snapshots written since the last pruning: pruning lists them all, so it is not done each time. */
  private snapshotsSincePrune = 0;
  private count = 0;
  private initialized = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Grows whenever the present state changes: watchers emit only when it moved. */
  private changes = 0;
  /** The smallest `from` of re-stamps not yet undone in the present state (invariant 9). */
  private restampFrom: string | undefined;
  /** The smallest cursor of late events not folded for want of history (invariant 11). */
  private staleFrom: string | undefined;

  get revision(): number {
    return this.changes;
  }

  readonly projection: Projection;
  private readonly log: EventLog;
  private readonly upcast: UpcastFn;
  private readonly gate: WriteGate;
  private readonly reader: CursorReader;

  /**
   * `openHead`: the head position the store reads once at open, for its change feed and every
   * runtime (invariant 8).
   */
  constructor(
    projection: Projection,
    log: EventLog,
    upcast: UpcastFn,
    openHead: Promise<number>,
    gate: WriteGate,
    reader: CursorReader = log,
  ) {
    this.projection = projection;
    this.log = log;
    this.reader = reader;
    this.upcast = upcast;
    this.gate = gate;
    // Invariant 8: the first state() of a freshly opened store (the page's first paint) finds
    // the snapshot loaded and its tail folded, instead of starting six reads in a row. Without
    // a snapshot, nothing is folded ahead: a full replay waits until someone asks for it.
    // The head is the store's, read beside the snapshot (any head read before the fold is a
    // valid bound), and used only by projections that take snapshots.
    void this.serial(async () => {
      const [head] = await Promise.all([
        projection.snapshotEvery > 0 ? openHead : undefined,
        this.init(),
      ]);
      if (this.progress.cursor !== '') await this.catchUp(head);
    }).catch(() => undefined);
  }

  /** Runs `task` after every task queued before it (invariant 5). */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The present state, caught up with everything stored now (invariant 10). */
  current(): Promise<unknown> {
    return this.serial(async () => {
      for (let attempt = 1; attempt < CONSISTENT_TRIES; attempt++) {
        const mark = this.gate.mark();
        await this.catchUp();
        if (this.gate.quietSince(mark)) return this.state;
      }
      await this.gate.exclusive(() => this.catchUp());
      return this.state;
    });
  }

  rebuild(onProgress?: (done: number, total: number) => void): Promise<void> {
    return this.serial(async () => {
      await this.log.deleteSnapshots(this.projection.name);
      await this.log.setMeta(projectionVersionKey(this.projection.name), this.projection.version);
      this.reset();
      this.initialized = true;
      const head = await this.log.headPos();
      await this.fold(head, onProgress);
    });
  }

  /**
   * Starts again from the newest valid snapshot: a base was laid under the log (store/join.ts),
   * whose snapshot at the horizon this runtime has not seen.
   */
  reload(): Promise<void> {
    return this.serial(async () => {
      if (!(await this.loadSnapshotBefore('\uffff'))) this.reset();
      this.initialized = true;
    });
  }

  /**
   * Events moved to cursors >= `from` (invariant 9), noted at once: a catch-up that the re-stamp
   * overlapped undoes it on its next try (invariant 10).
   */
  noteRestamp(from: string): void {
    if (this.restampFrom === undefined || from < this.restampFrom) this.restampFrom = from;
  }

  /** noteRestamp, then undoes the re-stamp's effect at once; the next state() folds again. */
  restamped(from: string): Promise<void> {
    this.noteRestamp(from);
    return this.serial(() => this.undoRestamp());
  }

  private async undoRestamp(): Promise<void> {
    const from = this.restampFrom;
    if (from === undefined) return;
    const { name, version } = this.projection;
    const stale = (await this.log.listSnapshots(name, version)).filter((s) => s.cursor >= from);
    if (stale.length > 0) {
      await this.log.deleteSnapshots(
        name,
        stale.map((s) => ({ version, cursor: s.cursor })),
      );
    }
    if (this.initialized && this.progress.cursor !== '' && this.progress.cursor >= from) {
      if (!(await this.loadSnapshotBefore(from))) this.reset();
    }
    // A re-stamp noted meanwhile with a smaller `from` is undone by the next catch-up.
    if (this.restampFrom === from) this.restampFrom = undefined;
  }

  private reset(): void {
    this.changes += 1;
    this.state = this.callInitial();
    this.progress = NO_PROGRESS;
    this.count = 0;
    this.foldedSinceSnapshot = 0;
  }

  private callInitial(): unknown {
    try {
      return this.projection.initial();
    } catch (cause) {
      throw new ProjectionError(
        `projection "${this.projection.name}" initial() threw: ${String(cause)}`,
        {
          projection: this.projection.name,
        },
      );
    }
  }

  private async init(): Promise<void> {
    const { name, version } = this.projection;
    // Both reads at once: on the cold start path every sequential transaction counts.
    const [known, listed] = await Promise.all([
      this.log.getMeta(projectionVersionKey(name)),
      this.log.listSnapshots(name, version),
    ]);
    let loaded = false;
    if (known !== version) {
      // Invariant 4: another version's snapshots describe another fold.
      await this.log.deleteSnapshots(name);
      await this.log.setMeta(projectionVersionKey(name), version);
    } else {
      loaded = await this.loadSnapshotBefore('\uffff', listed);
    }
    if (!loaded) this.reset();
    this.initialized = true;
  }

  /**
   * Loads the newest valid snapshot whose cursor is < bound into the present state. `listed`:
   * the projection's snapshots if the caller has just listed them.
   */
  private async loadSnapshotBefore(bound: string, listed?: SnapshotMeta[]): Promise<boolean> {
    const found = await this.findSnapshot(bound, listed);
    if (found === undefined) return false;
    this.changes += 1;
    this.state = found.state;
    // A snapshot taken mid-fold leaves events at positions <= pos after its cursor.
    this.progress = { cursor: found.cursor, pos: found.pos, complete: false };
    this.count = found.count;
    this.foldedSinceSnapshot = 0;
    return true;
  }

  private async findSnapshot(bound: string, listed?: SnapshotMeta[]) {
    const { name, version } = this.projection;
    const all = listed ?? (await this.log.listSnapshots(name, version));
    const invalid: { version: number; cursor: string }[] = [];
    let found: SnapshotRecord | undefined;
    for (const candidate of snapshotCandidates(all, bound)) {
      // Read the snapshot while checking it: almost always the newest one is valid, and one
      // round of reads is shorter than two in a row.
      const [minCursor, record] = await Promise.all([
        this.log.minCursorSince(candidate.pos),
        this.log.getSnapshot(name, version, candidate.cursor),
      ]);
      // Core invariant 3: valid while nothing received after it sorts before it.
      if (!snapshotIsValid(candidate, minCursor)) {
        invalid.push({ version, cursor: candidate.cursor });
        continue;
      }
      found = record;
      if (found !== undefined) break;
    }
    if (invalid.length > 0) await this.log.deleteSnapshots(name, invalid);
    return found;
  }

  /** `knownHead`: a head position read since this catch-up was asked for (else it is read). */
  private async catchUp(knownHead?: number): Promise<void> {
    if (!this.initialized) await this.init();
    await this.undoRestamp();
    const head = knownHead ?? (await this.log.headPos());
    if (this.staleFrom !== undefined) {
      await this.rebaseOrStale(this.staleFrom, head);
      return;
    }
    // Invariant 13: what is left to fold may be trimmed already.
    if (head > this.progress.pos && this.log.trimmedPos !== undefined) {
      if ((await this.log.trimmedPos()) > this.progress.pos) {
        await this.rebaseOrStale('\uffff', head);
        return;
      }
    }
    // Nothing folded yet (cursor ''): every event sorts after it, so the answer is 'advance'
    // without scanning the positions since 0, which is the whole log (a full pass of the pos
    // index before a replay from scratch).
    const nothingFolded = this.progress.cursor === '';
    const decision =
      nothingFolded && head > this.progress.pos
        ? ({ kind: 'advance', head } as const)
        : decideCatchUp(
            this.progress,
            head,
            head > this.progress.pos ? await this.log.minCursorSince(this.progress.pos) : undefined,
          );
    switch (decision.kind) {
      case 'up-to-date':
        return;
      case 'advance':
        await this.fold(decision.head);
        return;
      case 'rebase':
        await this.rebaseOrStale(decision.before, decision.head);
        return;
      default: {
        const never: never = decision;
        throw new Error(`unknown decision ${String(never)}`);
      }
    }
  }

  /** Whether the projection waits for history to fold a late event (invariant 11). */
  get stale(): boolean {
    return this.staleFrom !== undefined;
  }

  /**
   * Rebases from before `before` up to `head`; without the history that needs, keeps the state,
   * folds on past it and stays stale (invariant 11).
   */
  private async rebaseOrStale(before: string, head: number): Promise<void> {
    const kept = {
      state: this.state,
      progress: this.progress,
      count: this.count,
      folded: this.foldedSinceSnapshot,
    };
    try {
      if (!(await this.loadSnapshotBefore(before))) this.reset();
      await this.fold(head);
      if (this.staleFrom !== undefined && this.staleFrom >= before) this.staleFrom = undefined;
    } catch (error) {
      if (!(error instanceof HistoryUnavailableError)) throw error;
      this.changes += 1;
      this.state = kept.state;
      this.progress = kept.progress;
      this.count = kept.count;
      this.foldedSinceSnapshot = kept.folded;
      if (this.staleFrom === undefined || before < this.staleFrom) this.staleFrom = before;
      // What follows the kept progress folds from the log (above the horizon: no history).
      if (head > this.progress.pos || this.progress.complete === false) await this.fold(head);
    }
  }

  /** Catches up again: history may answer now (the store's server link said so). */
  retry(): Promise<unknown> {
    return this.current();
  }

  /**
   * Deletes the snapshots that an event received after them already makes invalid (core
   * invariant 3). Retention calls it before it trims (store/retention.ts 5): once an event is
   * trimmed, minCursorSince no longer sees it, so its effect on validity is settled now.
   */
  async dropInvalidSnapshots(): Promise<void> {
    const { name, version } = this.projection;
    const invalid: { version: number; cursor: string }[] = [];
    for (const s of await this.log.listSnapshots(name, version)) {
      if (!snapshotIsValid(s, await this.log.minCursorSince(s.pos))) {
        invalid.push({ version, cursor: s.cursor });
      }
    }
    if (invalid.length > 0) await this.log.deleteSnapshots(name, invalid);
  }

  /**
   * Writes a snapshot of the state at cursor `horizon` (inclusive), for retention before it
   * trims to there (core/retention.ts; invariant 12 keeps it). Its position is the head read
   * first: an event received later that sorts below `horizon` makes it invalid (core invariant 3).
   */
  async retainAt(horizon: string): Promise<void> {
    const head = await this.log.headPos();
    const { state, count } = await this.foldUntil(horizon, head);
    const { name, version } = this.projection;
    await this.log.putSnapshot({
      projection: name,
      version,
      cursor: horizon,
      pos: head,
      count,
      state: structuredClone(state),
    });
  }

  /**
   * Folds the events after progress.cursor received no later than `head`. Stops before the first
   * event received after `head` so that (cursor, pos) keeps its meaning (core invariant 1).
   */
  private async fold(
    head: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<void> {
    const read = (after: string) => {
      const reading = this.reader.readByCursor(
        after === '' ? { limit: PAGE, ...UNSIGNED } : { after, limit: PAGE, ...UNSIGNED },
      );
      // Read ahead and maybe never awaited (the fold stopped): its failure is not unhandled.
      reading.catch(() => {});
      return reading;
    };
    let reading = read(this.progress.cursor);
    for (;;) {
      const page = await reading;
      // The next page is read while this one is folded: the database and the fold work side
      // by side, and at most two pages are held.
      if (page.length === PAGE) reading = read(page[page.length - 1]!.event.cursor);
      let stopped = false;
      for (const record of page) {
        if (record.pos > head) {
          stopped = true;
          break;
        }
        this.applyOne(record);
        if (snapshotDue(this.projection, this.foldedSinceSnapshot)) await this.snapshot(head);
      }
      if (page.length > 0) onProgress?.(this.count, head);
      if (stopped || page.length < PAGE) {
        this.progress = { cursor: this.progress.cursor, pos: head, complete: !stopped };
        return;
      }
    }
  }

  private applyOne(record: LocalRecord): void {
    if (foldable(record.event)) {
      this.state = applyEvent(this.projection, this.upcast, this.state, record.event);
      this.count += 1;
      this.changes += 1;
      this.foldedSinceSnapshot += 1;
    }
    this.progress = { cursor: record.event.cursor, pos: this.progress.pos, complete: false };
  }

  private async snapshot(head: number): Promise<void> {
    const { name, version } = this.projection;
    await this.log.putSnapshot({
      projection: name,
      version,
      cursor: this.progress.cursor,
      pos: head,
      count: this.count,
      state: structuredClone(this.state),
    });
    this.foldedSinceSnapshot = 0;
    this.snapshotsSincePrune += 1;
    if (this.snapshotsSincePrune < KEEP_SNAPSHOTS) return;
    this.snapshotsSincePrune = 0;
    const [all, horizon] = await Promise.all([
      this.log.listSnapshots(name, version),
      this.log.horizon?.(),
    ]);
    const old = prunable(all, KEEP_SNAPSHOTS, RETAINED_SNAPSHOTS, horizon);
    if (old.length > 0) {
      await this.log.deleteSnapshots(
        name,
        old.map((s) => ({ version, cursor: s.cursor })),
      );
    }
  }

  /** The state as of the inclusive cursor bound `until`, folded apart from the present (invariant 6). */
  async at(until: string): Promise<unknown> {
    return (await this.foldUntil(until)).state;
  }

  /**
   * A fresh fold up to the inclusive cursor bound `until` from the newest valid snapshot before
   * it; `head`: only events received no later than it (a snapshot's position).
   */
  private async foldUntil(
    until: string,
    head = Number.POSITIVE_INFINITY,
  ): Promise<{ state: unknown; count: number }> {
    if (!this.initialized)
      await this.serial(() => (this.initialized ? Promise.resolve() : this.init()));
    const snapshot = await this.findSnapshot(until === '' ? '' : `${until}\u0000`);
    const start = {
      state: snapshot === undefined ? this.callInitial() : snapshot.state,
      count: snapshot?.count ?? 0,
      after: snapshot?.cursor ?? '',
    };
    return foldRange(this.projection, this.upcast, this.reader, start, until, head);
  }
}
