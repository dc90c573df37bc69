/**
 * Tells a projection's catch-up whether one of the store's own log writes (append, ingest,
 * re-stamp) overlapped it, and lets it hold new writes back when catching up keeps overlapping.
 * A catch-up reads the log in several transactions (head, then pages of events); an ingest that
 * replaces a losing copy, or a re-stamp that moves events, committed between two of those reads
 * would leave a state that folds neither the log before the write nor the one after (an event
 * missing, or folded twice).
 *
 * Invariants:
 * 1. `quietSince(mark)` is true only if no write was running when `mark()` was taken and none
 *    started since: reads made between the two saw one log.
 * 2. `exclusive(task)` runs `task` with no write running: it waits for the writes already started
 *    and holds back writes asked for meanwhile until `task` settles. Writes are never dropped or
 *    reordered among themselves.
 * 3. Writes never wait for each other here; the gate only counts them (storage keeps its own
 *    order).
 */
export interface WriteMark {
  readonly started: number;
  readonly running: number;
}

export class WriteGate {
  private started = 0;
  private running = 0;
  private idle: (() => void)[] = [];
  /** Settles when the exclusive task holding writes back is done (invariant 2). */
  private held: Promise<void> | undefined;

  /** Runs one log write, counted (invariant 1); waits while an exclusive task runs. */
  async write<T>(task: () => Promise<T>): Promise<T> {
    while (this.held !== undefined) await this.held;
    this.started += 1;
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      if (this.running === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  mark(): WriteMark {
    return { started: this.started, running: this.running };
  }

  quietSince(mark: WriteMark): boolean {
    return mark.running === 0 && this.running === 0 && this.started === mark.started;
  }

  /** Invariant 2. Exclusive tasks queue behind each other. */
  async exclusive<T>(task: () => Promise<T>): Promise<T> {
    while (this.held !== undefined) await this.held;
    let release!: () => void;
    this.held = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      if (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      return await task();
    } finally {
      this.held = undefined;
      release();
    }
  }
}
