/**
 * Taking rejected own events out of the IndexedDB log (adapter.ts `discard`, core/strict.ts), in
 * one readwrite transaction: the held records are looked up by id, kept only when they are this
 * replica's (under the replica id named, or its id now) at the named seq, taken out of their
 * segments (idb-copies.ts), and each stream they leave gets back the version its remaining
 * events hold.
 *
 * Invariant (indexeddb.ts 1): nothing but requests of this transaction is awaited.
 */
import type { LocalRecord } from '../core/events.ts';
import { tick } from '../core/hlc.ts';
import type { DiscardedEvent } from './adapter.ts';
import { removeRecords } from './idb-copies.ts';
import {
  appKey,
  asCounters,
  asReplicaId,
  KEY_COUNTERS,
  KEY_REPLICA,
  plainCounters,
} from './idb-schema.ts';
import { lastCursor, lookupIds, request } from './idb-segments.ts';
import { lowerRows } from './idb-streams.ts';
import { minCursorOf, REWRITES_META_KEY, withRewrite } from './rewrites.ts';

export async function discardInTransaction(
  tx: IDBTransaction,
  events: readonly DiscardedEvent[],
): Promise<LocalRecord[]> {
  const segments = tx.objectStore('segments');
  const meta = tx.objectStore('meta');
  const [rawReplica, rawCounters, rewrites, held] = await Promise.all([
    request(meta.get(KEY_REPLICA)),
    request(meta.get(KEY_COUNTERS)),
    request(meta.get(appKey(REWRITES_META_KEY))),
    lookupIds(
      segments,
      events.map((e) => e.id),
    ),
  ]);
  const replica = asReplicaId(rawReplica);
  const records = held.filter(
    (r, i): r is LocalRecord =>
      r !== undefined &&
      r.event.replica === (events[i]!.replica ?? replica) &&
      r.event.seq === events[i]!.seq,
  );
  if (records.length === 0) return [];
  await removeRecords(segments, records);
  // A stream's row holds its version (idb-schema.ts invariant 9), which copies keep; an event the
  // authority rejected never counted, so it comes down to what the stream still holds
  // (idb-streams.ts invariant 1). Requests run in order: these reads see the removal.
  const [, last] = await Promise.all([
    lowerRows(tx, [...new Set(records.map((r) => r.event.stream))]),
    lastCursor(segments),
  ]);
  const counters = asCounters(rawCounters);
  const maxCursor = last;
  // The clock ticks (as if an event were stamped: it never goes back), so that the counters
  // differ from before and another handle's append cache, which holds the versions before,
  // fails its check (idb-append.ts) instead of planning from them.
  const clock = tick(counters.clock, counters.clock.wall);
  meta.put(
    plainCounters({ ...counters, clock }, maxCursor, counters.shapedIds === true),
    KEY_COUNTERS,
  );
  // For a handle that misses this handle's notice (rewrites.ts).
  meta.put(withRewrite(rewrites, minCursorOf(records)!), appKey(REWRITES_META_KEY));
  return records;
}
