/**
 * The public shape of an event store: the same interface in-process (openStore) and on the main
 * thread through a worker (connectStore).
 */
import type {
  Aggregate,
  AnyAggregate,
  CommandHandlers,
  CommandInput,
  CommandName,
} from '../core/aggregate.ts';
import type {
  EventType,
  ExpectedVersion,
  JsonValue,
  NewEvent,
  StoredEvent,
} from '../core/events.ts';
import type { Projection, ProjectionQueries } from '../core/projection.ts';
import type { RetainPolicy } from '../core/retention.ts';
import type { SyncApi } from '../core/sync-types.ts';
import type { Upcaster } from '../core/upcast.ts';
import type { EventLimits } from '../core/validate.ts';
import type { Durability, StorageAdapter } from '../storage/adapter.ts';
import type { EncryptionOptions } from './encryption-types.ts';
import type { SyncFactory } from './internal.ts';
import type { JoinMode } from './join.ts';
import type { ProjectionRef, QueryArgs, QueryName, QueryResult } from './typed.ts';

/**
 * E is the store's event map, event type → data (core/event-map.ts); left out, events are loose.
 */
export interface StoreOptions<E = unknown> {
  /** The database name; also the default IndexedDB database name. */
  name: string;
  /** Default: indexedDbStorage(name). Pass memoryStorage() for a non-persistent store. */
  storage?: StorageAdapter;
  projections?: readonly Projection<unknown, E>[];
  /** The aggregates whose commands store.execute runs (defineAggregate). */
  aggregates?: readonly AnyAggregate<E>[];
  /**
   * Streams whose order the sync server decides (core/strict.ts): names, or prefixes ending in
   * `*` ('account-*'). An append to one is tentative until the server accepts it; one that
   * another replica's append beat is taken out again, and a command (store.execute) is run again
   * on the accepted events. Other streams merge and report conflicts. Every replica of a space
   * should declare the same ones.
   */
  strictStreams?: readonly string[];
  /**
   * End-to-end encryption (store/encryption.ts): each event's data and meta are sealed with
   * AES-256-GCM before they are stored, so no server (and no disk) holds them in clear; ids,
   * streams, types, versions and times stay in clear. Every replica of the space needs the key.
   */
  encryption?: EncryptionOptions;
  /**
   * Tamper evidence (core/integrity.ts), on by default: this replica signs its events (Ed25519)
   * and chains them before they leave it, and sync refuses (code TAMPERED) any event whose
   * signature or chain does not hold, and any unsigned event. `false`: this replica signs
   * nothing and takes unsigned events; it still refuses a signed event that does not verify.
   */
  signing?: boolean;
  /** Their `type` is one of E's event types. */
  upcasters?: readonly Upcaster<EventType<E>>[];
  /** Wall clock in ms, for tests. Default Date.now. */
  now?: () => number;
  /**
   * The clock tolerance (ms, default 5 minutes): sync refuses an event stamped further ahead of
   * this replica's (server-corrected) clock, and this replica's own unshared events stamped
   * further ahead are re-stamped once its clock is known to be right (core/clock-skew.ts).
   */
  maxClockAhead?: number;
  /**
   * The most a remote HLC moves this replica's clock ahead of its wall clock (ms, default 24 h).
   * Sync refuses what a peer stamped beyond maxClockAhead before it gets here, so only what a
   * server sends (taken as it is: the server checked it against its own clock) can reach it.
   */
  maxClockDrift?: number;
  /** 'strict' (default): an append resolves once flushed to disk. */
  durability?: Durability;
  limits?: Partial<EventLimits>;
  /**
   * A partial replica (docs/storage-growth.md): keep at least `events` of the newest events, and
   * every event of the last `days` days, in full; older ones the sync server has acknowledged
   * may lose their bodies here, after a snapshot of every projection covers them. Reads and time
   * travel reaching below fetch history from the server. `bytes` keeps the newest events whose
   * JSON sizes add up to that many bytes (an estimate of their payload, not of disk use). When a
   * write fails for the quota, or estimate() reports over 90% used, a pass runs at once and the
   * write is retried (EventStore.on('storage')). Default: keep everything.
   */
  retain?: RetainPolicy;
  /**
   * How a fresh store (an empty log) starts when it first syncs with a server. 'replay'
   * (default) receives the whole log. 'snapshot' asks the server for a snapshot of this store's
   * projections at their versions (the server runs them: createSyncServer's snapshots) and
   * receives only the events after it: the store is then a partial replica whose horizon is
   * the snapshot's cursor, and reads below it fetch history from the server (as with `retain`).
   * The snapshot is trusted: it folds events this device never receives, so their signatures
   * are not checked here; every event received after it is. A server without a matching
   * snapshot, an older server, a store with `encryption` (a server cannot fold sealed data) and
   * a store that wrote before the answer came all replay instead.
   */
  join?: JoinMode;
  /** @internal wired by openStore in src/index.ts */
  syncFactory?: SyncFactory;
}

