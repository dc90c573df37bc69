/**
 * An ingest's readwrite transaction on the IndexedDB log (indexeddb.ts invariants 1 and 7): read
 * counters and stream versions (and, on request, the stored records of the batch's ids), plan
 * with core/append.ts, place with core/segments.ts, write.
 *
 * Invariant (indexeddb.ts 7): an ingest first runs with `lookUpIds` false. Sync sends what the
 * peer lacks, so the events are new nearly always, and one request per id was the largest cost
 * of a browser catch-up (50,000 events: 3.6 s with lookups, 2.0 s without). An event the log
 * holds cannot slip in unnoticed: new events only ever go into added segments (indexeddb.ts
 * invariant 3), so its segment's `add` fails on the unique `id` index, or its cursor falls
 * inside a stored segment and planWrite (core/segment-plan.ts) refuses the split; an event reusing a held (replica, seq)
 * fails the unique `slot` index the same way. The transaction then aborts with nothing of it
 * kept, and the caller runs the batch again with `lookUpIds` true, which looks ids and slots up,
 * skips the held events and resolves the colliding copies (core/copies.ts).
 */
import {
  type IngestInput,
  type IngestPlan,
  planIngest,
  type ReplicaCounters,
} from '../core/append.ts';
import { slotOf } from '../core/copies.ts';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import { EventId, type ReplicaId } from '../core/ids.ts';
import { forkedReplica } from '../core/replica-identity.ts';
import { foundBySlot, slotRunsOf } from '../core/segments.ts';
import { uncovered } from '../core/space-join.ts';
import { readBaseVector } from './idb-base.ts';
import { removeRecords } from './idb-copies.ts';
import { readIdentityKey } from './idb-identity.ts';
import {
  asCounters,
  asReplicaId,
  KEY_COUNTERS,
  KEY_IDENTITY,
  KEY_REPLICA,
  plainCounters,
  type StoredCounters,
} from './idb-schema.ts';
import {
  applyWrite,
  evictHusked,
  type HuskReads,
  huskTraces,
  lookupIds,
  lookupSlots,
  placeRecords,
  request,
  slotRunTaken,
} from './idb-segments.ts';
import { lowerRows, readStreams, writeRows } from './idb-streams.ts';

/**
 * The log's part of a write, shared by appendLocal and an ingest (each writes its own stream
 * rows after it): places `records` among the stored segments (core/segments.ts, from the stored
 * maxCursor), writes them, and the counters the plan gives with the new maxCursor, which it
 * returns as stored.
 */
export async function writeRecords(
  tx: IDBTransaction,
  records: readonly LocalRecord[],
  stored: StoredCounters,
  next: ReplicaCounters,
): Promise<StoredCounters> {
  const segments = tx.objectStore('segments');
  const shaped = await guardIds(segments, records, stored.shapedIds === true);
  const placed = await placeRecords(segments, records, stored.maxCursor);
  await applyWrite(segments, placed);
  const counters = plainCounters(next, placed.maxCursor, shaped);
  tx.objectStore('meta').put(counters, KEY_COUNTERS);
  return counters;
}

/**
 * Keeps ids unique where no index does (idb-schema.ts invariant 4): a custom id of canonical form
 * may equal the canonical id of another event, which only the `slot` index lists. Such ids, and
 * once the log holds one every canonical id, are looked up before they are written; one held
 * by another event fails the write as a unique index would (an ingest then runs again with its
 * ids looked up, and core/copies.ts settles the copies). Returns the shapedIds to store.
 */
async function guardIds(
  segments: IDBObjectStore,
  records: readonly LocalRecord[],
  shapedBefore: boolean,
): Promise<boolean> {
  const check: string[] = [];
  let shaped = shapedBefore;
  for (const { event } of records) {
    if (foundBySlot(event.id, event.replica, event.seq, slotOf(event))) {
      if (shapedBefore) check.push(event.id);
      continue;
    }
    // A custom id: the `id` index keeps it unique, unless it has canonical form.
    if (EventId.canonicalSlot(event.id) === undefined) continue;
    shaped = true;
    check.push(event.id);
  }
  if (check.length === 0) return shaped;
  const held = await lookupIds(segments, check);
  const taken = held.findIndex((record) => record !== undefined);
  if (taken >= 0) {
    throw new StorageError('STORAGE', 'an event of this write has the id of a stored event', {
      id: check[taken],
    });
  }
  return shaped;
}

