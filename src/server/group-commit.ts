/**
 * Group commit for a synchronous database (better-sqlite3): the pieces of work handed over in one
 * turn of the event loop (batches from many connections) run in ONE transaction, so one fsync
 * covers them all.
 *
 * Invariants:
 * 1. No piece resolves before the transaction that holds it has committed.
 * 2. Each piece runs as a savepoint of its own (a nested better-sqlite3 transaction): one that
 *    throws is rolled back and rejected alone; the others of the group still commit.
 * 3. A commit that fails rejects every piece of its group, with `failure(error)`.
 * 4. `committed(result)` runs synchronously after the commit, before any other code: a storage
 *    updates its caches there, so no reader sees the database ahead of them.
 * 5. flush() runs what waits at once (a graceful close commits what was handed over).
 */

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Piece {
  work: () => unknown;
  done: (outcome: Outcome) => void;
}

export class GroupCommit {
  private pending: Piece[] = [];

  private readonly transaction: (run: () => void) => void;
  private readonly failure: (error: unknown) => unknown;

  /**
   * @param transaction runs its argument inside one transaction and commits (throws if it cannot)
   * @param failure turns a failed commit's error into what each piece rejects with
   */
  constructor(
    transaction: (run: () => void) => void,
    failure: (error: unknown) => unknown = (error) => error,
  ) {
    this.transaction = transaction;
    this.failure = failure;
  }

  /** Runs `work` (itself a transaction: a savepoint here) in the next group (invariant 2). */
  run<T>(work: () => T, committed: (result: T) => void = () => {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        work,
        done: (outcome) => {
          if (!outcome.ok) return reject(outcome.error);
          committed(outcome.value as T);
          resolve(outcome.value as T);
        },
      });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Commits what waits now (invariant 5); a no-op when nothing does. */
  flush(): void {
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    const outcomes: Outcome[] = [];
    try {
      this.transaction(() => {
        for (const piece of group) {
          try {
            outcomes.push({ ok: true, value: piece.work() });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      const reason = this.failure(error);
      for (const piece of group) piece.done({ ok: false, error: reason });
      return;
    }
    for (let i = 0; i < group.length; i++) group[i]!.done(outcomes[i]!);
  }
}
