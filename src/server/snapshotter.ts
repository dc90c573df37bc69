/**
 * The snapshotter: folds each space's log with the app's projections, beside the sessions, and
 * stores a snapshot of every space every `every` events (docs/storage-growth.md part 4), from
 * which a new device joins (SnapshotSource: connection.ts answers its hello with `latest`).
 *
 * Invariants:
 * 1. It never runs inside an ingest: appends only wake it (SpaceLog.onAppend, and on PostgreSQL
 *    the storage's onOtherAppend), and it reads the logs on its own, one space at a time,
 *    yielding between pages (snapshot-builder.ts invariant 6). A failure is logged and retried
 *    after a delay; it never reaches a session.
 * 2. A space's snapshot is built when `every` positions were written after its newest one, or
 *    `lateDelayMs` after a late event was seen (an event after the newest snapshot whose cursor
 *    sorts below it): the stored snapshot still folds exactly its positions, but a device joining
 *    from it must rebase, so a fresh one replaces it soon.
 * 3. It resumes from the newest stored snapshot of its projection set: a restart folds only the
 *    events after it (a late one: from the older kept snapshot, or initial()). Per (space, set)
 *    it keeps the newest snapshot and at most one older, the newest still valid for a fold
 *    (snapshot-builder.ts `keep`).
 * 4. One server of a database builds at a time: it builds only while it holds the storage's lock
 *    named SNAPSHOT_LOCK (storage.ts lockPublisher; granted at once on SQLite). Every server
 *    answers `latest` from the storage.
 * 5. A space whose events the server cannot fold (encrypted) or whose projection throws gets no
 *    snapshots: its snapshots of the set are dropped, and it is not tried again until restart.
 *    A projection whose state does not survive JSON is left out of the space's snapshots (a
 *    device wanting it replays); after a restart, the projections the newest snapshot lacks stay
 *    left out.
 * 6. `latest(space, wanted)` gives the newest stored snapshot holding every wanted projection at
 *    exactly its version (core/snapshot-plan.ts invariant 2), with only the wanted ones.
 */
import type { Projection } from '../core/projection.ts';
import { answersWanted, projectionSetKey } from '../core/snapshot-plan.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import { makeUpcast, type Upcaster, type UpcastFn } from '../core/upcast.ts';
import type { LogEntry } from './metrics.ts';
import { buildSnapshot } from './snapshot-builder.ts';
import type { SnapshotSource } from './snapshot-source.ts';
import type { PublisherLock, ServerStorage, SnapshotStore, SpaceLog } from './storage.ts';

export interface SnapshotOptions {
  /** The app's projections (defineProjection), the same objects its clients register. */
  projections: readonly Projection[];
  /** The app's upcasters, when its store has some: projections see upcast events. */
  upcasters?: readonly Upcaster[];
  /** Positions between two snapshots of a space (default 10,000). */
  every?: number;
  /** How long after a late event a fresh snapshot is built (default 2 s; invariant 2). */
  lateDelayMs?: number;
  /** How often the spaces are listed again, for appends not heard of (default 5 s). */
  rescanMs?: number;
  /** How often a server without the lock asks again (default 3 s). */
  lockRetryMs?: number;
  /** Delay after a failure (default 1 s). */
  retryMs?: number;
}

/** The lock name of invariant 4 (not a publisher's: publishers are named by operators). */
export const SNAPSHOT_LOCK = '\u0000snapshots';

const DEFAULTS = {
  every: 10_000,
  lateDelayMs: 2000,
  rescanMs: 5000,
  lockRetryMs: 3000,
  retryMs: 1000,
};

export interface SnapshotterContext {
  log: (entry: LogEntry) => void;
  now?: () => number;
}

/** What the snapshotter knows of one space between builds. */
interface Tracked {
  log: SpaceLog | undefined;
  head: number;
  /** Loaded from storage this term: the fields below are known. */
  loaded: boolean;
  snapPos: number;
  snapCursor: string;
  /** Events up to here were compared with snapCursor (invariant 2). */
  checkedPos: number;
  lateAt: number | undefined;
  /** Invariant 5: why this space gets no snapshots. */
  disabled: string | undefined;
  /** Invariant 5: projections left out of its snapshots. */
  skipped: Set<string>;
  unsubscribe: (() => void) | undefined;
}

