/**
 * The change feed: after any write this handle can see (its own appends, synced events, other
 * tabs' writes), reads the new records in receive order and hands them to subscribers and
 * watchers.
 *
 * Invariants:
 * 1. Every record is delivered to each subscriber at most once, in receive order.
 * 2. Pumps never overlap; notifications that arrive during a pump coalesce into one more pump.
 * 3. Storage, not the notification, is the truth: a pump reads everything after its position, so a
 *    dropped or late notification only delays delivery until the next one.
 */
import type { LocalRecord } from '../core/events.ts';
import type { EventLog } from '../storage/adapter.ts';

const PAGE = 500;

export type FeedListener = (records: LocalRecord[]) => void;

export class ChangeFeed {
  private position = 0;
  private started = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly listeners = new Set<FeedListener>();
  private readonly headListeners = new Set<(head: number) => void>();

  private readonly log: EventLog;
  private readonly onError: (error: unknown) => void;

  constructor(log: EventLog, onError: (error: unknown) => void) {
    this.log = log;
    this.onError = onError;
  }

  /** Starts delivering what is written after `head`, the head position read at open. */
  start(head: number): void {
    this.position = head;
    this.started = true;
  }

  /** Subscribes to new records. */
  listen(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called with the new head after each pump that found something. */
  onHead(listener: (head: number) => void): () => void {
    this.headListeners.add(listener);
    return () => this.headListeners.delete(listener);
  }

  /**
   * Tells the head listeners again, though the head may not have moved: a write that changed
   * what they read beside the log (the own seqs that lost, store/forgone.ts) may have been
   * pumped by a notice that came before that was recorded.
   */
  announceHead(): void {
    if (!this.started) return;
    for (const listener of [...this.headListeners]) listener(this.position);
  }

  /**
   * Something was written: pump (invariant 2). Resolves when the records were delivered.
   * `headHint`: the head position the caller just wrote, which spares a read when nobody
   * listens for records.
   */
  notify(headHint?: number): Promise<void> {
    if (!this.started) return Promise.resolve();
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = this.pump(headHint).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.notify();
      }
    });
    return this.running;
  }

  /** Waits until every pump started so far has finished. */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async pump(headHint: number | undefined): Promise<void> {
    try {
      if (this.listeners.size === 0) {
        // Nobody wants the records themselves: only move the position and report the head.
        const head = headHint ?? (await this.log.headPos());
        if (head <= this.position) return;
        this.position = head;
        for (const listener of [...this.headListeners]) listener(this.position);
        return;
      }
      for (;;) {
        const page = await this.log.readByPos(this.position, PAGE);
        if (page.length === 0) return;
        this.position = page[page.length - 1]!.pos;
        for (const listener of [...this.listeners]) {
          try {
            listener(page);
          } catch (error) {
            this.onError(error);
          }
        }
        for (const listener of [...this.headListeners]) listener(this.position);
        if (page.length < PAGE) return;
      }
    } catch (error) {
      this.onError(error);
    }
  }
}
