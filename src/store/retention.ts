/**
 * Retention passes (docs/storage-growth.md part 2): the store's side of core/retention.ts. A pass
 * gathers what the pure decision needs, writes a snapshot of every projection at the new horizon
 * H, then trims the log to H in short steps.
 *
 * Invariants:
 * 1. Without a retain policy, or without a server link (ServerLink: the server's checkpoint of
 *    this log), a pass trims nothing.
 * 2. Every projection has a snapshot at H before the first event at or below H is trimmed: a
 *    projection never needs a trimmed event to reach the present (projection-runtime.ts 12).
 * 3. Passes never overlap; each trim step is its own transaction of at most TRIM_STEP events,
 *    and the pass yields to other work between steps (off the append path).
 * 5. Before trimming, every projection's snapshots that an event already invalidates are
 *    deleted: a trimmed event no longer shows in minCursorSince, so validity is settled while it
 *    still does. Only events at positions <= the checkpoint read first are trimmed, so what
 *    arrives during the pass stays whole and visible.
 * 4. A pass that cannot write its snapshots (a projection throws, history is needed and
 *    unavailable) trims nothing and fails; the next pass tries again.
 */
import { ValidationError } from '../core/errors.ts';
import {
  bytesCursor,
  eventBytes,
  horizonBound,
  type RetainPolicy,
  validRetainPolicy,
} from '../core/retention.ts';
import type { EventLog } from '../storage/adapter.ts';
import type { ProjectionRuntime } from './projection-runtime.ts';
import type { ServerLink } from './server-link.ts';

/** Events trimmed per transaction at most (invariant 3). */
export const TRIM_STEP = 512;

export interface RetentionOutcome {
  trimmed: number;
  horizon: string | undefined;
}

export class Retainer {
  private running: Promise<RetentionOutcome> | undefined;
  private again = false;
  private server: ServerLink | undefined;
  private unsubscribe: (() => void) | undefined;

  private readonly log: EventLog;
  private readonly policy: RetainPolicy | undefined;
  private readonly now: () => number;
  private readonly runtimes: () => Iterable<ProjectionRuntime>;

  constructor(
    log: EventLog,
    policy: RetainPolicy | undefined,
    now: () => number,
    runtimes: () => Iterable<ProjectionRuntime>,
  ) {
    if (policy !== undefined && !validRetainPolicy(policy)) {
      throw new ValidationError('retain', 'events, days and bytes must be finite numbers >= 0');
    }
    this.log = log;
    this.policy = policy;
    this.now = now;
    this.runtimes = runtimes;
  }

  /** The sync side's server link (StoreInternals.attachServer); undefined detaches. */
  attach(server: ServerLink | undefined, onChange: () => void): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.server = server;
    if (server !== undefined) this.unsubscribe = server.onChange(onChange);
  }

  get history() {
    return this.server?.history;
  }

  /** Whether this store has a policy: without one a pass can trim nothing. */
  get retains(): boolean {
    return this.policy !== undefined;
  }

  /**
   * A pass that starts after this call (quota pressure: what the running one read may be old):
   * waits for the running pass, then runs or joins the next one.
   */
  async passAfterRunning(): Promise<RetentionOutcome> {
    const running = this.running;
    if (running !== undefined) await running.catch(() => undefined);
    return this.pass();
  }

  /** Runs a pass, or joins the running one and runs once more after it (invariant 3). */
  pass(): Promise<RetentionOutcome> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    const run = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.pass().catch(() => {});
      }
    });
    this.running = run;
    return run;
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.server = undefined;
  }

  /** core/retention.ts bytesCursor over the log's newest events, read a page at a time. */
  private async overBudget(budget: number): Promise<string | undefined> {
    let left = budget;
    let after: string | undefined;
    for (;;) {
      const page = await this.log.readByCursor({
        reverse: true,
        limit: TRIM_STEP,
        ...(after === undefined ? {} : { after }),
      });
      const sizes = page.map((r) => ({ cursor: r.event.cursor, bytes: eventBytes(r.event) }));
      const hit = bytesCursor(sizes, left);
      if (hit !== undefined || page.length < TRIM_STEP) return hit;
      for (const { bytes } of sizes) left -= bytes;
      after = page[page.length - 1]!.event.cursor;
    }
  }

  private async run(): Promise<RetentionOutcome> {
    const log = this.log;
    const server = this.server;
    const current = await log.horizon?.();
    const none = { trimmed: 0, horizon: current };
    // Invariant 1.
    if (this.policy === undefined || server === undefined || log.trim === undefined) return none;
    const acked = server.ackedPos();
    const events = this.policy.events;
    const bytes = this.policy.bytes;
    const [unackedMin, newest, overBudget] = await Promise.all([
      acked > 0 ? log.minCursorSince(acked) : null,
      events === undefined ? [] : log.readByCursor({ reverse: true, limit: events + 1 }),
      bytes === undefined ? undefined : this.overBudget(bytes),
    ]);
    const bound = horizonBound({
      policy: this.policy,
      now: this.now(),
      countCursor: events === undefined ? undefined : newest[events]?.event.cursor,
      bytesCursor: overBudget,
      unackedMin,
      horizon: current,
    });
    if (bound === undefined) return none;
    const [top] = await log.readByCursor({ reverse: true, after: bound, limit: 1 });
    const horizon = top?.event.cursor;
    if (horizon === undefined || (current !== undefined && horizon <= current)) return none;
    // Invariant 2 (and 4: a failure here throws before anything is trimmed).
    for (const runtime of this.runtimes()) await runtime.retainAt(horizon);
    // Invariant 5.
    for (const runtime of this.runtimes()) await runtime.dropInvalidSnapshots();
    let trimmed = 0;
    for (;;) {
      // The checkpoint read first bounds the trim too: an event received since (a late one
      // below H) stays whole, whatever its cursor (core/retention.ts invariant 1).
      const step = await log.trim(horizon, TRIM_STEP, acked);
      trimmed += step.trimmed;
      if (!step.more) return { trimmed, horizon: step.horizon };
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}
