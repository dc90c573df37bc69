/**
 * The IndexedDB log's signing identity and signed rewrites (adapter.ts identity, adoptIdentity,
 * replaceOwn; core/integrity.ts): the identity lives in meta beside the replica id, and a
 * replica id derived from it is written with it, in one transaction.
 *
 * Invariant (indexeddb.ts 1): nothing but requests of the transaction is awaited.
 */

import type { LocalRecord } from '../core/events.ts';
import type { ReplicaId } from '../core/ids.ts';
import {
  adoptedIdentity,
  isStoredIdentity,
  type StoredIdentity,
  type StoredSigningKey,
} from '../core/replica-identity.ts';
import { unpackSegment } from '../core/segments.ts';
import { asCounters, asReplicaId, KEY_COUNTERS, KEY_IDENTITY, KEY_REPLICA } from './idb-schema.ts';
import { readSegments, request, rewriteSegments, segmentKeysOf } from './idb-segments.ts';

export async function readIdentityKey(meta: IDBObjectStore): Promise<StoredIdentity | undefined> {
  const value: unknown = await request(meta.get(KEY_IDENTITY));
  return isStoredIdentity(value) ? value : undefined;
}

/** adapter.ts adoptIdentity: resolves with the replica id the log has after it. */
export async function adoptInTransaction(
  tx: IDBTransaction,
  key: StoredSigningKey,
): Promise<ReplicaId> {
  const meta = tx.objectStore('meta');
  const [held, counters, replica] = await Promise.all([
    readIdentityKey(meta),
    request(meta.get(KEY_COUNTERS)),
    request(meta.get(KEY_REPLICA)),
  ]);
  if (held !== undefined) return asReplicaId(replica);
  const adopted = adoptedIdentity(key, asCounters(counters).seq);
  meta.put(adopted.identity, KEY_IDENTITY);
  if (adopted.replicaId === undefined) return asReplicaId(replica);
  meta.put(adopted.replicaId, KEY_REPLICA);
  return adopted.replicaId;
}

/** adapter.ts replaceOwn: the segments holding the records are written again with them. */
export async function replaceInTransaction(
  tx: IDBTransaction,
  given: readonly LocalRecord[],
): Promise<void> {
  const segments = tx.objectStore('segments');
  const keys = await segmentKeysOf(segments, given);
  const byPos = new Map(given.map((r) => [r.pos, r]));
  const records: LocalRecord[] = [];
  let changed = false;
  const stored = await readSegments(segments, keys);
  for (const segment of stored) {
    for (const held of unpackSegment(segment)) {
      const next = byPos.get(held.pos);
      const same =
        next !== undefined &&
        next.event.id === held.event.id &&
        next.event.cursor === held.event.cursor;
      records.push(same ? next : held);
      if (same) changed = true;
    }
  }
  if (changed) await rewriteSegments(segments, stored, records);
}
