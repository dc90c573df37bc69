/**
 * The storage interface: a replica's durable log, its counters, projection snapshots and sync
 * metadata. Every adapter (memory, IndexedDB) passes test/storage/conformance.ts.
 *
 * Invariants (each adapter keeps them; the pure decisions come from core/append.ts):
 * 1. appendLocal, each unit of appendGroup, ingest and restamp are atomic: all of a call is durable when the promise resolves, or
 *    nothing of it is stored.
 * 2. seq, stream versions, positions and the clock are read and written inside the same write
 *    transaction as the events: two handles on one database never hand out the same seq, version
 *    or position (two tabs are one replica).
 * 3. Positions are 1-based and grow in receive order; readByPos pages through receive order. They
 *    are dense but for the holes an ingest leaves where a held copy lost (core/copies.ts
 *    invariant 3): a page skips holes and holds `limit` records whenever that many follow, so a
 *    short page still means the head was reached.
 * 4. readByCursor pages through the total order, optionally restricted to one stream.
 * 5. No read holds more than `limit` events in memory.
 * 6. Trimming (docs/storage-growth.md) takes the bodies of events at or below a horizon cursor H
 *    out of the log and keeps what the log's rules need: their ids, cursors and (replica, seq)
 *    slots (an ingest skips an event held there, trimmed or not, but for a copy that wins over
 *    a trimmed one by the copies' rule and takes its place: core/trimmed-copies.ts; an append
 *    naming a trimmed custom id is an IdempotencyError 'trimmed'), each stream's version and
 *    conflict flag. Reads
 *    (readByCursor, readByPos, getByIds, eventsAtSlots) never return a trimmed event: `horizon()`
 *    tells a reader that the log holds no body at or below it but late events stored after the
 *    trim. Positions, seqs and counters do not move. The horizon only moves forward.
 * 7. installBase (core/space-join.ts) lays a server snapshot under an empty log, in one
 *    transaction: the horizon becomes the base's cursor, the version vector holds the base's
 *    (replica, seq) slots (an ingest skips an event it covers, as it skips a trimmed one), each
 *    stream's version and conflict flag come from the base, the clock rises to the cursor's
 *    HLC, and the base's snapshots and meta are written. A log that holds an event or a horizon
 *    is left as it is (false). Positions stay: the first event received after it is at 1.
 */
