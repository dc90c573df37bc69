/**
 * The in-process event store: validation, append, read, subscribe, projections and time travel
 * over a StorageAdapter. The worker and connectStore expose this same object across threads.
 *
 * Invariants:
 * 1. Nothing is written unless the whole append validated (core/validate.ts) and planned
 *    (core/append-group.ts); append resolves after the storage transaction is durable. Appends
 *    that arrive while one is being written share the next transaction (local-appends.ts).
 * 2. What the application is handed (read, subscribe, conflicts, projections) is upcast; append
 *    returns the stored form.
 * 3. state() reflects every event read() would return when it is called, and is the fold of a
 *    log the store held: never a mix of the logs before and after an ingest that took a losing
 *    copy out, or a re-stamp (projection-runtime.ts invariant 10). Writes by another store open
 *    on the same database (onRemoteWrite) are not counted; one that took events out or moved
 *    them (a discard, a re-stamp) rebases what was folded from the cursor it names.
 * 4. After close(), every method rejects with StoreClosedError; in-flight calls finish first,
 *    synced batches being written included.
 * 5. readSince(p) returns every matching event with position > p up to the returned `position`:
 *    positions are dense and committed in order (storage invariants 2-3), so a page that ends
 *    short has reached the head, and nothing at or below `position` can appear later.
 * 6. The local cache never shows as an event (local-cache.ts states and keeps it).
 * 7, 8. An append holds no event larger than the smallest event limit of the store and of the
 *    peers it learnt of (append-limit.ts states and keeps them).
 */

import type { AnyAggregate } from '../core/aggregate.ts';
import {
  HistoryUnavailableError,
  NotFoundError,
  StoreClosedError,
  ValidationError,
} from '../core/errors.ts';
import type {
  JsonValue,
  LocalRecord,
  NewEvent,
  StoredEvent,
  StoredEventRecord,
} from '../core/events.ts';
import { withoutSignature } from '../core/integrity.ts';
import { assertJsonValue } from '../core/json.ts';
import type { Projection, ProjectionQueries } from '../core/projection.ts';
import { isStrictEvent, strictMatcher } from '../core/strict.ts';
import type { SyncApi, SyncStatus } from '../core/sync-types.ts';
import { lostTrimmedOf } from '../core/trimmed-copies.ts';
import { makeUpcast, type UpcastFn } from '../core/upcast.ts';
import { DEFAULT_EVENT_LIMITS, type EventLimits } from '../core/validate.ts';
import type { EventLog, IngestResult, RestampResult } from '../storage/adapter.ts';
import { AppendLimit } from './append-limit.ts';
import { ChangeFeed } from './change-feed.ts';
import { type CommandHost, executeCommand } from './commands.ts';
import { findConflicts } from './conflicts.ts';
import type { Encryption } from './encryption.ts';
import { noteForgone } from './forgone.ts';
import { type CursorReader, historyReader } from './history-reads.ts';
import type { SyncController } from './internal.ts';
import { type AppendedPart, LocalAppends } from './local-appends.ts';
import { localCache } from './local-cache.ts';
import { ProjectionRuntime } from './projection-runtime.ts';
import { compileQuery, matchesLive, readSinceWith, readWith, stateBound } from './read-query.ts';
import { Retainer } from './retention.ts';
import { eraseStreams, type ShredHost, shredStream } from './shred.ts';
import type { Signer } from './signing.ts';
import { StoragePressure } from './storage-pressure.ts';
import { StrictRejections } from './strict-rejections.ts';
import {
  discardRejected,
  rebaseProjections,
  rerunCommand,
  type StrictStoreParts,
  settleCopies,
  settleForks,
  strictStamp,
  validStrictStreams,
} from './strict-store.ts';
import { storeInternals } from './sync-internals.ts';
import {
  type ProjectionRef,
  projectionName,
  type QueryArgs,
  type QueryName,
  type QueryResult,
} from './typed.ts';
import type {
  AppendOptions,
  Conflict,
  EventStore,
  ExecuteOptions,
  LocalCache,
  ProjectionInfo,
  ReadQuery,
  ReceivedEvents,
  ReceiveQuery,
  StateAt,
  StorageNotice,
  StoreOptions,
  StreamAppend,
  SubscribeQuery,
} from './types.ts';
import { ProjectionWatchers } from './watchers.ts';
import { WriteGate } from './write-gate.ts';

