/**
 * A local append's readwrite transaction on the IndexedDB log (indexeddb.ts invariant 1): read
 * the counters, the stream versions (idb-streams.ts) and the stored records of custom ids; plan
 * the group (core/append-group.ts); place and write (idb-ingest.ts writeRecords), and the row of
 * each stream whose version grew (idb-streams.ts).
 *
 * Invariant (indexeddb.ts 8): a handle remembers what its last transaction read and wrote (the
 * counters, the replica id, stream versions: AppendCache). When that covers an append (no custom
 * id to look up, every stream's version known, no custom id of canonical form stored), it is
 * planned from it and its writes are issued at once, behind one read of the stored counters;
 * if that read differs from the remembered counters (another tab, an ingest, a re-stamp wrote
 * since), the transaction is aborted before it commits and the append runs again with reads.
 * Every write moves the counters (a stream's version grows only with a write of events, which
 * moves `pos`, and never goes back: idb-streams.ts), so equal counters mean the remembered
 * versions are the stored ones. A small awaited
 * append is then one round trip to the database instead of two, and three requests fewer.
 */
import {
  type AppendGroupPlan,
  customIdsOf,
  planAppendGroup,
  streamsOf,
} from '../core/append-group.ts';
import type { StoredEventRecord } from '../core/events.ts';
import type { ReplicaId } from '../core/ids.ts';
import type { AppendGroupRequest } from './adapter.ts';
import { writeRecords } from './idb-ingest.ts';
import {
  asCounters,
  asReplicaId,
  KEY_COUNTERS,
  KEY_REPLICA,
  type StoredCounters,
} from './idb-schema.ts';
import { heldByHusks, lookupIds, request } from './idb-segments.ts';
import { readStreams, type StreamState, writeRows } from './idb-streams.ts';

/** Stream rows remembered at most; past it the memory starts again empty. */
const MAX_CACHED_STREAMS = 10_000;

/** What a handle's last log transaction read and wrote (invariant 8). */
export interface AppendCache {
  counters: StoredCounters;
  replica: ReplicaId;
  /** Stream versions as stored then (idb-streams.ts). */
  streams: Map<string, number>;
  /** Of those streams, the ones whose row has the conflict flag (idb-streams.ts invariant 2). */
  conflicted: Set<string>;
}

export interface AppendTransactionResult {
  plan: AppendGroupPlan;
  replica: ReplicaId;
  /** What the transaction leaves stored, for the next append (invariant 8). */
  cache: AppendCache;
}

/** Thrown inside a transaction planned from a stale AppendCache: it aborts, nothing is written. */
export class StaleAppendCache extends Error {
  constructor() {
    super('the log changed since this handle last wrote it');
    this.name = 'StaleAppendCache';
  }
}

/** Whether an append can be planned from `cache` alone (invariant 8). */
export function coveredBy(cache: AppendCache | undefined, request_: AppendGroupRequest): boolean {
  if (cache === undefined || cache.counters.shapedIds === true) return false;
  if (customIdsOf(request_.units).length > 0) return false;
  return streamsOf(request_.units).every((s) => cache.streams.has(s));
}

const sameCounters = (a: StoredCounters, b: StoredCounters) =>
  a.seq === b.seq &&
  a.pos === b.pos &&
  a.clock.wall === b.clock.wall &&
  a.clock.counter === b.clock.counter &&
  a.maxCursor === b.maxCursor &&
  a.shapedIds === b.shapedIds;

/**
 * One append group's transaction. `blind`: plan from `remembered` (coveredBy must hold), behind a
 * check of the stored counters (invariant 8); rejects with StaleAppendCache when they moved.
 * Otherwise read first; `remembered` rows are kept for the next append while still true.
 */
export async function appendInTransaction(
  tx: IDBTransaction,
  request_: AppendGroupRequest,
  remembered: AppendCache | undefined,
  blind: boolean,
): Promise<AppendTransactionResult> {
  const cache = blind ? remembered : undefined;
  const segments = tx.objectStore('segments');
  const meta = tx.objectStore('meta');
  const streamStore = tx.objectStore('streams');
  const names = streamsOf(request_.units);
  let counters: StoredCounters;
  let replica: ReplicaId;
  let versions: ReadonlyMap<string, number>;
  let states: ReadonlyMap<string, StreamState>;
  const existing = new Map<string, StoredEventRecord>();
  let trimmed: ReadonlySet<string> | undefined;
  let check: Promise<unknown> | undefined;
  if (cache !== undefined) {
    // Issued before the writes: it reads the log as it was when this transaction began.
    check = request(meta.get(KEY_COUNTERS));
    counters = cache.counters;
    replica = cache.replica;
    versions = cache.streams;
    states = new Map(
      names.map((stream) => {
        const version = cache.streams.get(stream) ?? 0;
        const row = {
          stream,
          version,
          ...(cache.conflicted.has(stream) ? { conflicted: true as const } : {}),
        };
        return [stream, { version, row }];
      }),
    );
  } else {
    // A lookup per event is most of an append's reads; canonical ids cannot be stored already.
    const toCheck = customIdsOf(request_.units);
    const [rawReplica, rawCounters, read, found, husks] = await Promise.all([
      request(meta.get(KEY_REPLICA)),
      request(meta.get(KEY_COUNTERS)),
      readStreams(streamStore, names),
      toCheck.length === 0 ? [] : lookupIds(segments, toCheck),
      // A blind append naming a trimmed id fails the `id` index and runs again here.
      toCheck.length === 0 ? undefined : heldByHusks(segments, toCheck, []),
    ]);
    trimmed = husks?.ids;
    toCheck.forEach((id, i) => {
      const event = found[i]?.event;
      if (event !== undefined) existing.set(id, event);
    });
    counters = asCounters(rawCounters);
    // Another tab's ingest may have moved this replica to a fresh id (append.ts invariant 8).
    replica = asReplicaId(rawReplica);
    versions = new Map(names.map((s) => [s, read.get(s)?.version ?? 0]));
    states = read;
  }
  const plan = planAppendGroup(
    { replica, now: request_.now, units: request_.units },
    {
      counters,
      streamVersions: versions,
      existing,
      ...(trimmed === undefined ? {} : { trimmed }),
    },
  );
  const stored =
    plan.write.length > 0 ? await writeRecords(tx, plan.write, counters, plan.counters) : counters;
  // The rows hold the versions (idb-schema.ts invariant 9).
  if (plan.write.length > 0) writeRows(streamStore, plan.streamVersions, states);
  if (check !== undefined && !sameCounters(asCounters(await check), counters)) {
    throw new StaleAppendCache();
  }
  // Rows remembered from before stay true while the counters read (or checked) are the same.
  const keep =
    remembered !== undefined &&
    remembered.streams.size < MAX_CACHED_STREAMS &&
    sameCounters(remembered.counters, counters);
  const streams = keep ? remembered.streams : new Map<string, number>();
  const conflicted = keep ? remembered.conflicted : new Set<string>();
  for (const s of names) {
    streams.set(s, plan.streamVersions.get(s) ?? versions.get(s) ?? 0);
    if (states.get(s)?.row?.conflicted === true) conflicted.add(s);
  }
  return { plan, replica, cache: { counters: stored, replica, streams, conflicted } };
}
