/**
 * The options of the server storages' compactors (sqlite-compactor.ts, postgres-compactor.ts),
 * in a file of their own: the public types of `/server` must not reach a module that imports
 * better-sqlite3 or pg, whose types an app that uses neither has not installed.
 */

/** sqliteStorage's `compaction` option (sqlite.ts). */
export interface CompactionOptions {
  /**
   * Positions within this many of a space's head stay one row each. Default 8,192 (64 blocks):
   * a client back from a short drop and the publisher read rows, not blocks, and the tail costs
   * ~5 MB per busy space at ~640 bytes a row.
   */
  tailEvents?: number;
  /**
   * Quiet time after the last commit or read before compaction steps run. Default 200 ms:
   * longer than the gaps inside a burst of batches, short enough to catch up between bursts.
   */
  idleMs?: number;
  /**
   * Longest a wait for quiet may last before steps run between commits. Default 5,000 ms. Past
   * it, steps seal about what is committed (a quarter more, so the tail shrinks) and take at
   * most a third of the time: clients being served are never held up by a backlog's sealing.
   */
  maxDelayMs?: number;
  /** Tests: seal every position past the tail, partial blocks too, right after each commit. */
  eager?: boolean;
}

/** postgresStorage's `compaction` option (postgres.ts). */
export interface PostgresCompactionOptions {
  /**
   * Positions this close to the head stay rows (default 1024): appends, live tailing and the
   * catch-up of a client that was away briefly read plain rows; at about 1 KB a row (its text
   * columns and three indexes), a space's tail costs about 1 MB.
   */
  tailEvents?: number;
  /** Quiet time after an append before a step runs (default 200 ms, the gaps of a burst). */
  idleMs?: number;
  /**
   * Longest a space waits for a quiet moment (default 5,000 ms): a server never idle that long
   * compacts between its commits all the same (a step takes no lock an ingest takes).
   */
  maxDelayMs?: number;
  /** Tests: seal partial blocks too (every position past the tail), not only full ones. */
  eager?: boolean;
}