/**
 * One ingest's reads, plan and writes. The replica id is read in the transaction (another tab may
 * have moved to a fresh one: append.ts invariant 8), and is written anew when the plan forks.
 */
export async function ingestInTransaction(
  tx: IDBTransaction,
  given: Omit<IngestInput, 'replica'>,
  lookUpIds: boolean,
): Promise<{ plan: IngestPlan; replicaId: ReplicaId }> {
  const segments = tx.objectStore('segments');
  const meta = tx.objectStore('meta');
  // Covered by an installed base: held, though no index lists it (idb-base.ts invariant 1).
  const vector = await readBaseVector(meta);
  const events = uncovered(vector, given.events);
  const input = events === given.events ? given : { ...given, events };
  const streams = tx.objectStore('streams');
  const names = [...new Set(input.events.map((e) => e.stream))];
  // A trimmed event meets its copies by its trace (core/trimmed-copies.ts). Without lookups
  // such an event fails the `slot` or `id` index like any held one (invariant 7).
  const husks: HuskReads = new Map();
  const [rawReplica, rawCounters, states, , existing, slots, traces] = await Promise.all([
    request(meta.get(KEY_REPLICA)),
    request(meta.get(KEY_COUNTERS)),
    readStreams(streams, names),
    lookUpIds ? undefined : assertSlotsFree(segments, input.events),
    lookUpIds
      ? lookupIds(
          segments,
          input.events.map((e) => e.id),
        )
      : [],
    lookUpIds
      ? lookupSlots(
          segments,
          input.events.map((e) => slotOf(e)),
        )
      : [],
    lookUpIds
      ? huskTraces(
          segments,
          input.events.map((e) => e.id),
          input.events.map((e) => slotOf(e)),
          husks,
        )
      : undefined,
  ]);
  const counters: StoredCounters = asCounters(rawCounters);
  let replicaId = asReplicaId(rawReplica);
  const plan = planIngest(
    { ...input, replica: replicaId },
    {
      counters,
      existing,
      slots,
      ...(traces !== undefined ? { trimmedById: traces.byId, trimmedBySlot: traces.bySlot } : {}),
      streamVersions: new Map(names.map((s) => [s, states.get(s)?.version ?? 0])),
    },
  );
  if (plan.forked) {
    const next = forkedReplica(await readIdentityKey(meta));
    replicaId = next.replicaId;
    meta.put(replicaId, KEY_REPLICA);
    if (next.identity !== undefined) meta.put(next.identity, KEY_IDENTITY);
  }
  // Losers leave first: a winner may reuse their id, slot and cursor (core/copies.ts). Their
  // streams keep the versions they had: the rows hold them (idb-streams.ts invariant 1), but
  // for strict losers (core/append.ts invariant 9).
  await evictHusked(segments, plan.evict, husks);
  await removeRecords(segments, plan.remove);
  if (plan.write.length === 0) {
    await lowerRows(tx, [...plan.recount]);
    if (plan.remove.length > 0 || plan.counters.seq !== counters.seq) {
      meta.put(
        plainCounters(plan.counters, counters.maxCursor, counters.shapedIds === true),
        KEY_COUNTERS,
      );
    }
    return { plan, replicaId };
  }
  await writeRecords(tx, plan.write, counters, plan.counters);
  // The rows hold the versions and flag possible conflicts (idb-schema.ts invariant 9).
  writeRows(streams, plan.streamVersions, states, [...plan.possibleConflicts]);
  // core/append.ts invariant 9: after the rows above (requests run in order).
  await lowerRows(tx, [...plan.recount]);
  return { plan, replicaId };
}

/**
 * An ingest that takes every event as new (invariant 7 of indexeddb.ts) must fail when the log
 * holds one of their (replica, seq) slots already: the `slot` index is not unique (idb-schema.ts
 * invariant 7), so it looks, one request per run of consecutive slots. The ingest then runs again
 * with its ids and slots looked up.
 */
async function assertSlotsFree(
  segments: IDBObjectStore,
  events: readonly StoredEventRecord[],
): Promise<void> {
  const index = segments.index('slot');
  const runs = slotRunsOf(events.map((e) => slotOf(e)));
  const taken = await Promise.all(runs.map((run) => slotRunTaken(index, run)));
  if (taken.some(Boolean)) {
    throw new StorageError('STORAGE', 'the log holds an event at a (replica, seq) of this ingest');
  }
}