import type { AppendUnitOutcome, StreamAppendOutcome } from '../core/append-group.ts';
import type { LostCopy } from '../core/copies.ts';
import type { ExpectedVersion, JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { HlcState } from '../core/hlc.ts';
import type { EventId, ReplicaId } from '../core/ids.ts';
import type { StoredIdentity, StoredSigningKey } from '../core/replica-identity.ts';
import type { TrimmedCopyLoss } from '../core/trimmed-copies.ts';
import type { ValidNewEvent } from '../core/validate.ts';

/**
 * 'strict' flushes each write to disk before it resolves; 'relaxed' lets the browser delay the
 * flush (a crash of the machine may lose the last writes, never corrupt the log); 'default'
 * leaves it to the browser (Chromium and Firefox flush lazily, like 'relaxed', for most writes).
 * The SQLite replica (sqlite.ts) runs 'strict' as synchronous=FULL, the others as NORMAL.
 */
export type Durability = 'strict' | 'relaxed' | 'default';

export interface OpenOptions {
  /** 'strict' (default) resolves writes only once they are flushed to disk. */
  durability?: Durability;
  /** Called when the database is closed from outside (another tab upgraded or deleted it). */
  onExternalClose?: (reason: 'versionchange' | 'deleted' | 'unexpected') => void;
}

/** See EventLog.onRemoteWrite. */
export type RemoteWriteListener = (headPos: number, rewrittenFrom?: string) => void;

export interface StorageAdapter {
  /** For diagnostics: 'memory', 'indexeddb:<name>'. */
  readonly name: string;
  /** Opens a handle. Several handles on one adapter share one database, like tabs. */
  open(options?: OpenOptions): Promise<EventLog>;
}

/** One stream's part of a local append. */
export interface StreamAppendRequest {
  stream: string;
  /**
   * An event without an id gets the canonical id of its (replica, seq) in the write transaction
   * (EventId.canonical): it cannot be stored already, so an adapter skips looking it up.
   */
  events: (ValidNewEvent & { id?: EventId })[];
  expectedVersion: ExpectedVersion;
}

export interface LocalAppendRequest extends StreamAppendRequest {
  /** Wall clock (ms) read before the transaction began. */
  now: number;
}

export type LocalAppendResult = StreamAppendOutcome;

/** Several local appends in one write transaction (core/append-group.ts). */
export interface AppendGroupRequest {
  /** Each unit is atomic: one or more streams' appends, written all or nothing. */
  units: readonly (readonly StreamAppendRequest[])[];
  /** Wall clock (ms) read before the transaction began. */
  now: number;
}

/** An own event to take out (EventLog.discard). */
export interface DiscardedEvent {
  id: string;
  seq: number;
  /** The replica id it was written under; the log's id now when absent. */
  replica?: string;
}

export interface IngestRequest {
  /**
   * Validated remote events, in receive order. The adapter takes them over: it may keep (and
   * freeze) these objects instead of copying them, so the caller must not change them after.
   */
  events: StoredEventRecord[];
  now: number;
  maxClockDriftMs: number;
}

export interface IngestResult {
  /** The events that were new here, with their local positions. */
  written: LocalRecord[];
  /** Held records that lost to a copy of this batch and left the log (core/copies.ts). */
  removed: LocalRecord[];
  skewed: boolean;
  /** Every copy that lost, held or received (core/copies.ts invariant 4). */
  lost: LostCopy[];
  /** Trimmed events that lost to a copy received (core/trimmed-copies.ts invariant 2). */
  lostTrimmed?: TrimmedCopyLoss[];
}

/** A re-stamp of this replica's own unshared events (core/restamp.ts). */
export interface RestampRequest {
  /** Own events up to this seq were handed to a peer: never moved. */
  sharedSeq: number;
  /** The corrected wall clock (ms). */
  now: number;
  maxClockAheadMs: number;
  /** The correction a server reported (ms), if one did. */
  shift?: number;
}

export interface RestampResult {
  /** The moved records with their new hlc, time and cursor (same positions), in position order. */
  changed: LocalRecord[];
  /** The smallest new cursor: the total order is unchanged below it. */
  from?: string;
}

export interface CursorQuery {
  /** Exclusive lower bound (in reverse: exclusive upper bound). */
  after?: string;
  /** Inclusive upper bound (in reverse: inclusive lower bound). */
  until?: string;
  stream?: string;
  reverse?: boolean;
  limit: number;
  /**
   * The caller strips the integrity meta (`$sig`, `$link`, `$key`: core/integrity.ts
   * withoutSignature) before it reads anything of an event's meta, as a projection fold does. A
   * log may then give `meta.$sig` and `meta.$link` as any value: IndexedDB leaves the 0 that
   * holds each one's place in a compact segment (core/segments.ts invariant 8) rather than write
   * its bytes as text. Every other field of every record is the same.
   */
  withoutSignatures?: boolean;
}

/** What one trim step did (EventLog.trim). */
export interface TrimResult {
  /** Events whose bodies this step took out. */
  trimmed: number;
  /** The log's horizon after the step (undefined: nothing was ever trimmed). */
  horizon: string | undefined;
  /** Events at or below the asked horizon are still untrimmed (the step stopped at `limit`). */
  more: boolean;
}

/** A server snapshot as a log keeps it (invariant 7, core/space-snapshot.ts). */
export interface LogBase {
  /** The snapshot's cursor: the log's horizon. */
  horizon: string;
  /** Replica id → largest seq the snapshot folds. */
  vector: Readonly<Record<string, number>>;
  streams: readonly { stream: string; version: number; conflict: boolean }[];
  /** Each projection's state at the horizon (position 0: no event of this log is in it). */
  snapshots: readonly SnapshotRecord[];
  /** Meta written with it: the sync checkpoint of the server, the projections' versions. */
  meta: Readonly<Record<string, JsonValue>>;
}

export interface SnapshotMeta {
  projection: string;
  version: number;
  /** (cursor, pos): see core/projection.ts */
  cursor: string;
  pos: number;
  /** Events folded into the state. */
  count: number;
}

export interface SnapshotRecord extends SnapshotMeta {
  state: unknown;
}

export interface EventLog {
  /**
   * This replica's id for its own appends. It changes when an ingest finds the id in use
   * elsewhere (a restored backup or a clone: core/append.ts invariant 8).
   */
  readonly replicaId: ReplicaId;
  /** Random id made with the database: a new epoch means a new (or restored-elsewhere) log. */
  readonly epoch: string;
  /** Throws ConcurrencyError, IdempotencyError, QuotaExceededError, StorageError. */
  appendLocal(request: LocalAppendRequest): Promise<LocalAppendResult>;
  /**
   * The units of a group in one transaction, each decided on its own (core/append-group.ts): a
   * unit's ConcurrencyError or IdempotencyError is its outcome, and the other units are written.
   * Throws (nothing written) only when the transaction itself fails: QuotaExceededError,
   * StorageError, a closed store.
   */
  appendGroup(request: AppendGroupRequest): Promise<AppendUnitOutcome[]>;
  ingest(request: IngestRequest): Promise<IngestResult>;
  /**
   * Moves this replica's own unshared events stamped beyond the tolerance (core/restamp.ts), in
   * one transaction, and sets the clock back to the greatest HLC the log then holds (the one
   * place a replica's clock goes back: it takes back HLCs that no other replica has seen).
   */
  restamp(request: RestampRequest): Promise<RestampResult>;
  /**
   * Takes this replica's own events out of the log, in one transaction: events the authority of
   * their strict stream rejected (core/strict.ts). Each is named by id and seq, and by the
   * replica id it was written under where that is not the log's id now (an id the log had before
   * it moved to a fresh one: core/append.ts invariant 8; the caller knows which ids were its
   * own); one not held, or held at another seq or of another replica, is skipped. Their
   * positions become holes (invariant 3), and each stream they leave gets back the version its
   * remaining events hold. Resolves with the records taken out.
   */
  discard(events: readonly DiscardedEvent[]): Promise<LocalRecord[]>;
  readByCursor(query: CursorQuery): Promise<LocalRecord[]>;
  /** Records with pos > afterPos, in receive order. */
  readByPos(afterPos: number, limit: number): Promise<LocalRecord[]>;
  getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]>;
  /** Last local position (0 when empty). */
  headPos(): Promise<number>;
  /** The highest seq of this replica's own events in the log (0 when none). */
  ownSeq(): Promise<number>;
  /** Smallest cursor among positions > pos, or undefined when there are none. */
  minCursorSince(pos: number): Promise<string | undefined>;
  streamVersion(stream: string): Promise<number>;
  /** Streams that may hold concurrent appends (flagged on ingest). */
  conflictStreams(): Promise<string[]>;
  clock(): Promise<HlcState>;

  putSnapshot(snapshot: SnapshotRecord): Promise<void>;
  listSnapshots(projection: string, version: number): Promise<SnapshotMeta[]>;
  getSnapshot(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined>;
  /** Deletes the listed snapshots of `projection`, or all of them (any version) if none listed. */
  deleteSnapshots(
    projection: string,
    which?: readonly { version: number; cursor: string }[],
  ): Promise<void>;

  /** The signing identity this log's replica ids derive from (core/integrity.ts), if any. */
  identity(): Promise<StoredIdentity | undefined>;
  /**
   * Gives a log without an identity this key, in one transaction (core/integrity.ts
   * adoptedIdentity): a log with no own event yet moves to a replica id derived from it. A log
   * that has an identity keeps it (another handle adopted first).
   */
  adoptIdentity(key: StoredSigningKey): Promise<void>;
  /** The events held at these (replica, seq) slots, in the order asked. */
  eventsAtSlots(
    slots: readonly { replica: string; seq: number }[],
  ): Promise<(LocalRecord | undefined)[]>;
  /**
   * Whether this log trimmed the event of each (replica, seq) slot, in the order asked
   * (invariant 6): it was held here, verified when it came, and only its body is gone. Optional,
   * as trim() is.
   */
  trimmedSlots?(slots: readonly { replica: string; seq: number }[]): Promise<boolean[]>;
  /**
   * Writes own events again with new meta (their signatures), at their positions, in one
   * transaction. A record whose stored event is no longer the one given (other id or cursor: a
   * re-stamp moved it) is skipped.
   */
  replaceOwn(records: readonly LocalRecord[]): Promise<void>;

  /**
   * Trims the untrimmed events whose cursor is <= `horizon` and whose position is <= `maxPos`
   * (default: any), at most `limit` of them in cursor order, in one transaction (invariant 6);
   * the log's horizon becomes the largest cursor trimmed. An event above `maxPos` stays whole,
   * as a late event does: the caller passes the server's checkpoint, so an event received since
   * it chose H is never trimmed unsynced. The caller decides H (core/retention.ts).
   */
  trim?(horizon: string, limit: number, maxPos?: number): Promise<TrimResult>;
  /** The largest cursor ever trimmed, shared by every handle (undefined: a full log). */
  horizon?(): Promise<string | undefined>;
  /**
   * readByCursor and horizon() read together, in one transaction: the records are the log's as
   * it stood at that horizon (no trim lies between them). Where a call costs a transaction
   * (IndexedDB), this is one instead of a horizon read, the read and a horizon read again
   * (store/history-reads.ts invariant 6).
   */
  readByCursorAtHorizon?(
    query: CursorQuery,
  ): Promise<{ records: LocalRecord[]; horizon: string | undefined }>;
  /**
   * The largest position ever trimmed (0: none): a fold whose progress is below it may have
   * missed trimmed events, and starts again from a snapshot (projection-runtime.ts 13).
   */
  trimmedPos?(): Promise<number>;
  /**
   * Lays `base` under this log if it is empty (invariant 7); false (nothing written) when it
   * holds an event or a horizon.
   */
  installBase?(base: LogBase): Promise<boolean>;
  /** The version vector of an installed base (undefined: none was). */
  baseVector?(): Promise<Readonly<Record<string, number>> | undefined>;

  /** Small JSON values: sync checkpoints, projection versions, the server epoch. */
  getMeta(key: string): Promise<JsonValue | undefined>;
  setMeta(key: string, value: JsonValue): Promise<void>;

  /**
   * Called after another handle on the same database wrote, with its new head position; may be
   * late or dropped (the log, not the notice, is the truth). `rewrittenFrom`, after a write that
   * took records out or moved them (discard, restamp): the smallest cursor it touched, from which
   * what another handle folded may no longer be the log. Returns an unsubscribe function.
   */
  onRemoteWrite(listener: RemoteWriteListener): () => void;
  close(): Promise<void>;
}
