/**
 * What a store hands its sync controller (StoreInternals, internal.ts): the raw log, the clock
 * and its correction, ingest and re-stamp through the store, the peers' limits, strict
 * rejections, the server link's retention and joining from a snapshot.
 *
 * Invariants:
 * 1. Sync replicates the log as stored (raw: sealed when encrypted, encryption.ts), while the
 *    replica id is the store's, read at each use (it changes when a restore is detected).
 * 2. What a server vouched for moves the clock in full (log.ts SyncIngestOptions); anything else
 *    within maxClockDrift.
 * 3. Every write sync asks for (rejections, retention passes, a snapshot's install) runs through
 *    the store's guard: none starts after close() (store.ts invariant 4).
 */

import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../core/clock-skew.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS } from '../core/hlc.ts';
import type { EventLog, IngestResult, RestampResult } from '../storage/adapter.ts';
import type { AppendLimit } from './append-limit.ts';
import type { ChangeFeed } from './change-feed.ts';
import type { Encryption } from './encryption.ts';
import type { StoreInternals } from './internal.ts';
import { installSnapshot, type JoinHost, joinRequest } from './join.ts';
import type { ProjectionRuntime } from './projection-runtime.ts';
import type { Retainer } from './retention.ts';
import type { Signer } from './signing.ts';
import type { StrictRejections } from './strict-rejections.ts';
import type { StoreOptions } from './types.ts';

/** What of the store its sync internals use. */
export interface StoreSyncParts {
  /** The log the store reads: its replica id is the store's. */
  log: EventLog;
  /** The log as stored, which sync replicates (invariant 1). */
  raw: EventLog;
  options: Pick<
    StoreOptions<unknown>,
    'join' | 'encryption' | 'signing' | 'maxClockAhead' | 'maxClockDrift'
  >;
  /** Resolves when the store starts closing. */
  closing: Promise<void>;
  strictDeclared: boolean;
  formerIds: ReadonlySet<string>;
  runtimes(): Iterable<ProjectionRuntime>;
  feed: ChangeFeed;
  now(): number;
  setClockOffset(ms: number): void;
  restamp(request: {
    sharedSeq: number;
    shift?: number;
    maxClockAheadMs: number;
  }): Promise<RestampResult>;
  ingest(events: StoredEventRecord[], maxClockDriftMs: number): Promise<IngestResult>;
  appendLimit: AppendLimit;
  rejections: StrictRejections;
  strictListeners: Set<() => void>;
  /** The last position, seq and replica of the store's own latest append. */
  lastAppend(): { pos: number; seq: number; replica: string } | undefined;
  /** Runs an operation unless the store is closed (invariant 3). */
  guard<T>(operation: () => Promise<T>): Promise<T>;
  retainer: Retainer;
  /** The server link changed (store.ts serverChanged). */
  serverChanged(): void;
  signer: Signer | undefined;
  encryption: Encryption | undefined;
}

export function storeInternals(parts: StoreSyncParts): StoreInternals {
  const { log, raw, options, closing } = parts;
  const maxClockAheadMs = options.maxClockAhead ?? DEFAULT_MAX_CLOCK_AHEAD_MS;
  const maxClockDriftMs = options.maxClockDrift ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
  // store/join.ts: on the raw log (an encrypted store never joins: join.ts invariant 1).
  const joinHost: JoinHost = {
    log: raw,
    mode: options.join,
    encrypted: options.encryption !== undefined,
    projections: () =>
      [...parts.runtimes()].map(({ projection }) => ({
        name: projection.name,
        version: projection.version,
      })),
    reload: async () => {
      await Promise.all([...parts.runtimes()].map((r) => r.reload()));
      await parts.feed.notify();
    },
  };
  const internals: StoreInternals = {
    // Sync replicates the log as stored: sealed (store/encryption.ts).
    log: raw,
    get replicaId() {
      return log.replicaId;
    },
    maxClockDriftMs,
    maxClockAheadMs,
    restamp: (request) => parts.restamp({ ...request, maxClockAheadMs }),
    now: () => parts.now(),
    setClockOffset: (ms) => {
      parts.setClockOffset(ms);
    },
    // What a server vouched for moves the clock in full (log.ts SyncIngestOptions).
    ingest: (events, ingestOptions) =>
      parts.ingest(events, ingestOptions?.vouchedByServer === true ? Infinity : maxClockDriftMs),
    learnPeerLimits: (peer, limits) => parts.appendLimit.learn(peer, limits.maxEventBytes),
    onChange: (listener) => parts.feed.onHead(listener),
    strictDeclared: parts.strictDeclared,
    formerIds: parts.formerIds,
    rejectStrict: (rejections) => parts.guard(() => parts.rejections.reject(rejections)),
    strictRejections: () => parts.rejections.list(),
    onStrictChange: (listener) => {
      parts.strictListeners.add(listener);
      return () => parts.strictListeners.delete(listener);
    },
    ownSeqAt: (headPos) => {
      const last = parts.lastAppend();
      return last !== undefined && last.pos === headPos && last.replica === log.replicaId
        ? last.seq
        : undefined;
    },
    closing,
    requireSignatures: options.signing !== false,
    attachServer: (server) => parts.retainer.attach(server, () => parts.serverChanged()),
    retainNow: () => parts.guard(() => parts.retainer.pass()),
    joinRequest: () => joinRequest(joinHost),
    installSnapshot: (snapshot, checkpoint) =>
      parts.guard(() => installSnapshot(joinHost, snapshot, checkpoint)),
  };
  const { signer, encryption } = parts;
  if (signer !== undefined) Object.assign(internals, { signer });
  if (encryption !== undefined) {
    internals.unreadable = () => encryption.status();
    internals.onUnreadableChange = (listener) => encryption.onChange(listener);
  }
  return internals;
}
