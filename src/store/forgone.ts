/**
 * Own seqs whose events lost to another copy (core/copies.ts) and left the log: kept in meta
 * (internal.ts FORGONE_SEQS_META_KEY) so that sync's `pending` does not wait for their ack.
 *
 * Invariants:
 * 1. Written before subscribers and the sync controller hear of the ingest (store.ts).
 * 2. A move to a fresh replica id (core/append.ts invariant 8) empties the list: its seqs were
 *    the old id's.
 */
import type { EventLog, IngestResult } from '../storage/adapter.ts';
import { FORGONE_SEQS_META_KEY, MAX_FORGONE_SEQS } from './internal.ts';

/**
 * `before`: the log's replica id before the ingest that gave `result`. Resolves true when it
 * changed the list (the caller tells the sync controller again: store.ts).
 */
export async function noteForgone(
  log: EventLog,
  before: string,
  result: IngestResult,
): Promise<boolean> {
  if (log.replicaId !== before) {
    await log.setMeta(FORGONE_SEQS_META_KEY, []);
    return true;
  }
  // A held event replaced by a copy of itself at the same seq (an erased StreamKey:
  // core/keyring-events.ts 2) still holds its seq.
  const slot = (e: { id: string; replica: string; seq: number }) => `${e.id} ${e.replica} ${e.seq}`;
  const kept = new Set(result.written.map((r) => slot(r.event)));
  const seqs = result.removed
    .filter((r) => r.event.replica === before && !kept.has(slot(r.event)))
    .map((r) => r.event.seq as number);
  if (seqs.length === 0) return false;
  const held = await log.getMeta(FORGONE_SEQS_META_KEY);
  const known = Array.isArray(held) ? held.filter((s): s is number => typeof s === 'number') : [];
  const all = [...new Set([...known, ...seqs])].sort((a, b) => a - b);
  await log.setMeta(FORGONE_SEQS_META_KEY, all.slice(-MAX_FORGONE_SEQS));
  return true;
}
