/**
 * The broker publisher: tails every space of a ServerStorage and hands each space's events, in
 * log order, in bounded batches, to a BrokerSink (publish-sink.ts), beside the sessions.
 *
 * Invariants:
 * 1. Per space, events go to the sink in position order (readByPos: holes skipped), each batch
 *    only after the previous one resolved; the position is recorded durably only after the
 *    sink resolved, so a crash at any point re-sends at most the batch in flight, which the
 *    broker drops as a repeat (publish-sink.ts invariant 2): consumers see every event once.
 * 2. A term begins by resuming every space from max(durable position, sink.acknowledged?.(space))
 *    and by listing the spaces, so events appended while no publisher ran (or by another server)
 *    are found; after that, SpaceLog.onAppend wakes it, and on PostgreSQL the storage's
 *    onOtherAppend for appends other servers make (LISTEN), in spaces opened here or not. The
 *    spaces are listed again every `rescanMs`, in case a notification was lost.
 * 3. One publisher per name publishes at a time among the servers of one database: it publishes
 *    only while it holds the storage's lock (storage.ts lockPublisher), tries again every
 *    `lockRetryMs` while another holds it, and stops at once when the lock is lost; a new term
 *    reads the positions again (invariant 2), so a takeover resumes where the last holder's
 *    durable position ends.
 * 4. A failure (broker down, storage error) never reaches the sessions: the publisher runs on
 *    its own, never inside an ingest, and retries forever after a delay that doubles up to
 *    `maxRetryMs`. A run of failures is logged once when it begins (publish_failed) and once when
 *    it ends (publish_recovered); appends do not cut a retry delay short.
 * 5. close() stops it, closes the sink (which fails a publish in flight) and releases the lock;
 *    what was acknowledged to clients and not yet published is published by the next start.
 */
import type { LogEntry, PublishStatus } from './metrics.ts';
import { PublishLag } from './publish-lag.ts';
import type { BrokerSink, PublishedEvent } from './publish-sink.ts';
import type { PublisherLock, ServerStorage, SpaceLog } from './storage.ts';

export interface PublishOptions {
  /** Where events go: natsSink(...), or a sink of your own (publish-sink.ts). */
  sink: BrokerSink;
  /** Most events per publish call (default 500). */
  batchSize?: number;
  /**
   * The name its positions and lock are kept under (default 'default'). Another name publishes
   * every space again from the start (a second broker, a new deployment of one).
   */
  name?: string;
  /** First delay after a failure (default 200 ms); it doubles up to maxRetryMs (default 10 s). */
  retryMs?: number;
  maxRetryMs?: number;
  /** How often a server that does not hold the lock asks again (default 3 s). */
  lockRetryMs?: number;
  /** How often the spaces are listed again, for those first written elsewhere (default 5 s). */
  rescanMs?: number;
}

const DEFAULTS = {
  batchSize: 500,
  name: 'default',
  retryMs: 200,
  maxRetryMs: 10_000,
  lockRetryMs: 3000,
  rescanMs: 5000,
};