/** The application's view of a stored event: its data is the store's event type E. */
function asPublic<E>(event: StoredEventRecord): StoredEvent<E> {
  return event as unknown as StoredEvent<E>;
}

function reportError(error: unknown): void {
  // Listener and background failures must not break the store; surface them like an unhandled error.
  queueMicrotask(() => {
    throw error;
  });
}

/** The store in this thread; createStore (create-store.ts) opens it. */
export class Store<E> implements EventStore<E> {
  readonly sync: SyncApi;
  readonly local: LocalCache;
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly runtimes = new Map<string, ProjectionRuntime>();
  private readonly aggregates = new Map<string, AnyAggregate<E>>();
  /** Ingests and re-stamps, counted for consistent catch-ups (invariant 3, write-gate.ts). */
  private readonly gate = new WriteGate();
  private readonly watchers = new Map<string, ProjectionWatchers>();
  private readonly feed: ChangeFeed;
  private readonly limits: EventLimits;
  private readonly appendLimit: AppendLimit;
  private readonly appends: LocalAppends;
  /** The last position, seq and replica of this store's own latest append (ownSeqAt). */
  private lastAppend: { pos: number; seq: number; replica: string } | undefined;
  private readonly upcast: UpcastFn;
  private readonly clock: () => number;
  private clockOffset = 0;
  private readonly controller: SyncController | undefined;
  private resolveClosing!: () => void;
  private resolveOpenHead!: (head: Promise<number>) => void;
  private readonly unsubscribeRemote: () => void;
  private readonly isStrict: (stream: string) => boolean;
  private readonly rejections: StrictRejections;
  /** Ids the log had before it moved to a fresh one (strict-store.ts invariant 3). */
  private readonly formerIds = new Set<string>();
  private readonly strictListeners = new Set<() => void>();

  private readonly log: EventLog;
  /** Partial replicas (docs/storage-growth.md): retention passes, and reads across the horizon. */
  private readonly retainer: Retainer;
  private readonly reader: CursorReader;
  /** Quota pressure: passes out of turn and retried writes (storage-pressure.ts). */
  private readonly pressure: StoragePressure;
  /** Set when the store has a key (StoreOptions.encryption). */
  private readonly encryption: Encryption | undefined;
  /** Signs own events, in the background after appends (store/signing.ts invariant 5). */
  private readonly signer: Signer | undefined;

