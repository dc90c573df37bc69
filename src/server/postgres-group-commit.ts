/**
 * Group commit for an asynchronous database (PostgreSQL through pg), the counterpart of
 * group-commit.ts (which is synchronous, for better-sqlite3). The pieces of work handed over in
 * one turn of the event loop, or while the previous group was committing (batches from many
 * connections), go to ONE call of `commit`, which runs them in one transaction: one commit, one
 * WAL flush, covers them all. The longer a commit takes, the more the next group gathers.
 *
 * Invariants:
 * 1. No piece resolves before the transaction that holds it has committed: outcomes are handed
 *    out only once `commit` has resolved, and `commit` resolves after COMMIT.
 * 2. A piece that `commit` reports as failed is rejected alone, the others of its group resolve
 *    (`commit` rolls a failing piece back to a savepoint of its own).
 * 3. A `commit` that throws rejects every piece of its group, with `failure(error)`.
 * 4. The `committed(result)` callbacks of a group run synchronously, in hand-over order, once it
 *    committed and before any other code (its pieces' reactions included): a storage updates its
 *    caches there, so no reader sees the database ahead of them.
 * 5. Pieces are taken in hand-over order. At most `concurrency` groups commit at once; a group
 *    starts on the turn after a piece arrives or a group ends, and takes what waits up to
 *    `maxWeight` (at least one piece), so the size of a group, and of its statements, is bounded.
 * 6. flush() starts what waits at once and resolves when every piece handed over has settled
 *    (a graceful close commits what was handed over).
 */

/** What `commit` reports for one piece. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface AsyncGroupCommitOptions<P, R> {
  /** Runs the pieces in one transaction; one outcome per piece, in order (invariants 1–3). */
  commit: (pieces: readonly P[]) => Promise<readonly Outcome<R>[]>;
  /** Turns a failed commit's error into what each piece of the group rejects with. */
  failure?: (error: unknown) => unknown;
  /** Groups committing at once (default 1). */
  concurrency?: number;
  /** The weight of a piece (default 1) ... */
  weight?: (piece: P) => number;
  /** ... and the most a group takes, unless its first piece alone weighs more (default no limit). */
  maxWeight?: number;
}

interface Waiting<P, R> {
  piece: P;
  committed: (result: R) => void;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class AsyncGroupCommit<P, R> {
  private waiting: Waiting<P, R>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private scheduled = false;
  private readonly commit: (pieces: readonly P[]) => Promise<readonly Outcome<R>[]>;
  private readonly failure: (error: unknown) => unknown;
  private readonly concurrency: number;
  private readonly weight: (piece: P) => number;
  private readonly maxWeight: number;

  constructor(options: AsyncGroupCommitOptions<P, R>) {
    this.commit = options.commit;
    this.failure = options.failure ?? ((error) => error);
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.weight = options.weight ?? (() => 1);
    this.maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
  }

  /** Runs `piece` in a coming group; resolves with its result once that group committed. */
  run(piece: P, committed: (result: R) => void = () => {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ piece, committed, resolve, reject });
      this.schedule();
    });
  }

  /** Whether nothing waits or commits now (a background job may run: postgres-compactor.ts). */
  idle(): boolean {
    return this.waiting.length === 0 && this.inFlight.size === 0;
  }

  /** Starts what waits now, and resolves once nothing waits or commits (invariant 6). */
  async flush(): Promise<void> {
    while (this.waiting.length > 0 || this.inFlight.size > 0) {
      this.startGroups();
      await Promise.all(this.inFlight);
    }
  }

  /** Invariant 5: one turn later, so that what the current turn hands over joins the group. */
  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight.size >= this.concurrency) {
      return;
    }
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startGroups();
    });
  }

  private startGroups(): void {
    while (this.inFlight.size < this.concurrency && this.waiting.length > 0) {
      const group = this.take();
      const done: Promise<void> = this.commitGroup(group).finally(() => {
        this.inFlight.delete(done);
        this.schedule();
      });
      this.inFlight.add(done);
    }
  }

  /** The waiting pieces up to maxWeight, in hand-over order. */
  private take(): Waiting<P, R>[] {
    let weight = 0;
    let count = 0;
    for (const waiting of this.waiting) {
      weight += this.weight(waiting.piece);
      if (count > 0 && weight > this.maxWeight) break;
      count += 1;
    }
    return this.waiting.splice(0, count);
  }

  /** Never rejects: every outcome goes to its piece. */
  private async commitGroup(group: Waiting<P, R>[]): Promise<void> {
    let outcomes: readonly Outcome<R>[];
    try {
      outcomes = await this.commit(group.map((w) => w.piece));
      if (outcomes.length !== group.length) {
        throw new Error(`commit reported ${outcomes.length} outcomes for ${group.length} pieces`);
      }
    } catch (error) {
      const reason = this.failure(error);
      for (const waiting of group) waiting.reject(reason);
      return;
    }
    // Invariant 4: resolve() only queues reactions, so every callback runs before any of them.
    for (let i = 0; i < group.length; i++) {
      const waiting = group[i]!;
      const outcome = outcomes[i]!;
      if (!outcome.ok) {
        waiting.reject(outcome.error);
        continue;
      }
      try {
        waiting.committed(outcome.value);
        waiting.resolve(outcome.value);
      } catch (error) {
        waiting.reject(error);
      }
    }
  }
}
