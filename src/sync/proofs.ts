/**
 * The proof of a batch that ends inside a run of events held without their signature (protocol.ts
 * invariant 12, core/integrity.ts invariant 8): a store keeps covered events as a server sent
 * them, and whatever it sends on must still let the receiver verify them. A receiver takes an
 * elided event only where a later event of the same message covers it; when a batch (cut by the
 * peer's limits) ends before that event, the events of the log after it, up to the signed one
 * that covers the run, go with it in `proof`: checked, verified and stored with the batch (so
 * that a receiver never holds a run without its cover, which it could not send on), though
 * outside its range, which the sender still sends as usual (ingest dedupes by id).
 *
 * Invariants:
 * 1. A proof follows the replica's chain from the batch's last event of that replica: the next
 *    chained event by seq (strict events are outside the chain, core/strict.ts), then the next,
 *    until one carries its signature. If the chain stops first (an event not held here, one
 *    unsigned and not elided), there is no proof for that replica: the peer refuses the event as
 *    unsigned and it is reported, as every refusal is.
 * 2. Bounded: a server leaves out at most MAX_ELIDED_RUN signatures in a row, of small events
 *    only (MAX_ELIDED_DATA), so a proof holds at most MAX_ELIDED_RUN + 1 events of a replica,
 *    and the batch leaves PROOF_RESERVE bytes for it (proofReserve).
 * 3. Nothing here changes what the batch holds or covers: a proof only adds to its message.
 */
import type { StoredEventRecord } from '../core/events.ts';
import {
  type ChainLookup,
  isChained,
  isElided,
  isSigned,
  MAX_ELIDED_RUN,
} from '../core/integrity.ts';
import { BATCH_ENVELOPE_BYTES, KEY_WIRE_BYTES } from '../core/sync.ts';
import { dataTextOf, wireSize } from './event-codec.ts';
import { MAX_ELIDED_DATA } from './meta-columns.ts';

/** Bytes a batch leaves for its proof (invariant 2): the run and its cover, with their fields. */
export const PROOF_RESERVE = (MAX_ELIDED_RUN + 1) * (MAX_ELIDED_DATA + 1024);

/** Slots past the batch a proof looks at for one replica (strict events between included). */
const MAX_PROOF_STEPS = 4 * (MAX_ELIDED_RUN + 1);

/**
 * The bytes to take off a page's message budget for a proof: PROOF_RESERVE where the page holds
 * an elided event and the messages are large enough to spare it; else 0.
 */
export function proofReserve(
  events: readonly { event: StoredEventRecord }[],
  maxMessageBytes: number,
): number {
  if (maxMessageBytes < 4 * PROOF_RESERVE) return 0;
  return events.some((r) => isElided(r.event)) ? PROOF_RESERVE : 0;
}

/**
 * The events that cover the elided runs at the end of `events` (invariant 1), in chain order
 * per replica; undefined when there is nothing to cover or nothing can.
 */
export async function proofFor(
  events: readonly StoredEventRecord[],
  lookup: Pick<ChainLookup, 'eventAt'>,
  /** Bytes the message has left for it: a proof that may not fit is not sent (invariant 1). */
  room: number,
): Promise<StoredEventRecord[] | undefined> {
  const last = new Map<string, StoredEventRecord>();
  for (const e of events) if (isChained(e)) last.set(e.replica, e);
  const proof: StoredEventRecord[] = [];
  let bytes = BATCH_ENVELOPE_BYTES;
  for (const tail of last.values()) {
    if (!isElided(tail)) continue;
    const chain = await coverOf(tail, lookup);
    if (chain === undefined) continue;
    for (const e of chain) bytes += wireSize(e, dataTextOf(e)) + KEY_WIRE_BYTES;
    if (bytes > room) break;
    proof.push(...chain);
  }
  return proof.length === 0 ? undefined : proof;
}

/** The chain after `tail` up to its first signed event, or undefined (invariant 1). */
async function coverOf(
  tail: StoredEventRecord,
  lookup: Pick<ChainLookup, 'eventAt'>,
): Promise<StoredEventRecord[] | undefined> {
  const chain: StoredEventRecord[] = [];
  for (let seq = tail.seq + 1; seq <= tail.seq + MAX_PROOF_STEPS; seq++) {
    const next = await lookup.eventAt(tail.replica, seq);
    if (next === undefined) return undefined;
    if (!isChained(next)) continue;
    chain.push(next);
    if (isSigned(next)) return chain;
    if (!isElided(next) || chain.length > MAX_ELIDED_RUN + 1) return undefined;
  }
  return undefined;
}