  /** `log`: what the store reads (opened: store/sealed-log.ts); `raw`: what sync replicates. */
  constructor(
    log: EventLog,
    options: StoreOptions<E>,
    raw = log,
    encryption?: Encryption,
    signer?: Signer,
  ) {
    this.log = log;
    this.signer = signer;
    this.encryption = options.encryption === undefined ? undefined : encryption;
    if (this.encryption !== undefined) {
      this.encryption.onRefold = (from) => void this.refold(from).catch(reportError);
      this.encryption.onErase = (streams) => void this.erase(streams).catch(reportError);
    }
    this.limits = { ...DEFAULT_EVENT_LIMITS, ...options.limits };
    this.appendLimit = new AppendLimit(log, this.limits.maxEventBytes);
    const strictPatterns = validStrictStreams(options.strictStreams);
    this.isStrict = strictMatcher(strictPatterns);
    this.appends = new LocalAppends(
      log,
      () => this.now(),
      this.limits,
      this.appendLimit,
      this.isStrict,
      (rejected) => this.rejections.reject(rejected),
      options.encryption && encryption && ((stream, events) => encryption.seal(stream, events)),
    );
    this.rejections = new StrictRejections({
      log,
      formerIds: this.formerIds,
      now: () => this.now(),
      discard: (rejections) => {
        this.appends.strictHeads.forget();
        return discardRejected(this.strictParts(), rejections);
      },
      rerun: (rerun) =>
        this.guard(() => rerunCommand(this.strictParts(), rerun)) as Promise<
          StoredEvent<unknown>[]
        >,
      changed: () => {
        for (const listener of [...this.strictListeners]) listener();
      },
    });
    // Invariant 2: the app is handed no signatures (core/integrity.ts) either.
    const upcast = makeUpcast(options.upcasters ?? []);
    this.upcast = (event) => upcast(withoutSignature(event));
    this.clock = options.now ?? Date.now;
    // The head at open: read once, in start(), for the change feed and every runtime.
    const openHead = new Promise<number>((resolve) => {
      this.resolveOpenHead = resolve;
    });
    this.retainer = new Retainer(
      log,
      options.retain,
      () => this.now(),
      () => this.runtimes.values(),
    );
    this.pressure = new StoragePressure(
      () => this.guard(() => this.retainer.passAfterRunning()),
      this.retainer.retains,
      () => this.now(),
      reportError,
    );
    // The server link's history, else the sync controller's own (sync/history-client.ts): reads
    // past the horizon work before the controller hands over a link.
    this.reader = historyReader(log, () => this.retainer.history ?? this.controller?.history);
    for (const projection of options.projections ?? []) {
      if (this.runtimes.has(projection.name)) {
        throw new ValidationError('projections', `two projections are named "${projection.name}"`);
      }
      const runtime = new ProjectionRuntime(
        projection as Projection,
        log,
        this.upcast,
        openHead,
        this.gate,
        this.reader,
      );
      this.runtimes.set(projection.name, runtime);
      this.watchers.set(projection.name, new ProjectionWatchers(runtime, reportError));
    }
    for (const aggregate of options.aggregates ?? []) {
      if (aggregate?.kind !== 'aggregate') {
        throw new ValidationError('aggregates', 'must be made with defineAggregate');
      }
      if (this.aggregates.has(aggregate.name)) {
        throw new ValidationError('aggregates', `two aggregates are named "${aggregate.name}"`);
      }
      this.aggregates.set(aggregate.name, aggregate);
    }
    this.feed = new ChangeFeed(log, reportError);
    this.feed.onHead(() => {
      for (const w of this.watchers.values()) w.changed();
      // A command waiting for the accepted events may run now (strict-rejections.ts 3).
      this.rejections.runDue();
    });
    this.unsubscribeRemote = log.onRemoteWrite((_head, rewrittenFrom) => {
      this.appends.strictHeads.forget();
      // Another tab's sync may have brought a key (a rotation's KeyAdded) or a shred.
      if (this.encryption !== undefined) void this.encryption.refresh().catch(reportError);
      // Another tab took events out, or moved them (adapter.ts): what was folded here from
      // there on may no longer be the log.
      if (rewrittenFrom !== undefined && !this.closed) {
        this.signer?.forget();
        void this.guard(() => rebaseProjections(this.strictParts(), rewrittenFrom)).catch(
          reportError,
        );
      }
      void this.feed.notify();
    });
    const closing = new Promise<void>((resolve) => {
      this.resolveClosing = resolve;
    });
    const internals = storeInternals({
      log,
      raw,
      options,
      closing,
      strictDeclared: strictPatterns.length > 0,
      formerIds: this.formerIds,
      runtimes: () => this.runtimes.values(),
      feed: this.feed,
      now: () => this.now(),
      setClockOffset: (ms) => {
        this.clockOffset = ms;
      },
      restamp: (request) => this.restamp(request),
      ingest: (events, maxClockDriftMs) => this.ingest(events, maxClockDriftMs),
      appendLimit: this.appendLimit,
      rejections: this.rejections,
      strictListeners: this.strictListeners,
      lastAppend: () => this.lastAppend,
      guard: (operation) => this.guard(operation),
      retainer: this.retainer,
      serverChanged: () => this.serverChanged(),
      signer,
      encryption,
    });
    this.controller = options.syncFactory?.(internals);
    this.sync = this.controller ?? offlineSync();
    this.local = localCache(log, (operation) => this.guard(operation));
  }