export interface PublisherContext {
  log: (entry: LogEntry) => void;
  now?: () => number;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Publisher implements PublishStatus {
  readonly sink: BrokerSink;
  readonly name: string;
  private readonly storage: ServerStorage;
  private readonly options: Required<Omit<PublishOptions, 'sink'>>;
  private readonly log: (entry: LogEntry) => void;
  private readonly now: () => number;
  private readonly lagTracker: PublishLag;
  /** The open log and onAppend subscription of every space seen. */
  private readonly watched = new Map<string, { log: SpaceLog; unsubscribe: () => void }>();
  /** Spaces that may hold unpublished events, in the order they are served (round robin). */
  private readonly pending = new Set<string>();
  /** Spaces whose sink.acknowledged was asked this term (invariant 2). */
  private readonly resumed = new Set<string>();
  private leadingNow = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private unhear: (() => void) | undefined;
  private wakeIdle: (() => void) | undefined;
  private wakeAny: (() => void) | undefined;
  /** The current run of failures (invariant 4). */
  private failing: { since: number; attempts: number; delay: number } | undefined;
  publishedTotal = 0;
  failuresTotal = 0;

  constructor(storage: ServerStorage, options: PublishOptions, context: PublisherContext) {
    this.storage = storage;
    this.sink = options.sink;
    const { sink: _sink, ...rest } = options;
    this.options = { ...DEFAULTS, ...rest };
    if (!Number.isInteger(this.options.batchSize) || this.options.batchSize < 1) {
      throw new TypeError('publish.batchSize must be a positive integer');
    }
    this.name = this.options.name;
    this.log = context.log;
    this.now = context.now ?? Date.now;
    this.lagTracker = new PublishLag(this.now);
  }

  get leading(): boolean {
    return this.leadingNow;
  }

  lag(): number {
    return this.leadingNow ? this.lagTracker.totalLag() : 0;
  }

  lagBySpace(): Map<string, number> {
    return this.leadingNow ? this.lagTracker.spacesBehind() : new Map();
  }

  oldestUnpublishedMs(): number {
    return this.leadingNow ? this.lagTracker.oldestAgeMs() : 0;
  }

  start(): void {
    if (this.running !== undefined) return;
    // A space first written by another server is heard of at once, not at the next scan.
    this.unhear = this.storage.onOtherAppend?.((space, head) => this.appended(space, head));
    this.running = this.run().catch((error: unknown) => {
      this.log({ level: 'error', event: 'publish_stopped', reason: messageOf(error) });
    });
  }

  /** A space a session opened: its appends wake the publisher from now on. */
  watch(log: SpaceLog): void {
    if (this.stopped || this.watched.has(log.space)) return;
    const unsubscribe = log.onAppend((head) => this.appended(log.space, head));
    this.watched.set(log.space, { log, unsubscribe });
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake(true);
    // Fails a publish in flight rather than waiting for its timeout (invariant 5).
    await this.sink.close().catch(() => {});
    await this.running;
    this.unhear?.();
    for (const { unsubscribe } of this.watched.values()) unsubscribe();
    this.watched.clear();
  }

  private appended(space: string, head: number): void {
    this.lagTracker.sawHead(space, head);
    if (head > this.lagTracker.positionOf(space)) {
      this.pending.add(space);
      this.wake(false);
    }
  }

  private wake(all: boolean): void {
    const wake = all ? this.wakeAny : this.wakeIdle;
    this.wakeIdle = undefined;
    if (all) this.wakeAny = undefined;
    wake?.();
  }

  /** Waits `ms`, or less when woken: by an append only if `idle` (invariant 4), by close always. */
  private sleep(ms: number, idle: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeIdle === done) this.wakeIdle = undefined;
        if (this.wakeAny === done) this.wakeAny = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeAny = done;
      if (idle) this.wakeIdle = done;
    });
  }

  private async run(): Promise<void> {
    let standby = false;
    while (!this.stopped) {
      let lock: PublisherLock | undefined;
      try {
        lock = await this.storage.lockPublisher(this.name);
      } catch (error) {
        await this.failed(error);
        continue;
      }
      if (lock === undefined) {
        if (!standby) this.log({ level: 'info', event: 'publish_standby', publisher: this.name });
        standby = true;
        await this.sleep(this.options.lockRetryMs, false);
        continue;
      }
      standby = false;
      if (this.stopped) {
        await lock.release();
        return;
      }
      await this.term(lock);
    }
  }

  /** Publishes while `lock` is held (invariant 3). */
  private async term(lock: PublisherLock): Promise<void> {
    let lost = false;
    void lock.lost.then(() => {
      lost = true;
      this.wake(true);
    });
    this.leadingNow = true;
    this.log({
      level: 'info',
      event: 'publish_leading',
      publisher: this.name,
      sink: this.sink.name,
    });
    try {
      let scanned: number | undefined;
      while (!this.stopped && !lost) {
        try {
          if (scanned === undefined || this.now() - scanned >= this.options.rescanMs) {
            await this.scan(scanned === undefined);
            scanned = this.now();
            // Storage answers again; the broker is known to again only by a publish.
            if (this.pending.size === 0) this.recovered();
          }
          const space = this.pending.values().next().value;
          if (space === undefined) {
            await this.sleep(this.options.rescanMs - (this.now() - scanned), true);
            continue;
          }
          await this.publishSome(space);
          this.recovered();
        } catch (error) {
          await this.failed(error);
        }
      }
      if (lost && !this.stopped) {
        this.log({ level: 'warn', event: 'publish_lock_lost', publisher: this.name });
      }
    } finally {
      this.leadingNow = false;
      this.pending.clear();
      this.resumed.clear();
      this.lagTracker.forgetPositions();
      await lock.release();
    }
  }

  /** Lists the spaces and their durable positions (invariant 2); `fresh`: a term begins. */
  private async scan(fresh: boolean): Promise<void> {
    const positions = await this.storage.publishedPositions(this.name);
    const spaces = await this.storage.listSpaces();
    for (const { space, head } of spaces) {
      this.lagTracker.published(space, positions.get(space) ?? 0);
      this.lagTracker.sawHead(space, head);
      if (!this.watched.has(space)) this.watch(await this.storage.openSpace(space));
      if (this.lagTracker.lagOf(space) > 0) this.pending.add(space);
    }
    if (fresh) {
      this.log({
        level: 'info',
        event: 'publish_resumed',
        publisher: this.name,
        spaces: spaces.length,
        behind: this.pending.size,
        lag: this.lagTracker.totalLag(),
      });
    }
  }

  /** Publishes one batch of `space` (invariant 1). */
  private async publishSome(space: string): Promise<void> {
    const log = this.watched.get(space)?.log ?? (await this.storage.openSpace(space));
    this.watch(log);
    if (!this.resumed.has(space) && this.sink.acknowledged !== undefined) {
      const acknowledged = await this.sink.acknowledged(space);
      if (acknowledged !== undefined && acknowledged > this.lagTracker.positionOf(space)) {
        await this.storage.setPublishedPos(this.name, space, acknowledged);
        this.lagTracker.published(space, acknowledged);
      }
    }
    this.resumed.add(space);
    const from = this.lagTracker.positionOf(space);
    const records = await log.readByPos(from, this.options.batchSize);
    let last = from;
    if (records.length === 0) {
      // Only holes past the position (copies that lost): nothing to send, skip them.
      last = await log.headPos();
    } else {
      const events: PublishedEvent[] = records.map((r) => ({ pos: r.pos, event: r.event }));
      await this.sink.publish(space, events);
      last = records[records.length - 1]!.pos;
      this.publishedTotal += records.length;
    }
    if (last > from) await this.storage.setPublishedPos(this.name, space, last);
    this.lagTracker.published(space, last);
    this.lagTracker.sawHead(space, last);
    // Round robin: a space still behind goes to the end of the queue.
    this.pending.delete(space);
    if (this.lagTracker.lagOf(space) > 0) this.pending.add(space);
  }

  private async failed(error: unknown): Promise<void> {
    // Closing fails the publish in flight (invariant 5): that is no outage.
    if (this.stopped) return;
    this.failuresTotal += 1;
    if (this.failing === undefined) {
      this.failing = { since: this.now(), attempts: 0, delay: this.options.retryMs };
      this.log({
        level: 'warn',
        event: 'publish_failed',
        publisher: this.name,
        sink: this.sink.name,
        reason: messageOf(error),
      });
    }
    const failing = this.failing;
    failing.attempts += 1;
    const delay = failing.delay;
    failing.delay = Math.min(this.options.maxRetryMs, failing.delay * 2);
    await this.sleep(delay, false);
  }

  private recovered(): void {
    const failing = this.failing;
    if (failing === undefined) return;
    this.failing = undefined;
    this.log({
      level: 'info',
      event: 'publish_recovered',
      publisher: this.name,
      sink: this.sink.name,
      attempts: failing.attempts,
      downMs: this.now() - failing.since,
    });
  }
}
