/**
 * Retention, pure (docs/storage-growth.md part 2): how far a partial replica may move its horizon
 * H. The store gathers the inputs (store/retention.ts); this module only decides.
 *
 * Invariants:
 * 1. Nothing unsynced is trimmed: H sorts before every event at a position the server has not
 *    acknowledged (`unackedMin`), so every event at or below H is one the server holds. Only the
 *    server's checkpoint counts, never a peer's: a peer may be another partial replica.
 * 2. The policy keeps at least `events` events above H, every event of the last `days` days, and
 *    the newest events whose estimated sizes add up to at most `bytes` (each one given: the
 *    largest keep wins). No policy, or an empty one, trims nothing.
 * 3. H never moves back: a bound at or below the current horizon trims nothing.
 * 4. The answer is an exclusive bound: the store trims up to the largest held cursor below it.
 * 5. An event's size for `bytes` is the UTF-8 length of its stored record's JSON (eventBytes):
 *    an estimate of what it costs uncompressed, not of the bytes the browser charges for it
 *    (indexes, compression and the engine's overhead differ per browser).
 */
import { lastHlcOf } from './hlc.ts';
import { jsonByteLength } from './json.ts';

export interface RetainPolicy {
  /** Keep at least this many of the newest events (in the total order) in full. */
  events?: number;
  /** Keep every event stamped within this many days of now in full. */
  days?: number;
  /**
   * Keep the newest events whose sizes add up to at most this many bytes in full (invariant 5:
   * the JSON size of each stored event, an estimate of the log's payload, not of disk use).
   */
  bytes?: number;
}

export interface RetentionInputs {
  policy: RetainPolicy | undefined;
  /** The store's wall clock (ms). */
  now: number;
  /**
   * The cursor of the (events + 1)-th newest event held in full, for policy.events; undefined
   * when the log holds no more than that many.
   */
  countCursor: string | undefined;
  /**
   * For policy.bytes: the cursor of the newest event that does not fit in the budget with every
   * newer one (bytesCursor); undefined when every event held in full fits.
   */
  bytesCursor?: string | undefined;
  /**
   * The smallest cursor among positions the server has not acknowledged (invariant 1); undefined
   * when it holds every position. `null`: no server has acknowledged anything (nothing is trimmed).
   */
  unackedMin: string | undefined | null;
  /** The log's horizon now (undefined: a full log). */
  horizon: string | undefined;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** An exclusive bound just above `cursor` (the smallest string after it). */
const justAbove = (cursor: string) => `${cursor}\u0000`;

/**
 * The exclusive bound H must sort below (invariant 4), or undefined when nothing may be trimmed.
 */
export function horizonBound(input: RetentionInputs): string | undefined {
  const { policy } = input;
  if (
    policy === undefined ||
    (policy.events === undefined && policy.days === undefined && policy.bytes === undefined)
  ) {
    return undefined;
  }
  if (input.unackedMin === null) return undefined;
  const bounds: string[] = [];
  if (input.unackedMin !== undefined) bounds.push(input.unackedMin);
  if (policy.events !== undefined) {
    if (input.countCursor === undefined) return undefined;
    bounds.push(justAbove(input.countCursor));
  }
  if (policy.bytes !== undefined) {
    if (input.bytesCursor === undefined) return undefined;
    bounds.push(justAbove(input.bytesCursor));
  }
  if (policy.days !== undefined) {
    // Every cursor stamped after the cutoff sorts above the last HLC at or before it.
    bounds.push(justAbove(lastHlcOf(input.now - policy.days * DAY_MS)));
  }
  let bound = bounds[0]!;
  for (const b of bounds) if (b < bound) bound = b;
  // Invariant 3.
  if (input.horizon !== undefined && bound <= justAbove(input.horizon)) return undefined;
  return bound;
}

/** Whether a policy is well formed: counts and days are finite and not negative. */
export function validRetainPolicy(policy: RetainPolicy): boolean {
  const ok = (n: number | undefined) => n === undefined || (Number.isFinite(n) && n >= 0);
  return ok(policy.events) && ok(policy.days) && ok(policy.bytes);
}

/** An event's size for policy.bytes (invariant 5): its stored record's JSON, in UTF-8 bytes. */
export function eventBytes(event: object): number {
  return jsonByteLength(event);
}

/**
 * Walks the newest events, newest first, adding their sizes: the cursor of the first one that
 * takes the total past `budget` (it and every older event may go), or undefined when all fit.
 */
export function bytesCursor(
  newestFirst: Iterable<{ cursor: string; bytes: number }>,
  budget: number,
): string | undefined {
  let total = 0;
  for (const { cursor, bytes } of newestFirst) {
    total += bytes;
    if (total > budget) return cursor;
  }
  return undefined;
}
