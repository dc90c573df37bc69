/**
 * Hybrid logical clock (Kulkarni et al., 2014), pure: the wall clock is passed in.
 *
 * Invariants:
 * 1. `tick` never returns a timestamp lower than or equal to the state it starts from, and
 *    `receive` never a lower one: a replica's HLC never goes backwards, even when its wall clock does.
 * 2. After `receive(remote)` the clock is at least `remote` (so the next `tick` is past it), unless
 *    `remote` is more than `maxDrift` ahead of the wall clock: then the clock moves only to
 *    `now + maxDrift` and reports skew. Sync refuses events stamped beyond its tolerance before
 *    they get here (core/clock-skew.ts), so for what it accepts the clock follows fully; the
 *    cap is a last guard. The clock goes back only in a re-stamp (core/restamp.ts), which takes
 *    back HLCs no other replica has seen.
 * 3. `encode` is fixed-width, so string order equals (wall, counter) order.
 */
import type { Hlc } from './ids.ts';

export interface HlcState {
  /** Milliseconds; may run ahead of the wall clock. */
  readonly wall: number;
  /** Breaks ties inside one millisecond. */
  readonly counter: number;
}

export const HLC_ZERO: HlcState = { wall: 0, counter: 0 };
export const DEFAULT_MAX_CLOCK_DRIFT_MS = 24 * 60 * 60 * 1000;

const WALL_WIDTH = 11; // base 36: up to 36^11 ms, far past the year 10,000
const COUNTER_WIDTH = 5; // base 36: 60 million ticks inside one millisecond
/** Where the counter begins in an encoded HLC: after the wall digits and '-'. */
const COUNTER_START = WALL_WIDTH + 1;
/** The largest wall time and counter that encode within their fixed widths (invariant 3). */
export const HLC_WALL_MAX = 36 ** WALL_WIDTH - 1;
export const HLC_COUNTER_MAX = 36 ** COUNTER_WIDTH - 1;

export function encodeHlc(state: HlcState): Hlc {
  return `${state.wall.toString(36).padStart(WALL_WIDTH, '0')}-${state.counter
    .toString(36)
    .padStart(COUNTER_WIDTH, '0')}` as Hlc;
}

/**
 * The HLCs of one millisecond, `counter` first: `at(k)` is the HLC with counter `counter + k`,
 * the wall digits encoded once (a batch decoder builds thousands of HLCs a run).
 */
export function hlcsOfWall(wall: number, counter: number): (k: number) => Hlc {
  const prefix = `${wall.toString(36).padStart(WALL_WIDTH, '0')}-`;
  return (k) => `${prefix}${(counter + k).toString(36).padStart(COUNTER_WIDTH, '0')}` as Hlc;
}

/** The wall time of an encoded HLC, read without checking its form (for HLCs already valid). */
export function hlcWall(hlc: string): number {
  return Number.parseInt(hlc.slice(0, WALL_WIDTH), 36);
}

/** The counter of an encoded HLC, read without checking its form (for HLCs already valid). */
export function hlcCounter(hlc: string): number {
  return Number.parseInt(hlc.slice(COUNTER_START), 36);
}

/**
 * The HLC `i` ticks after `first` within its millisecond (what tick() gives within one append),
 * built without decoding `first`; the caller knows the counter does not overflow.
 */
export function hlcAfter(first: Hlc, i: number): Hlc {
  if (i === 0) return first;
  const counter = hlcCounter(first) + i;
  return `${first.slice(0, COUNTER_START)}${counter.toString(36).padStart(COUNTER_WIDTH, '0')}` as Hlc;
}

/**
 * The greatest HLC within wall time `wall` (floored, clamped to what encodes): an HLC string is
 * greater than it exactly when its wall time is above `wall` (invariant 3), so a batch is checked
 * for skew by comparing strings, without parsing each.
 */
export function lastHlcOf(wall: number): Hlc {
  // Below 0 every HLC is above: the empty string sorts before them all.
  if (wall < 0) return '' as Hlc;
  return encodeHlc({ wall: Math.min(HLC_WALL_MAX, Math.floor(wall)), counter: HLC_COUNTER_MAX });
}

export function decodeHlc(hlc: string): HlcState {
  const match = /^([0-9a-z]{11})-([0-9a-z]{5})$/.exec(hlc);
  if (!match) throw new TypeError(`not a hybrid logical clock value: ${hlc}`);
  return { wall: Number.parseInt(match[1]!, 36), counter: Number.parseInt(match[2]!, 36) };
}

export function isHlc(value: unknown): value is Hlc {
  return typeof value === 'string' && /^[0-9a-z]{11}-[0-9a-z]{5}$/.test(value);
}

export function compareHlc(a: HlcState, b: HlcState): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.counter - b.counter;
}

function bump(state: HlcState): HlcState {
  // Counter overflow borrows a millisecond rather than wrapping: order is kept (invariant 1).
  return state.counter >= HLC_COUNTER_MAX
    ? { wall: state.wall + 1, counter: 0 }
    : { wall: state.wall, counter: state.counter + 1 };
}

/** The timestamp for a local event. */
export function tick(state: HlcState, nowMs: number): HlcState {
  const now = Math.floor(nowMs);
  return now > state.wall ? { wall: now, counter: 0 } : bump(state);
}

export interface ReceiveResult {
  readonly state: HlcState;
  /** True when `remote` was more than maxDrift ahead of the wall clock and was not fully followed. */
  readonly skewed: boolean;
}

/** Moves the clock past a timestamp seen on a remote event (invariant 2). */
export function receive(
  state: HlcState,
  remote: HlcState,
  nowMs: number,
  maxDriftMs: number = DEFAULT_MAX_CLOCK_DRIFT_MS,
): ReceiveResult {
  const now = Math.floor(nowMs);
  const limit = now + maxDriftMs;
  let skewed = false;
  let target = remote;
  if (remote.wall > limit) {
    skewed = true;
    target = { wall: limit, counter: 0 };
  }
  if (compareHlc(state, target) >= 0) return { state, skewed };
  return { state: target, skewed };
}

/** The later of two states (a replica restarting from its log takes the largest HLC it holds). */
export function maxHlc(a: HlcState, b: HlcState): HlcState {
  return compareHlc(a, b) >= 0 ? a : b;
}
