/**
 * A re-stamp's readwrite transaction on the IndexedDB log (adapter.ts `restamp`): the plan's
 * reads go through the transaction's own segment store, then the segments holding a moved event
 * are deleted and their events (moved or not) placed again among the others, as a new write is
 * (core/segment-plan.ts planWrite: a new cursor inside a stored segment splits it), and the counters
 * get the new largest cursor and the clock set back to it.
 *
 * Invariant (indexeddb.ts 1): nothing but requests of this transaction is awaited.
 */

import type { LocalRecord } from '../core/events.ts';
import { compareHlc, decodeHlc } from '../core/hlc.ts';
import { planRestamp } from '../core/restamp.ts';
import { unpackSegment } from '../core/segments.ts';
import type { RestampRequest, RestampResult } from './adapter.ts';
import { readCursorRange, readPosRange } from './idb-reads.ts';
import { appKey, asCounters, KEY_COUNTERS, plainCounters } from './idb-schema.ts';
import { readSegments, request, rewriteSegments, segmentKeysOf } from './idb-segments.ts';
import { hlcOfCursor, readRestampInput } from './restamp-reads.ts';
import { minCursorOf, REWRITES_META_KEY, withRewrite } from './rewrites.ts';

export async function restampInTransaction(
  tx: IDBTransaction,
  replica: string,
  restamp: RestampRequest,
): Promise<RestampResult> {
  const segments = tx.objectStore('segments');
  const meta = tx.objectStore('meta');
  const counters = asCounters(await request(meta.get(KEY_COUNTERS)));
  const input = await readRestampInput(
    {
      readByCursor: (query) => readCursorRange(segments, query, query.limit),
      readByPos: (afterPos, limit) => readPosRange(segments, afterPos, limit),
    },
    replica,
    counters.pos,
    restamp,
  );
  if (input === undefined) return { changed: [] };
  const { changed } = planRestamp(input);
  if (changed.length === 0) return { changed: [] };
  const keys = await segmentKeysOf(segments, changed);
  const moved = new Map(changed.map((r) => [r.pos, r]));
  const records: LocalRecord[] = [];
  const stored = await readSegments(segments, keys);
  for (const segment of stored) {
    for (const r of unpackSegment(segment)) records.push(moved.get(r.pos) ?? r);
  }
  const placed = await rewriteSegments(segments, stored, records);
  const top = decodeHlc(hlcOfCursor(placed.maxCursor));
  const clock = compareHlc(top, counters.clock) < 0 ? top : counters.clock;
  meta.put(plainCounters({ ...counters, clock }, placed.maxCursor), KEY_COUNTERS);
  const from = minCursorOf(changed)!;
  // For a handle that misses this handle's notice (rewrites.ts).
  // Under the key getMeta reads (app: prefix).
  const key = appKey(REWRITES_META_KEY);
  meta.put(withRewrite(await request(meta.get(key)), from), key);
  return { changed, from };
}
