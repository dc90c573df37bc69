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
 *    unsigned and not elided), or holds an event the peer is not to get now (stamped beyond its
 *    clock, a tentative strict event, one left out for it), there is no proof for that replica:
 *    the peer refuses the event as unsigned and it is reported, as every refusal is. A proof
 *    that carried such an event would be refused for it again at every resend.
 * 2. Bounded: a server leaves out at most MAX_ELIDED_RUN signatures in a row, of small events
 *    only (MAX_ELIDED_DATA), so a proof holds at most MAX_ELIDED_RUN + 1 events of a replica,
 *    and the batch leaves PROOF_RESERVE bytes for it (proofReserve).
 * 3. Nothing here changes what the batch holds or covers: a proof only adds to its message.
 * 4. A history page (pageProof) is any slice of the total order, one stream's or reversed: an
 *    elided event of it is covered where a later event of the page, in the total order, links
 *    to it; else its chain goes in the proof, up to a signed event or one the page holds. Its
 *    receiver verifies page and proof together in the total order (within a replica, the seq
 *    order). A page whose proof would pass MAX_PROOF_EVENTS is cut before the first event that
 *    needs more, and says `more`.
 */
import type { StoredEventRecord } from '../core/events.ts';
import {
  type ChainLookup,
  INTEGRITY_META,
  isChained,
  isElided,
  isSigned,
  MAX_ELIDED_RUN,
  parseLink,
} from '../core/integrity.ts';
import { BATCH_ENVELOPE_BYTES, KEY_WIRE_BYTES } from '../core/sync.ts';
import { dataTextOf, wireSize } from './event-codec.ts';
import { MAX_ELIDED_DATA } from './meta-columns.ts';

/** Bytes a batch leaves for its proof (invariant 2): the run and its cover, with their fields. */
export const PROOF_RESERVE = (MAX_ELIDED_RUN + 1) * (MAX_ELIDED_DATA + 1024);

/** Slots past the batch a proof looks at for one replica (strict events between included). */
const MAX_PROOF_STEPS = 4 * (MAX_ELIDED_RUN + 1);

/**
 * The bytes to take off the message budget of a page that holds an elided event, for a proof:
 * PROOF_RESERVE where the messages are large enough to spare it; else 0.
 */
export function proofReserve(maxMessageBytes: number): number {
  return maxMessageBytes < 4 * PROOF_RESERVE ? 0 : PROOF_RESERVE;
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
  /** Whether an event may go to the peer now (invariant 1). */
  usable: (event: StoredEventRecord) => boolean = () => true,
): Promise<StoredEventRecord[] | undefined> {
  const last = new Map<string, StoredEventRecord>();
  for (const e of events) if (isChained(e)) last.set(e.replica, e);
  const proof: StoredEventRecord[] = [];
  let bytes = BATCH_ENVELOPE_BYTES;
  for (const tail of last.values()) {
    if (!isElided(tail)) continue;
    const chain = await coverOf(tail, lookup);
    if (chain === undefined || !chain.every(usable)) continue;
    for (const e of chain) bytes += wireSize(e, dataTextOf(e)) + KEY_WIRE_BYTES;
    if (bytes > room) break;
    proof.push(...chain);
  }
  return proof.length === 0 ? undefined : proof;
}

/**
 * The chain after `tail` up to its first signed event (invariant 1), or to the first event of
 * `held` (a history page that holds it: invariant 4), or undefined.
 */
async function coverOf(
  tail: StoredEventRecord,
  lookup: Pick<ChainLookup, 'eventAt'>,
  held?: ReadonlySet<string>,
): Promise<StoredEventRecord[] | undefined> {
  const chain: StoredEventRecord[] = [];
  for (let seq = tail.seq + 1; seq <= tail.seq + MAX_PROOF_STEPS; seq++) {
    const next = await lookup.eventAt(tail.replica, seq);
    if (next === undefined) return undefined;
    if (!isChained(next)) continue;
    if (held?.has(next.id) === true) return chain;
    chain.push(next);
    if (isSigned(next)) return chain;
    if (!isElided(next) || chain.length > MAX_ELIDED_RUN + 1) return undefined;
  }
  return undefined;
}

/**
 * The proof of a history page (invariant 4): the events that cover its elided events, and how
 * many of the page's events (in the order given) it proves: the page is cut there.
 */
export async function pageProof(
  page: readonly StoredEventRecord[],
  lookup: Pick<ChainLookup, 'eventAt'>,
  maxEvents: number,
): Promise<{ proof: StoredEventRecord[]; proven: number }> {
  if (!page.some(isElided)) return { proof: [], proven: page.length };
  const inPage = new Set(page.map((e) => e.id));
  /** The seqs some later event of the page links to, by replica (in the total order). */
  const linked = new Map<string, Set<number>>();
  for (const e of page) {
    const link = parseLink(e.meta?.[INTEGRITY_META.link]);
    if (link === undefined || !isChained(e)) continue;
    let seqs = linked.get(e.replica);
    if (seqs === undefined) {
      seqs = new Set();
      linked.set(e.replica, seqs);
    }
    seqs.add(link.seq);
  }
  const proof: StoredEventRecord[] = [];
  const taken = new Set<string>();
  for (let i = 0; i < page.length; i++) {
    const e = page[i]!;
    if (!isElided(e) || linked.get(e.replica)?.has(e.seq) === true) continue;
    const chain = await coverOf(e, lookup, inPage);
    const fresh = chain?.filter((c) => !taken.has(c.id)) ?? [];
    if (proof.length + fresh.length > maxEvents) return { proof, proven: i };
    for (const c of fresh) {
      taken.add(c.id);
      proof.push(c);
    }
  }
  return { proof, proven: page.length };
}