type Work = { space: string; kind: 'load' | 'check' | 'build' };

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Snapshotter implements SnapshotSource {
  readonly set: string;
  private readonly storage: ServerStorage;
  private readonly store: SnapshotStore;
  private readonly projections: readonly Projection[];
  private readonly upcast: UpcastFn;
  private readonly options: typeof DEFAULTS;
  private readonly log: (entry: LogEntry) => void;
  private readonly now: () => number;
  private readonly spaces = new Map<string, Tracked>();
  private stopped = false;
  private running: Promise<void> | undefined;
  private unhear: (() => void) | undefined;
  private wakeUp: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private rescanNow = false;
  /** Snapshots stored since start (for tests and metrics). */
  builtTotal = 0;

  constructor(storage: ServerStorage, options: SnapshotOptions, context: SnapshotterContext) {
    if (storage.snapshots === undefined) {
      throw new TypeError(`snapshots: the storage ${storage.name} keeps none`);
    }
    const names = new Set<string>();
    for (const projection of options.projections) {
      if (names.has(projection.name)) {
        throw new TypeError(`snapshots: two projections are named ${projection.name}`);
      }
      names.add(projection.name);
    }
    const { projections, upcasters, ...rest } = options;
    const every = rest.every ?? DEFAULTS.every;
    if (!Number.isSafeInteger(every) || every < 1) {
      throw new TypeError('snapshots.every must be a positive integer');
    }
    this.storage = storage;
    this.store = storage.snapshots;
    this.projections = projections;
    this.upcast = makeUpcast(upcasters ?? []);
    this.options = { ...DEFAULTS, ...rest };
    this.set = projectionSetKey(projections);
    this.log = context.log;
    this.now = context.now ?? Date.now;
  }

  start(): void {
    if (this.running !== undefined) return;
    this.unhear = this.storage.onOtherAppend?.((space, head) => this.appended(space, head));
    this.running = this.run().catch((error: unknown) => {
      this.log({ level: 'error', event: 'snapshots_stopped', reason: messageOf(error) });
    });
  }

  /** A space a session opened: its appends wake the snapshotter (invariant 1). */
  watch(log: SpaceLog): void {
    if (this.stopped) return;
    const tracked = this.track(log.space);
    if (tracked.unsubscribe !== undefined) return;
    tracked.log = log;
    tracked.unsubscribe = log.onAppend((head) => this.appended(log.space, head));
  }

  async latest(
    space: string,
    wanted: readonly ProjectionVersion[],
  ): Promise<SpaceSnapshot | undefined> {
    for (const meta of await this.store.list(space)) {
      if (!answersWanted(meta.versions, wanted)) continue;
      const snapshot = await this.store.read(space, meta.set, meta.pos);
      if (snapshot === undefined) continue; // replaced meanwhile
      const names = new Set(wanted.map((w) => w.name));
      return { ...snapshot, projections: snapshot.projections.filter((p) => names.has(p.name)) };
    }
    return undefined;
  }

  /**
   * Resolves once the snapshotter, holding the lock, has listed the spaces again and found no
   * work due: for tests and benches (lateDelayMs 0 makes late rebuilds due at once).
   */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.rescanNow = true;
      this.wake();
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
    this.unhear?.();
    for (const tracked of this.spaces.values()) tracked.unsubscribe?.();
    this.spaces.clear();
  }

  private track(space: string): Tracked {
    let tracked = this.spaces.get(space);
    if (tracked === undefined) {
      tracked = {
        log: undefined,
        head: 0,
        loaded: false,
        snapPos: 0,
        snapCursor: '',
        checkedPos: 0,
        lateAt: undefined,
        disabled: undefined,
        skipped: new Set(),
        unsubscribe: undefined,
      };
      this.spaces.set(space, tracked);
    }
    return tracked;
  }

  private appended(space: string, head: number): void {
    const tracked = this.track(space);
    if (head > tracked.head) tracked.head = head;
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.wakeUp = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let lock: PublisherLock | undefined;
      try {
        lock = await this.storage.lockPublisher(SNAPSHOT_LOCK);
      } catch (error) {
        this.log({ level: 'warn', event: 'snapshots_failed', reason: messageOf(error) });
        await this.sleep(this.options.retryMs);
        continue;
      }
      if (lock === undefined) {
        await this.sleep(this.options.lockRetryMs);
        continue;
      }
      await this.term(lock);
    }
  }

  /** Builds while `lock` is held (invariant 4). */
  private async term(lock: PublisherLock): Promise<void> {
    let lost = false;
    void lock.lost.then(() => {
      lost = true;
      this.wake();
    });
    try {
      let scanned: number | undefined;
      while (!this.stopped && !lost) {
        try {
          if (
            this.rescanNow ||
            scanned === undefined ||
            this.now() - scanned >= this.options.rescanMs
          ) {
            const waiters = this.rescanNow ? this.idleWaiters.splice(0) : [];
            this.rescanNow = false;
            await this.scan();
            scanned = this.now();
            // Those waiting see this scan's work done first: they wait for the next idle turn.
            this.pendingIdle.push(...waiters);
          }
          const work = this.nextWork();
          if (work === undefined) {
            for (const resolve of this.pendingIdle.splice(0)) resolve();
            await this.sleep(this.untilDue(scanned));
            continue;
          }
          await this.perform(work);
        } catch (error) {
          if (this.stopped) break;
          this.log({ level: 'warn', event: 'snapshots_failed', reason: messageOf(error) });
          await this.sleep(this.options.retryMs);
        }
      }
    } finally {
      // A new term loads every space again: another server may have built meanwhile.
      for (const tracked of this.spaces.values()) tracked.loaded = false;
      await lock.release();
      for (const resolve of this.pendingIdle.splice(0)) resolve();
      if (this.stopped) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private readonly pendingIdle: (() => void)[] = [];

  private async scan(): Promise<void> {
    for (const { space, head } of await this.storage.listSpaces()) {
      const tracked = this.track(space);
      if (head > tracked.head) tracked.head = head;
    }
  }

  /** The time until the next late rebuild or scan is due. */
  private untilDue(scanned: number): number {
    let ms = this.options.rescanMs - (this.now() - scanned);
    for (const tracked of this.spaces.values()) {
      if (tracked.lateAt !== undefined && tracked.disabled === undefined) {
        ms = Math.min(ms, tracked.lateAt + this.options.lateDelayMs - this.now());
      }
    }
    return ms;
  }

  private nextWork(): Work | undefined {
    const now = this.now();
    for (const [space, t] of this.spaces) {
      if (t.disabled !== undefined) continue;
      if (!t.loaded) return { space, kind: 'load' };
      if (t.head - t.snapPos >= this.options.every) return { space, kind: 'build' };
      if (t.lateAt !== undefined && t.head > t.snapPos) {
        if (now - t.lateAt >= this.options.lateDelayMs) return { space, kind: 'build' };
        continue;
      }
      if (t.snapPos > 0 && t.head > t.checkedPos) return { space, kind: 'check' };
    }
    return undefined;
  }

  private async perform(work: Work): Promise<void> {
    const tracked = this.track(work.space);
    // Round robin: a space goes to the end of the queue once served.
    this.spaces.delete(work.space);
    this.spaces.set(work.space, tracked);
    tracked.log ??= await this.storage.openSpace(work.space);
    if (work.kind === 'load') await this.load(work.space, tracked);
    else if (work.kind === 'check') await this.check(tracked);
    else await this.build(work.space, tracked);
  }

  private async load(space: string, tracked: Tracked): Promise<void> {
    const newest = (await this.store.list(space)).find((m) => m.set === this.set);
    const head = await tracked.log!.headPos();
    if (head > tracked.head) tracked.head = head;
    tracked.snapPos = newest?.pos ?? 0;
    tracked.snapCursor = newest?.cursor ?? '';
    tracked.checkedPos = tracked.snapPos;
    tracked.lateAt = undefined;
    tracked.skipped = new Set(
      newest === undefined
        ? []
        : this.projections
            .map((p) => p.name)
            .filter((name) => !newest.versions.some((v) => v.name === name)),
    );
    tracked.loaded = true;
  }

  /** Looks for a late event after the newest snapshot (invariant 2). */
  private async check(tracked: Tracked): Promise<void> {
    const page = await tracked.log!.readByPos(tracked.checkedPos, 1000);
    for (const { event } of page) {
      if (event.cursor < tracked.snapCursor) {
        tracked.lateAt ??= this.now();
        break;
      }
    }
    tracked.checkedPos =
      page.length === 0 ? Math.max(tracked.checkedPos, tracked.head) : page[page.length - 1]!.pos;
  }

  private async build(space: string, tracked: Tracked): Promise<void> {
    const log = tracked.log!;
    const head = await log.headPos();
    const mine = (await this.store.list(space)).filter((m) => m.set === this.set);
    const newestMeta = mine[0];
    const newest =
      newestMeta === undefined ? undefined : await this.store.read(space, this.set, newestMeta.pos);
    const older = mine[1];
    const outcome = await buildSnapshot({
      log,
      projections: this.projections.filter((p) => !tracked.skipped.has(p.name)),
      upcast: this.upcast,
      head,
      ...(newest === undefined ? {} : { newest }),
      ...(older === undefined ? {} : { older }),
      readOlder: () =>
        older === undefined
          ? Promise.resolve(undefined)
          : this.store.read(space, this.set, older.pos),
      alive: () => !this.stopped,
    });
    switch (outcome.kind) {
      case 'stopped':
        return;
      case 'encrypted':
      case 'threw': {
        tracked.disabled = outcome.kind;
        await this.store.drop(space, this.set);
        this.log({
          level: 'warn',
          event: 'snapshots_off',
          space,
          reason: outcome.kind === 'encrypted' ? 'encrypted events' : outcome.message,
          eventId: outcome.eventId,
          ...(outcome.kind === 'threw' ? { projection: outcome.projection } : {}),
        });
        return;
      }
      case 'built': {
        for (const name of outcome.skipped) {
          tracked.skipped.add(name);
          this.log({
            level: 'warn',
            event: 'snapshot_skipped',
            space,
            projection: name,
            reason: 'its state does not survive a JSON round trip',
          });
        }
        await this.store.put(space, this.set, outcome.snapshot, outcome.keep);
        this.builtTotal += 1;
        tracked.snapPos = outcome.snapshot.pos;
        tracked.snapCursor = outcome.snapshot.cursor;
        tracked.checkedPos = Math.max(tracked.checkedPos, outcome.snapshot.pos);
        tracked.lateAt = undefined;
        if (head > tracked.head) tracked.head = head;
        this.log({
          level: 'info',
          event: 'snapshot_stored',
          space,
          pos: outcome.snapshot.pos,
          count: outcome.snapshot.count,
          from: outcome.from,
        });
        return;
      }
      default: {
        const never: never = outcome;
        throw new Error(`unknown outcome ${String(never)}`);
      }
    }
  }
}
