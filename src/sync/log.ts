/**
 * What a sync session needs from the log it replicates: the client store's log, or one space's
 * log on the server. Both sides of a session speak to a SyncLog; that is what makes the protocol
 * symmetric.
 */
import type { LostCopy } from '../core/copies.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { ChainLookup, LinkCheck, Tampering } from '../core/integrity.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { TrimmedCopyLoss } from '../core/trimmed-copies.ts';
import type { Checkpoint } from './protocol.ts';

export interface SyncIngestResult {
  /** Records that were new to this log, with their positions. */
  written: LocalRecord[];
  /** Some HLC was more than maxClockDrift ahead of this side's wall clock. */
  skewed: boolean;
  /** Copies that lost to another copy of their id or (replica, seq) (core/copies.ts). */
  lost?: LostCopy[];
  /** Trimmed events that lost to a copy received (core/trimmed-copies.ts). */
  lostTrimmed?: TrimmedCopyLoss[];
  /**
   * Events the authority of their strict stream rejected (core/strict.ts): not stored; the rest
   * of the batch was. Only a server's log rejects.
   */
  rejected?: StrictRejection[];
}

export interface SyncIngestOptions {
  /**
   * The sender is a server that checked these stamps against its own clock (the authority a
   * client corrects its clock to): the receiving clock follows them in full, however far behind
   * it is, so that what it appends next sorts after them (causality). Without it, the clock
   * moves at most maxClockDrift past the wall clock.
   */
  vouchedByServer?: boolean;
}

export interface SyncIntegrity extends ChainLookup {
  /** Refuse every unsigned event (else only those of a replica known to sign). */
  readonly requireSignatures: boolean;
  /** Keeps the `$key` of replicas first seen in a verified batch (before it is stored). */
  rememberKeys(keys: ReadonlyMap<string, string>): Promise<void>;
  /** A verified batch's links that did not meet their event (chain-watch.ts), before it is stored. */
  noteLinks?(
    events: readonly StoredEventRecord[],
    links: readonly LinkCheck[],
    peer: string,
  ): Promise<void>;
  /** An event this side refused with TAMPERED. */
  noteRefused?(tampering: Tampering, peer: string): Promise<void>;
}

export interface SyncLog {
  /** The replica that owns this log (a server has one per space). */
  readonly replicaId: string;
  /** Random id of this log, created with it. */
  epoch(): Promise<string>;
  headPos(): Promise<number>;
  /** The highest seq of this replica's own events that the log holds. */
  ownSeq(): Promise<number>;
  /**
   * The seq to announce in hello (protocol: the peer skips sending back our own events up to
   * it); ownSeq() when absent. A store announces only what some peer acknowledged: a replica
   * restored from a backup, or forked, holds other copies at its later seqs, and must receive
   * the world's copies of them to resolve the collision (core/copies.ts).
   */
  announcedSeq?(): Promise<number>;
  readByPos(afterPos: number, limit: number): Promise<LocalRecord[]>;
  /** Id of the event at `pos`, or undefined past the head (or where the event is trimmed). */
  idAtPos(pos: number): Promise<string | undefined>;
  /** The largest position trimmed (EventLog.trimmedPos; 0 or absent: a full log). */
  trimmedPos?(): Promise<number>;
  /** Stores validated remote events durably, deduplicated by id, before resolving. */
  ingest(events: StoredEventRecord[], options?: SyncIngestOptions): Promise<SyncIngestResult>;
  /** What this log holds of `peer`'s log. */
  getCheckpoint(peer: string): Promise<Checkpoint | undefined>;
  setCheckpoint(peer: string, checkpoint: Checkpoint): Promise<void>;
  /**
   * Tamper evidence (core/integrity.ts): a session verifies each batch against this before it
   * stores anything of it. Absent: nothing is verified.
   */
  readonly integrity?: SyncIntegrity;
  /** Called with the new head whenever records are added (by anyone). Returns unsubscribe. */
  onAppend(listener: (headPos: number) => void): () => void;
}
