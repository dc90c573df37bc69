/**
 * The clock tolerance, pure: how far ahead of a replica's own (corrected) wall clock an event may
 * be stamped and still be accepted, and how far a sender may go for a given peer.
 *
 * Invariants:
 * 1. A receiver accepts an event only when its HLC wall time is at most `now + maxClockAheadMs`
 *    of the receiver's own corrected clock; beyond, the event is refused (code CLOCK_SKEW), one
 *    event at a time, never the batch around it. Only "ahead" is refused: an event from a slow
 *    clock sorts early and moves nobody's clock.
 * 2. So every event a replica holds through sync was within the tolerance of its clock when it
 *    arrived, and its HLC follows each one fully: a far-future clock can move another replica's
 *    HLC by at most the tolerance, never by its own error.
 * 3. A sender never hands a peer an event beyond what that peer will accept (peerHorizon): the
 *    stream to that peer waits before it instead, so the event stays unshared and can be
 *    re-stamped (core/restamp.ts) once the sender's clock is set right.
 */
import { lastHlcOf } from './hlc.ts';
import type { Hlc } from './ids.ts';

/**
 * Default tolerance (ms): five minutes. Clocks of devices that sync (NTP, phone networks) agree
 * within seconds; a minute is the threshold at which a client corrects its clock from a server
 * (core/sync.ts clockCorrection), and a few minutes more leave room for a clock that drifted
 * since its last correction and for transit time, while keeping what one wrong clock can do to
 * other replicas' timestamps small.
 */
export const DEFAULT_MAX_CLOCK_AHEAD_MS = 5 * 60_000;

/** The greatest HLC a receiver whose corrected clock reads `now` accepts (invariant 1). */
export function acceptLimit(now: number, maxClockAheadMs: number): Hlc {
  return lastHlcOf(now + maxClockAheadMs);
}

/** Whether an event is stamped beyond `limit` (an acceptLimit or a peerHorizon). */
export function isBeyond(event: { hlc: string }, limit: Hlc): boolean {
  return event.hlc > limit;
}

/** The events of a batch split into those accepted and those refused for skew (invariant 1). */
export function splitByClock<E extends { hlc: string }>(
  events: readonly E[],
  limit: Hlc,
): { accepted: E[]; refused: E[] } {
  const accepted: E[] = [];
  const refused: E[] = [];
  for (const e of events) (isBeyond(e, limit) ? refused : accepted).push(e);
  return { accepted, refused };
}

/**
 * The greatest HLC a peer will accept (invariant 3), seen from this side: its clock is taken to
 * be `peerAheadMs` ahead of ours (from its hello: its time minus ours when the hello arrived,
 * which leans low by the transit time, so the horizon errs on the safe side).
 */
export function peerHorizon(now: number, peerAheadMs: number, maxClockAheadMs: number): Hlc {
  return lastHlcOf(now + peerAheadMs + maxClockAheadMs);
}
