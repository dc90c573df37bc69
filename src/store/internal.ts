/**
 * The seam between the store and the sync layer. Dependencies point inward (sync → store), so
 * the store does not import sync: openStore (src/index.ts) passes a SyncFactory that gets these
 * internals.
 */

import type { StoredEventRecord } from '../core/events.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { RejectedAppend, SyncApi } from '../core/sync-types.ts';
import type { EventLog, IngestResult, RestampResult } from '../storage/adapter.ts';
import type { UnreadableStatus } from './encryption-types.ts';
import type { HistorySource } from './history-source.ts';
import type { CheckpointMeta } from './join.ts';
import type { RetentionOutcome } from './retention.ts';
import type { ServerLink } from './server-link.ts';
import type { Signer } from './signing.ts';

/**
 * Meta key of this replica's own seqs whose events lost to another copy and left the log
 * (core/copies.ts): a JSON array of numbers. They can never be acknowledged, so sync's `pending`
 * does not count them (sync/store-log.ts ownSeq). Written before subscribers hear of the ingest.
 */
export const FORGONE_SEQS_META_KEY = 'sync.forgoneSeqs';
/** Forgone seqs kept at most (the highest): collisions are rare, a list must stay small. */
export const MAX_FORGONE_SEQS = 1000;

export interface StoreInternals {
  readonly log: EventLog;
  /** The log's current replica id (it changes when a restored backup is detected). */
  readonly replicaId: string;
  readonly maxClockDriftMs: number;
  /** How far ahead of now() an event may be stamped (core/clock-skew.ts); default 5 min. */
  readonly maxClockAheadMs?: number;
  /** The store's wall clock, corrected by the offset the sync server reported. */
  now(): number;
  /** Sets the correction added to the raw wall clock (from a server's time at handshake). */
  setClockOffset(ms: number): void;
  /**
   * Stores validated remote events through the store: durable first, then subscribers and
   * projections learn of them.
   */
  ingest(
    events: StoredEventRecord[],
    /** vouchedByServer: the clock follows the stamps in full (sync/log.ts SyncIngestOptions). */
    options?: { vouchedByServer?: boolean },
  ): Promise<IngestResult>;
  /**
   * A peer this store syncs with accepts events up to `maxEventBytes` (data + meta): appends
   * larger than the smallest such limit are refused from now on, after restarts too.
   */
  learnPeerLimits?(peer: string, limits: { maxEventBytes: number }): Promise<void>;
  /**
   * Re-stamps this replica's own events above `sharedSeq` that are stamped beyond now() +
   * maxClockAheadMs (core/restamp.ts), then rebases the projections they moved in and tells
   * watchers. `shift`: the correction a server just reported.
   */
  restamp?(request: { sharedSeq: number; shift?: number }): Promise<RestampResult>;
  /**
   * The authority of a strict stream rejected these events (sync protocol 8): own ones leave the
   * log, the app is told, commands run again (store/strict-rejections.ts).
   */
  rejectStrict?(rejections: readonly StrictRejection[]): Promise<void>;
  /** Whether the store declares strict streams (StoreOptions.strictStreams). */
  readonly strictDeclared?: boolean;
  /**
   * Replica ids this store's log had before a move (core/append.ts invariant 8) that it has
   * seen, live: their events stay own (store/strict-store.ts invariant 3).
   */
  readonly formerIds?: ReadonlySet<string>;
  /** SyncStatus.rejected as the store keeps it. */
  strictRejections?(): RejectedAppend[];
  /** Called when strictRejections() changed. Returns unsubscribe. */
  onStrictChange?(listener: () => void): () => void;
  /** Events this encrypted store holds but cannot read (SyncStatus.unreadable). */
  unreadable?(): UnreadableStatus | undefined;
  /** Called when unreadable() changed. Returns unsubscribe. */
  onUnreadableChange?(listener: () => void): () => void;
  /** Signs own events before they leave (store/signing.ts); absent when signing is off. */
  readonly signer?: Signer;
  /** Sync refuses unsigned events (StoreOptions.signing, on by default). */
  readonly requireSignatures?: boolean;
  /** Called with the new head position after any write this handle can see. */
  onChange(listener: (headPos: number) => void): () => void;
  /**
   * This replica's highest seq when the head is `headPos` and the last write to reach it was
   * this store's own append (the seq of its last event); undefined when the store cannot tell
   * without reading the log (another tab's write, an ingest, a new replica id). Spares a read
   * after every append, which the next append would wait for.
   */
  ownSeqAt?(headPos: number): number | undefined;
  /**
   * Partial replicas (docs/storage-growth.md): the sync controller hands the store its server
   * link once a server session is known (the server's checkpoint of this log, its history, and a
   * signal when either changed), and undefined when it goes. Without one the store trims nothing
   * and reads below its horizon reject with HistoryUnavailableError.
   */
  attachServer?(server: ServerLink | undefined): void;
  /** Runs a retention pass now (StoreOptions.retain); resolves with what it trimmed. */
  retainNow?(): Promise<RetentionOutcome>;
  /**
   * Joining from a server snapshot (StoreOptions.join, store/join.ts): the projections to ask
   * for, when this store may join now (its log is empty); undefined: it replays the log.
   */
  joinRequest?(): Promise<ProjectionVersion[] | undefined>;
  /**
   * Lays a server's snapshot under the empty log, with that server's checkpoint (store/join.ts
   * invariant 3); false when the log took nothing (it replays).
   */
  installSnapshot?(snapshot: SpaceSnapshot, checkpoint: CheckpointMeta): Promise<boolean>;
  /** Resolves when the store is closing; sync stops then. */
  readonly closing: Promise<void>;
}

export interface SyncController extends SyncApi {
  /** Stops every connection (the store is closing). */
  close(): Promise<void>;
  /**
   * The server's history through the live sync connection (docs/storage-growth.md part 3;
   * sync/history-client.ts): rejects with HistoryUnavailableError (HISTORY_OFFLINE) when no
   * connected server can answer. Absent on controllers that do not fetch history.
   */
  readonly history?: HistorySource;
}

export type SyncFactory = (internals: StoreInternals) => SyncController;
