/**
 * Re-stamping, pure: giving a replica's own not-yet-shared events new HLCs once it learns that
 * the clock that stamped them was ahead (a server's time at handshake, or its own wall clock set
 * right). A storage adapter reads what the plan needs and writes what it returns, in one
 * transaction (adapter.ts `restamp`).
 *
 * Invariants:
 * 1. Only candidates move: this replica's own events with seq > sharedSeq (never handed to any
 *    peer, so no other replica holds them) whose HLC wall time is beyond `now + maxClockAheadMs`.
 *    Every other event keeps its HLC, and nothing but hlc, time and cursor changes.
 * 2. Causal order is kept: a moved event's new HLC is above the HLC of every event at a lower
 *    local position (what the replica held when it was appended), moved or not.
 * 3. Relative timing is kept where it can be: the new wall time is the old one plus `shift`
 *    (the correction learned from a server; without one, the shift that puts the latest
 *    candidate at `now`), capped at `now`, and raised only as far as invariant 2 needs.
 * 4. Never later than before: a new HLC is at most the old one (the shift is <= 0, and what an
 *    event follows was below it when it was stamped).
 * 5. Own events keep strictly increasing HLCs in seq order.
 * 6. Idempotent: planning again over the result moves nothing.
 * 7. A moved event, and every own event after it, loses its signature and chain link (meta
 *    $sig, $link, $key: core/integrity.ts); they are signed again before they leave. Nothing
 *    else changes on an event that does not move.
 */
import type { LocalRecord, StoredEventRecord } from './events.ts';
import { decodeHlc, encodeHlc, type HlcState, hlcWall, maxHlc, tick } from './hlc.ts';
import { Cursor } from './ids.ts';
import { isSigned, withoutSignature } from './integrity.ts';

export interface RestampInput {
  replica: string;
  /** Own events up to this seq were handed to a peer: they are never moved. */
  sharedSeq: number;
  /** This replica's corrected wall clock (ms). */
  now: number;
  maxClockAheadMs: number;
  /** The correction a server reported (ms, negative when our clock was ahead). */
  shift?: number;
  /** The greatest HLC among the records at positions below tail[0] (none: the tail starts at 1). */
  before: HlcState | undefined;
  /** Every record from the first candidate's position to the head, in position order. */
  tail: readonly LocalRecord[];
}

export interface RestampPlan {
  /** The moved records (same positions), in position order. */
  changed: LocalRecord[];
}

/** Whether a record is a candidate (invariant 1). */
export function isRestampCandidate(
  event: StoredEventRecord,
  input: Pick<RestampInput, 'replica' | 'sharedSeq' | 'now' | 'maxClockAheadMs'>,
): boolean {
  return (
    event.replica === input.replica &&
    event.seq > input.sharedSeq &&
    hlcWall(event.hlc) > input.now + input.maxClockAheadMs
  );
}

export function planRestamp(input: RestampInput): RestampPlan {
  const now = Math.floor(input.now);
  let latest = Number.NEGATIVE_INFINITY;
  for (const r of input.tail) {
    if (isRestampCandidate(r.event, input)) latest = Math.max(latest, hlcWall(r.event.hlc));
  }
  if (latest === Number.NEGATIVE_INFINITY) return { changed: [] };
  const shift = Math.min(0, Math.floor(input.shift ?? now - latest));
  let held: HlcState = input.before ?? { wall: Number.NEGATIVE_INFINITY, counter: 0 };
  const changed: LocalRecord[] = [];
  for (const record of input.tail) {
    const e = record.event;
    const old = decodeHlc(e.hlc);
    if (!isRestampCandidate(e, input)) {
      held = maxHlc(held, old);
      continue;
    }
    // tick: the target wall time, or just after everything held when that is not above it.
    const next = tick(held, Math.max(0, Math.min(old.wall + shift, now)));
    held = next;
    if (next.wall === old.wall && next.counter === old.counter) continue;
    const hlc = encodeHlc(next);
    const event: StoredEventRecord = {
      ...e,
      hlc,
      time: next.wall,
      cursor: Cursor.make(hlc, e.replica, e.seq),
    };
    changed.push({ event, pos: record.pos });
  }
  return { changed: unsignedFrom(changed, input) };
}

/**
 * Invariant 7: a moved event's signature no longer holds, nor the links of the own events after
 * it (core/integrity.ts). None of them was handed to a peer, so they all lose their signatures
 * here, in the same rewrite, and are signed again before they leave (store/signing.ts).
 */
function unsignedFrom(changed: LocalRecord[], input: RestampInput): LocalRecord[] {
  if (changed.length === 0) return changed;
  const from = Math.min(...changed.map((r) => r.event.seq));
  const moved = new Map(changed.map((r) => [r.pos, r]));
  const out: LocalRecord[] = [];
  for (const record of input.tail) {
    const r = moved.get(record.pos) ?? record;
    const e = r.event;
    const own = e.replica === input.replica && e.seq >= from && e.seq > input.sharedSeq;
    if (own && isSigned(e)) out.push({ pos: r.pos, event: withoutSignature(e) });
    else if (moved.has(record.pos)) out.push(r);
  }
  return out;
}
