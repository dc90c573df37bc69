/**
 * The log's rewrites, kept in its meta (`log.rewrites`): each write that took records out or
 * moved them (discard, restamp) adds `{ n, from }`, the smallest cursor it touched, in its own
 * transaction. A handle that missed the other handle's notice (adapter.ts onRemoteWrite: a hint
 * that may be dropped) finds it here when it reads the log again (the worker's poll).
 *
 * Invariants:
 * 1. `n` grows by one with each rewrite; the REWRITES_KEPT latest are kept.
 * 2. A value of the wrong shape reads as no rewrite at all.
 */
import type { JsonValue, LocalRecord } from '../core/events.ts';

export const REWRITES_META_KEY = 'log.rewrites';
export const REWRITES_KEPT = 32;

export interface Rewrite {
  n: number;
  from: string;
}

export function parseRewrites(value: unknown): Rewrite[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (r): r is Rewrite =>
      typeof r === 'object' &&
      r !== null &&
      Number.isSafeInteger((r as Rewrite).n) &&
      typeof (r as Rewrite).from === 'string',
  );
}

/** The smallest cursor of `records`: where a rewrite of them begins (adapter.ts onRemoteWrite). */
export function minCursorOf(records: readonly LocalRecord[]): string | undefined {
  let min: string | undefined;
  for (const r of records) if (min === undefined || r.event.cursor < min) min = r.event.cursor;
  return min;
}

/** The stored list with one more rewrite from `from` (invariant 1). */
export function withRewrite(stored: unknown, from: string): JsonValue {
  const list = parseRewrites(stored);
  const n = (list[list.length - 1]?.n ?? 0) + 1;
  return [...list, { n, from }].slice(-REWRITES_KEPT).map((r) => ({ n: r.n, from: r.from }));
}

/** The smallest cursor of the rewrites after `seen`, and the latest `n` (undefined: none new). */
export function rewritesAfter(
  stored: unknown,
  seen: number,
): { from: string; n: number } | undefined {
  let from: string | undefined;
  let n = seen;
  for (const r of parseRewrites(stored)) {
    if (r.n <= seen) continue;
    if (from === undefined || r.from < from) from = r.from;
    if (r.n > n) n = r.n;
  }
  return from === undefined ? undefined : { from, n };
}
