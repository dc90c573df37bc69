/**
 * The sending side's view of its peer's clock (session-sender.ts invariants 10 and 11): where
 * its stream to that peer must stop (the horizon), what a clock refusal changes, when to look
 * again, and which own events in flight a refusal may name.
 *
 * Invariants:
 * 1. Between peers the horizon is the peer's clock as its hello showed it (relative to ours)
 *    plus its tolerance (core/clock-skew.ts peerHorizon), lowered by each clock refusal to at
 *    most what the peer said it accepted.
 * 2. Toward a server there is no horizon until it refuses one of ours for the clock, and again
 *    none after the next clock change (the correction and re-stamp that refusal brings).
 * 3. A held stream is looked at again once the peer's clock may have reached the held event,
 *    within a minute at most (a clock may also jump). Each look also asks the peer its clock (a
 *    ping; its pong's time replaces what its hello showed): a clock set right after the hello, by
 *    NTP or by a server's correction, is seen within that minute, not once time has passed by as
 *    much as it was wrong.
 * 4. The peer's clock is measured against this side's raw clock, which a server's correction of
 *    ours does not move (`now` is that clock). Measured against the corrected clock, a correction
 *    after the peer's hello shifted the peer's clock with ours: corrected three hours back, a
 *    sender took an honest peer's clock for three hours slow and held what it may take until its
 *    next look, a minute later (the link stayed `syncing` meanwhile).
 */
import { DEFAULT_MAX_CLOCK_AHEAD_MS, peerHorizon } from '../core/clock-skew.ts';
import { hlcWall } from '../core/hlc.ts';
import type { Hlc } from '../core/ids.ts';

export type Schedule = (fn: () => void, ms: number) => () => void;

const defaultSchedule: Schedule = (fn, ms) => {
  const handle = setTimeout(fn, ms);
  return () => clearTimeout(handle);
};

export class ClockHold {
  private aheadMs = 0;
  private helloAheadMs = 0;
  private toleranceMs = DEFAULT_MAX_CLOCK_AHEAD_MS;
  private server = false;
  private refusedByServer = false;
  private cancelWake: (() => void) | undefined;
  /** Own events in the batches in flight, by id, with their seq (what a refusal names). */
  private readonly ownInFlight = new Map<string, number>();

  private readonly now: () => number;
  private readonly schedule: Schedule;

  /** `now`: this side's raw clock, which a server's correction does not move (invariant 4). */
  constructor(now: () => number, schedule: Schedule = defaultSchedule) {
    this.now = now;
    this.schedule = schedule;
  }

  /**
   * The peer's clock from its hello (invariant 1): `time`, read now, or undefined to take it as
   * ours (a server takes a client's clock as its own: the client corrects to it).
   */
  setPeer(peer: {
    server: boolean;
    time: number | undefined;
    toleranceMs: number | undefined;
  }): void {
    this.server = peer.server;
    this.aheadMs = peer.time === undefined ? 0 : peer.time - this.now();
    this.helloAheadMs = this.aheadMs;
    this.toleranceMs = peer.toleranceMs ?? DEFAULT_MAX_CLOCK_AHEAD_MS;
  }

  /** The greatest HLC the stream may send now, or undefined for none (invariants 1, 2). */
  horizon(): Hlc | undefined {
    if (this.server && !this.refusedByServer) return undefined;
    return peerHorizon(this.now(), this.aheadMs, this.toleranceMs);
  }

  /** The peer refused event `eventId` for the clock; returns its seq if it is one of ours. */
  refused(eventId: string, limit: number): number | undefined {
    this.aheadMs = Math.min(this.aheadMs, limit - this.toleranceMs - this.now());
    if (this.server) this.refusedByServer = true;
    return this.ownInFlight.get(eventId);
  }

  /**
   * The peer's clock read `time` when it answered our ping (invariant 3): newer than its hello or
   * a refusal. It leans low by the transit time, so the horizon errs on the safe side.
   */
  peerTime(time: number): void {
    this.aheadMs = time - this.now();
  }

  /** Our clock was corrected, or events re-stamped (invariant 2). */
  clockChanged(): void {
    if (!this.server) return;
    this.aheadMs = this.helloAheadMs;
    this.refusedByServer = false;
  }

  /**
   * Invariant 3: `look` runs once the peer's clock may have reached `held`, or within a minute;
   * it asks the peer's clock and pumps.
   */
  wakeFor(held: string, horizon: string, look: () => void): void {
    this.cancelWake?.();
    const wait = Math.min(60_000, Math.max(10, hlcWall(held) - hlcWall(horizon)));
    this.cancelWake = this.schedule(() => {
      this.cancelWake = undefined;
      look();
    }, wait);
  }

  /** Nothing is held: the look armed by wakeFor is not due. */
  noWake(): void {
    this.cancelWake?.();
    this.cancelWake = undefined;
  }

  noteSent(events: readonly { id: string; replica: string; seq: number }[], own: string): void {
    for (const e of events) if (e.replica === own) this.ownInFlight.set(e.id, e.seq);
  }

  /** Nothing in flight: no refusal can name what was sent. */
  noteAllAcked(): void {
    this.ownInFlight.clear();
  }

  stop(): void {
    this.noWake();
    this.ownInFlight.clear();
  }
}