/**
 * What store.on('storage', …) tells the app (store/storage-pressure.ts): a retention pass ran out
 * of turn because the browser refused a write for its quota (`'quota'`) or reported the origin's
 * storage above 90% of its quota (`'estimate'`).
 */
export interface StorageNotice {
  reason: 'quota' | 'estimate';
  /** Events whose bodies the pass dropped (0: nothing the policy and the server allow). */
  trimmed: number;
  /** 'quota': the refused write was tried again (only when something was freed). */
  retried: boolean;
  /**
   * 'quota': the write succeeded on its retry; when false, its caller got QUOTA_EXCEEDED and
   * nothing of it was stored. 'estimate': the pass ran without failing.
   */
  ok: boolean;
  /** 'estimate': navigator.storage.estimate()'s figures (bytes) that set it off. */
  usage?: number;
  quota?: number;
}

/** A projection as the store keeps it (store.inspect). */
export interface ProjectionInfo {
  name: string;
  version: number;
  /** Snapshots taken every this many events (0: none). */
  snapshotEvery: number;
  /** Its snapshots kept, oldest first: each folds `events` events, up to `position`. */
  snapshots: { cursor: string; position: number; events: number }[];
}

/** How store.execute runs a command (store/commands.ts). */
export interface ExecuteOptions {
  /**
   * The command's id. Given, the command's events get the ids `<commandId>:<i>`, and running the
   * command again with the same id resolves with the events stored the first time, appending
   * nothing (a retry after a lost answer). Default: a fresh random id.
   */
  commandId?: string;
  /** The user action this command belongs to (default: the command's own id). */
  correlationId?: string;
  /** The command or event that caused this one (default: the command's own id). */
  causationId?: string;
  /** Decisions tried against concurrent writers of the stream before ConcurrencyError (default 5). */
  maxAttempts?: number;
}

export interface AppendOptions {
  /** A number (the stream's current version), 'none' (the stream must be empty) or 'any'. */
  expectedVersion?: ExpectedVersion;
}

/** One stream's part of an appendMany: the arguments of an append, as an object. */
export interface StreamAppend<E = unknown> {
  stream: string;
  events: NewEvent<E> | readonly NewEvent<E>[];
  /** Checked for this stream, as append's option is (default 'any'). */
  expectedVersion?: ExpectedVersion;
}

export interface ReadQuery<E = unknown> {
  stream?: string;
  /** Only events of these types (with an event map, its types). */
  types?: readonly EventType<E>[];
  /** Only events after this cursor (from a StoredEvent); in reverse, before it. */
  after?: string;
  limit?: number;
  reverse?: boolean;
  /** Only events whose HLC wall time is >= from. */
  from?: Date | number;
  /** Only events whose HLC wall time is <= to. */
  to?: Date | number;
  /** Only events of this correlation (meta.$correlationId: a command's events carry it). */
  correlationId?: string;
  /** Only events this command or event caused (meta.$causationId). */
  causationId?: string;
}

/** For subscribe: the filters of a ReadQuery that make sense for live events. */
export type SubscribeQuery<E = unknown> = Pick<ReadQuery<E>, 'stream' | 'types' | 'from' | 'to'>;

export type StateAt = Date | number | { eventId: string };

export interface Conflict<E = unknown> {
  stream: string;
  version: number;
  events: StoredEvent<E>[];
}

/** For readSince: filters on events in receive order. */
export interface ReceiveQuery<E = unknown> {
  stream?: string;
  types?: readonly EventType<E>[];
  /** At most this many matching events; `position` then says where to continue. */
  limit?: number;
}

/** What readSince returns. */
export interface ReceivedEvents<E = unknown> {
  /** Matching events with a local position above the one asked for, in receive order. */
  events: StoredEvent<E>[];
  /**
   * Where to continue: every event at or below this position was examined (matching or not).
   * Pass it to the next readSince to get only what arrived since.
   */
  position: number;
  /** The log's last local position when the read began (0 when empty). */
  head: number;
}

/**
 * A small key-value cache local to this database: never synced, never in read() or subscribe(),
 * kept until the database is deleted. For derived data that can always be rebuilt from the log
 * (bindYDoc keeps a document's merged state there); nothing may depend on it for correctness.
 */
export interface LocalCache {
  /** The stored value, or undefined when none (or after set(key, null)). */
  get(key: string): Promise<JsonValue | undefined>;
  /**
   * Stores a JSON value (null clears the key). Keys: 1 to 200 characters. A value's JSON text
   * is at most LOCAL_VALUE_MAX_BYTES (16 MiB, local-cache.ts); binary data goes in as base64 text.
   */
  set(key: string, value: JsonValue): Promise<void>;
}

/**
 * E is the event map, event type → data (core/event-map.ts): append checks `type` and `data`
 * together, and every event handed out is a union discriminated by `type`. Without it, events
 * are loose (any type, unknown data). A projection object given to state, watch or query types
 * the state and the query (store/typed.ts); its name works too, untyped.
 *
 * @example
 * type TodoEvents = { TodoAdded: { title: string }; TodoDone: { done: boolean } };
 * const store = await openStore<TodoEvents>({ name: 'todos', projections: [open] });
 * await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Buy milk' } });
 * const n: number = await store.state(open);
 */