  /**
   * The server link changed (checkpoint moved, history may answer): stale projections rebase
   * (projection-runtime.ts invariant 11) and a retention pass runs, both in the background.
   */
  private serverChanged(): void {
    if (this.closed) return;
    const stale = [...this.runtimes.values()].filter((r) => r.stale);
    if (stale.length > 0) {
      void Promise.all(stale.map((r) => r.retry()))
        .then(() => this.feed.notify())
        .catch(() => {});
    }
    // Without a policy a pass trims nothing: no read of the log on every server ack. A pass
    // that needs history the server cannot give now trims nothing, and the next change runs
    // another (retention.ts invariant 4): not an error to throw, which ends a Node process.
    if (this.retainer.retains) {
      void this.guard(() => this.retainer.pass()).catch((error: unknown) => {
        if (!(error instanceof HistoryUnavailableError)) reportError(error);
      });
    }
  }

  /** This replica's id for its appends; a fresh one after a restore is detected (adapter.ts). */
  get replicaId(): string {
    return this.log.replicaId;
  }

  /** Erases shredded streams here (shred.ts invariant 2). */
  erase(streams: readonly string[]): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.guard(() => eraseStreams(this.shredHost(), streams));
  }

  shred(stream: string): Promise<void> {
    return this.guard(async () => {
      if (this.encryption === undefined) {
        throw new ValidationError(
          'stream',
          'store.shred needs StoreOptions.encryption: only a sealed stream has a key to erase',
        );
      }
      await shredStream(this.shredHost(), stream);
    });
  }

  private shredHost(): ShredHost {
    const encryption = this.encryption;
    if (encryption === undefined) throw new Error('a store without a key erases nothing');
    return {
      encryption,
      log: this.log,
      projections: [...this.runtimes.keys()],
      ingest: (events) => this.ingest(events, Number.POSITIVE_INFINITY),
      refoldAll: () => rebaseProjections(this.strictParts(), ''),
      wrote: () => this.feed.notify(),
      now: () => this.now(),
    };
  }

  /** Folds every projection again from `from` (events there may read differently now). */
  refold(from: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.guard(() => rebaseProjections(this.strictParts(), from));
  }

  async start(): Promise<void> {
    const head = this.log.headPos();
    this.resolveOpenHead(head);
    await this.rejections.load();
    this.feed.start(await head);
    // Runs that waited when the store last closed (strict-rejections.ts 3).
    this.rejections.runDue();
    // Own events a closed or crashed session appended and never sent.
    this.signer?.signSoon();
  }

  private now(): number {
    return this.clock() + this.clockOffset;
  }

  /** Runs an operation unless closed, and lets close() wait for it (invariant 4). */
  private guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const run = operation();
    this.inFlight.add(run);
    const done = () => this.inFlight.delete(run);
    run.then(done, done);
    return run;
  }

  /** A projection object is looked up by its name (typed.ts invariant 1). */
  private runtime(projection: ProjectionRef<E>): ProjectionRuntime {
    const name = projectionName(projection);
    const runtime = this.runtimes.get(name);
    if (runtime === undefined) {
      throw new NotFoundError(`no projection is named "${name}"`, { projection: name });
    }
    return runtime;
  }

  append(
    stream: string,
    events: NewEvent<E> | readonly NewEvent<E>[],
    options: AppendOptions = {},
  ): Promise<StoredEvent<E>[]> {
    return this.guard(async () => {
      const ended = this.signer?.appending();
      try {
        const part = await this.pressure.write(() =>
          this.appends.append(stream, events, options?.expectedVersion),
        );
        if (part.lastPos !== undefined) await this.appended([part]);
        return part.events.map((e) => asPublic<E>(e));
      } finally {
        ended?.();
      }
    });
  }

  appendMany(appends: readonly StreamAppend<E>[]): Promise<StoredEvent<E>[][]> {
    return this.guard(async () => {
      const ended = this.signer?.appending();
      try {
        const parts = await this.pressure.write(() => this.appends.appendMany(appends));
        await this.appended(parts);
        return parts.map((p) => p.events.map((e) => asPublic<E>(e)));
      } finally {
        ended?.();
      }
    });
  }

  /** Notes the own append that reached the highest position (ownSeqAt), then tells the feed. */
  private async appended(parts: readonly AppendedPart[]): Promise<void> {
    let top: { pos: number; seq: number } | undefined;
    for (const p of parts) {
      const last = p.events[p.events.length - 1];
      if (p.lastPos === undefined || last === undefined) continue;
      if (top === undefined || p.lastPos > top.pos) top = { pos: p.lastPos, seq: last.seq };
    }
    if (top === undefined) return;
    this.pressure.wrote();
    if (this.lastAppend === undefined || top.pos > this.lastAppend.pos) {
      this.lastAppend = { ...top, replica: this.log.replicaId };
    }
    await this.feed.notify(top.pos);
  }

  /**
   * Through guard (invariant 4): close() waits for a synced batch already being written, and for
   * its change notification, before it closes the log; else the feed meets a closed handle.
   */
  private ingest(events: StoredEventRecord[], maxClockDriftMs: number): Promise<IngestResult> {
    return this.guard(async () => {
      const me = this.log.replicaId;
      const result = await this.ingestOnce(events, maxClockDriftMs);
      // An accepted strict event that lost to an own one under its id or at its (replica, seq):
      // the own one is rejected already and leaves; the accepted one comes in (core/strict.ts
      // 9), though the ingest moved the log to a fresh id (strict-store.ts invariant 3).
      const again = await settleCopies(this.strictParts(), result.lost, me, (r) =>
        this.rejections.reject(r),
      );
      const more = again.length === 0 ? undefined : await this.ingestOnce(again, maxClockDriftMs);
      const all: IngestResult =
        more === undefined
          ? result
          : {
              written: [...result.written, ...more.written],
              removed: [...result.removed, ...more.removed],
              skewed: result.skewed || more.skewed,
              lost: [...result.lost.filter((l) => !again.includes(l.event)), ...more.lost],
              ...lostTrimmedOf(result, more),
            };
      // Own strict events that lost their copy's contest left the log: rejected, and their
      // commands run again (strict-rejections.ts invariant 6).
      await this.rejections.lostCopies(
        all.lost.filter(
          (l) =>
            l.held &&
            isStrictEvent(l.event) &&
            (l.event.replica === me || this.formerIds.has(l.event.replica)),
        ),
      );
      return all;
    });
  }

  /** One ingest through the write gate, with what follows it (forgone seqs, forks, notices). */
  private async ingestOnce(
    events: StoredEventRecord[],
    maxClockDriftMs: number,
  ): Promise<IngestResult> {
    const me = this.log.replicaId;
    // An ingest may take a losing copy out: a catch-up it overlaps is done again (invariant 3).
    const result = await this.gate.write(() =>
      this.log.ingest({ events, now: this.now(), maxClockDriftMs }),
    );
    // A move to a fresh id (core/append.ts invariant 8): events under the old one stay own.
    if (this.log.replicaId !== me) this.formerIds.add(me);
    // Strict streams' heads may have moved (strict-appends.ts invariant 4).
    if (result.written.length > 0 || result.removed.length > 0) this.appends.strictHeads.forget();
    const forgone = await noteForgone(this.log, me, result);
    // Another replica's accepted strict event beside an own one at its version: the own one
    // is rejected already (core/strict.ts invariant 6); it leaves now, not when the server says.
    await settleForks(this.strictParts(), result.written, (r) => this.rejections.reject(r));
    if (result.written.length > 0) await this.feed.notify();
    // A pump set off by an earlier notice may have taken the new head before the forgone seqs
    // were recorded: the sync controller re-reads its own seq now (forgone.ts invariant 1).
    if (forgone) this.feed.announceHead();
    return result;
  }

  /** Re-stamps (adapter.ts restamp), then rebases what the moved events were folded in. */
  private restamp(request: {
    sharedSeq: number;
    shift?: number;
    maxClockAheadMs: number;
  }): Promise<RestampResult> {
    return this.guard(async () => {
      // Noted before the write counts as finished, so that an overlapped catch-up rebases.
      const result = await this.gate.write(async () => {
        const moved = await this.log.restamp({ ...request, now: this.now() });
        this.appends.strictHeads.forget();
        // Re-stamped events lost their signatures (core/restamp.ts invariant 7).
        if (moved.from !== undefined) {
          this.signer?.forget();
          this.signer?.signSoon();
        }
        const from = moved.from;
        if (from !== undefined) for (const r of this.runtimes.values()) r.noteRestamp(from);
        return moved;
      });
      if (result.from === undefined) return result;
      const from = result.from;
      await Promise.all([...this.runtimes.values()].map((r) => r.restamped(from)));
      for (const w of this.watchers.values()) w.changed();
      return result;
    });
  }

  /** The parts strict streams use (strict-store.ts). */
  private strictParts(): StrictStoreParts<E> {
    return {
      log: this.log,
      gate: this.gate,
      runtimes: this.runtimes,
      watchers: this.watchers,
      feed: this.feed,
      aggregates: this.aggregates,
      commandHost: () => this.commandHost(),
      formerIds: this.formerIds,
    };
  }

  private present(records: LocalRecord[]): StoredEvent<E>[] {
    return records.map((r) => this.upcast(asPublic<E>(r.event)));
  }

  execute(
    aggregate: string | AnyAggregate<E>,
    stream: string,
    command: string,
    input?: unknown,
    options?: ExecuteOptions,
  ): Promise<StoredEvent<E>[]> {
    return this.guard(async () => {
      const name = typeof aggregate === 'string' ? aggregate : aggregate?.name;
      const known = this.aggregates.get(name);
      if (known === undefined) {
        throw new NotFoundError(`no aggregate is named "${String(name)}"`, { aggregate: name });
      }
      if (typeof stream !== 'string' || !this.isStrict(stream)) {
        return executeCommand<E>(this.commandHost(), known, stream, command, input, options);
      }
      // A rebase runs the command again from its events' meta (strict-rejections.ts 3).
      assertJsonValue(input, 'input');
      return executeCommand<E>(this.commandHost(), known, stream, command, input, options, {
        stamp: strictStamp(known.name, input as JsonValue, 0),
      });
    });
  }

  /** What a command reads and writes (store/commands.ts), through this store's own methods. */
  private commandHost(): CommandHost<E> {
    return {
      streamVersion: (stream) => this.log.streamVersion(stream),
      readStream: (stream) => this.read({ stream }),
      getByIds: async (ids) =>
        (await this.log.getByIds(ids)).map((r) =>
          r === undefined ? undefined : this.upcast(asPublic<E>(r.event)),
        ),
      append: (stream, events, expectedVersion) => this.append(stream, events, { expectedVersion }),
      now: () => this.now(),
    };
  }

  read(query?: ReadQuery<E>): Promise<StoredEvent<E>[]> {
    return this.guard(async () => this.present(await readWith(this.reader, compileQuery(query))));
  }

  readSince(position: number, query?: ReceiveQuery<E>): Promise<ReceivedEvents<E>> {
    return this.guard(async () => {
      const read = await readSinceWith(this.log, position, query);
      return { events: this.present(read.records), position: read.position, head: read.head };
    });
  }

  subscribe(listener: (events: StoredEvent<E>[]) => void, query?: SubscribeQuery<E>): () => void {
    if (this.closed) throw new StoreClosedError();
    if (typeof listener !== 'function') throw new ValidationError('listener', 'must be a function');
    if (query !== undefined) compileQuery(query);
    return this.feed.listen((records) => {
      const matching = records.filter((r) => matchesLive(r, query));
      if (matching.length > 0) listener(this.present(matching));
    });
  }

  state<S, Q extends ProjectionQueries<S> = ProjectionQueries<S>>(
    projection: Projection<S, E, Q>,
    options?: { at?: StateAt },
  ): Promise<S>;
  state<S = unknown>(projection: string, options?: { at?: StateAt }): Promise<S>;
  state(projection: ProjectionRef<E>, options: { at?: StateAt } = {}): Promise<unknown> {
    return this.guard(async () => {
      const runtime = this.runtime(projection);
      if (options.at === undefined) return runtime.current();
      return runtime.at(await stateBound(this.log, options.at, this.reader));
    });
  }

  query<S, Q extends ProjectionQueries<S>, N extends QueryName<Q>>(
    projection: Projection<S, E, Q>,
    name: N,
    ...args: QueryArgs<Q, N>
  ): Promise<QueryResult<Q, N>>;
  query(projection: string, name: string, ...args: unknown[]): Promise<unknown>;
  query(projection: ProjectionRef<E>, name: string, ...args: unknown[]): Promise<unknown> {
    return this.guard(async () => {
      const runtime = this.runtime(projection);
      const fn = runtime.projection.queries[name];
      if (fn === undefined) {
        const projectionKey = projectionName(projection);
        throw new NotFoundError(`projection "${projectionKey}" has no query "${name}"`, {
          projection: projectionKey,
          query: name,
        });
      }
      return fn(await runtime.current(), ...(args as never[]));
    });
  }

  watch<S, Q extends ProjectionQueries<S> = ProjectionQueries<S>>(
    projection: Projection<S, E, Q>,
    listener: (state: S) => void,
  ): () => void;
  watch<S = unknown>(projection: string, listener: (state: S) => void): () => void;
  watch(projection: ProjectionRef<E>, listener: (state: unknown) => void): () => void {
    if (this.closed) throw new StoreClosedError();
    this.runtime(projection);
    if (typeof listener !== 'function') throw new ValidationError('listener', 'must be a function');
    return this.watchers.get(projectionName(projection))!.add(listener);
  }

  rebuild(
    projection: ProjectionRef<E>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<void> {
    // async: an unknown projection rejects, like state() and query(), rather than throwing.
    return this.guard(async () => this.runtime(projection).rebuild(onProgress));
  }

  inspect(projection: ProjectionRef<E>): Promise<ProjectionInfo> {
    return this.guard(async () => {
      const { name, version, snapshotEvery } = this.runtime(projection).projection;
      const snapshots = await this.log.listSnapshots(name, version);
      return {
        name,
        version,
        snapshotEvery,
        snapshots: snapshots.map((s) => ({ cursor: s.cursor, position: s.pos, events: s.count })),
      };
    });
  }

  conflicts(query: { stream?: string } = {}): Promise<Conflict<E>[]> {
    // Through the history reader: a partial replica's trimmed events of a conflict are on the
    // server (history-reads.ts), while the log still flags the stream (its `streams` rows).
    const log = { conflictStreams: () => this.log.conflictStreams(), ...this.reader };
    return this.guard(async () =>
      (await findConflicts(log, query.stream)).map((c) => ({
        stream: c.stream,
        version: c.version,
        events: this.present(c.records),
      })),
    );
  }

  on(event: 'storage', listener: (notice: StorageNotice) => void): () => void {
    if (this.closed) throw new StoreClosedError();
    if (event !== 'storage') throw new ValidationError('event', 'must be "storage"');
    if (typeof listener !== 'function') throw new ValidationError('listener', 'must be a function');
    return this.pressure.on(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.resolveClosing();
    this.retainer.close();
    await this.controller?.close();
    await Promise.allSettled([...this.inFlight]);
    await this.feed.settled();
    await this.rejections.settled();
    await this.signer?.close();
    this.unsubscribeRemote();
    await this.log.close();
  }
}

function offlineSync(): SyncApi {
  const status: SyncStatus = { state: 'offline', pending: 0 };
  return {
    connect() {
      throw new ValidationError('sync', 'this store was opened without a sync module');
    },
    status: () => ({ ...status }),
    on: () => () => {},
  };
}