export interface EventStore<E = unknown> {
  readonly replicaId: string;
  append(
    stream: string,
    events: NewEvent<E> | readonly NewEvent<E>[],
    options?: AppendOptions,
  ): Promise<StoredEvent<E>[]>;
  /**
   * Appends to several streams atomically: every part is written, or none (a ConcurrencyError
   * or IdempotencyError of any part rejects the whole call). Each part is checked as an append
   * is; a stream named twice takes consecutive versions, the second part's expectedVersion
   * counting the first's events. Resolves with each part's stored events, in order.
   *
   * @example
   * await store.appendMany([
   *   { stream: 'account-1', events: { type: 'Debited', data: { cents: 500 } }, expectedVersion: 3 },
   *   { stream: 'account-2', events: { type: 'Credited', data: { cents: 500 } } },
   * ]);
   */
  appendMany(appends: readonly StreamAppend<E>[]): Promise<StoredEvent<E>[][]>;
  read(query?: ReadQuery<E>): Promise<StoredEvent<E>[]>;
  /**
   * Events with a local position above `position`, in the order this replica received them
   * (its own appends and synced events alike). Positions are dense per database and only grow,
   * so `readSince(p)` finds everything that arrived after `p` wherever it sorts in the total
   * order; it costs O(events since p), filters included. `readSince(0, { limit: 0 })` tells the
   * head position.
   */
  readSince(position: number, query?: ReceiveQuery<E>): Promise<ReceivedEvents<E>>;
  /** A local key-value cache that never syncs (see LocalCache). */
  readonly local: LocalCache;
  /** Live events (local, other tabs, synced), in the order this replica received them. */
  subscribe(listener: (events: StoredEvent<E>[]) => void, query?: SubscribeQuery<E>): () => void;
  /** A projection's state; `at` folds only the events up to that time or event (time travel). */
  state<S, Q extends ProjectionQueries<S> = ProjectionQueries<S>>(
    projection: Projection<S, E, Q>,
    options?: { at?: StateAt },
  ): Promise<S>;
  state<S = unknown>(projection: string, options?: { at?: StateAt }): Promise<S>;
  conflicts(query?: { stream?: string }): Promise<Conflict<E>[]>;
  /** Runs a projection's named query on its current state. */
  query<S, Q extends ProjectionQueries<S>, N extends QueryName<Q>>(
    projection: Projection<S, E, Q>,
    name: N,
    ...args: QueryArgs<Q, N>
  ): Promise<QueryResult<Q, N>>;
  query(projection: string, name: string, ...args: unknown[]): Promise<unknown>;
  /** Calls `listener` with the current state, then once per committed change (coalesced). */
  watch<S, Q extends ProjectionQueries<S> = ProjectionQueries<S>>(
    projection: Projection<S, E, Q>,
    listener: (state: S) => void,
  ): () => void;
  watch<S = unknown>(projection: string, listener: (state: S) => void): () => void;
  rebuild(
    projection: ProjectionRef<E>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<void>;
  /** What a projection keeps: its version and its snapshots (devtools). */
  inspect(projection: ProjectionRef<E>): Promise<ProjectionInfo>;
  /**
   * Erases a stream (crypto-shredding, store/shred.ts): its data key is destroyed on this replica
   * now and on every other replica and the server once this syncs. Its events keep their
   * envelopes (order, versions, sync are unchanged) and read as shredded: data null, meta
   * { $shredded: true }; projections fold again without them. Needs StoreOptions.encryption
   * (VALIDATION otherwise); nothing more can be appended to the stream.
   */
  shred(stream: string): Promise<void>;
  /**
   * Runs an aggregate's command on its stream: folds the stream into the aggregate's state, asks
   * the command's handler, and appends what it decided with the version it read as
   * expectedVersion, deciding again on the new state when another writer got there first
   * (`maxAttempts`). Resolves with the appended events (none when the handler decided none);
   * rejects with CommandRejectedError (code COMMAND_REJECTED, the handler's `reason`) when the
   * handler refused. The events carry the command's name and id, and its correlation and
   * causation ids, in their meta (`$command`, `$commandId`, `$correlationId`, `$causationId`).
   *
   * @example
   * await store.execute(account, 'account-1', 'withdraw', { cents: 500 });
   */
  execute<S, H extends CommandHandlers<S, E>, N extends CommandName<H>>(
    aggregate: Aggregate<S, E, H>,
    stream: string,
    command: N,
    input: CommandInput<H, N>,
    options?: ExecuteOptions,
  ): Promise<StoredEvent<E>[]>;
  execute(
    aggregate: string,
    stream: string,
    command: string,
    input?: unknown,
    options?: ExecuteOptions,
  ): Promise<StoredEvent<E>[]>;
  readonly sync: SyncApi;
  /**
   * Storage pressure on a store with `retain` (StorageNotice): the store trimmed what its policy
   * and the server allow, and retried the refused write. Returns unsubscribe.
   */
  on(event: 'storage', listener: (notice: StorageNotice) => void): () => void;
  close(): Promise<void>;
}
