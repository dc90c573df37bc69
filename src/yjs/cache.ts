/**
 * The local open cache of a bound document: its merged state and the receive position it was
 * taken at, kept in the store's never-synced local cache (EventStore.local). Pure: no store.
 *
 * Invariants:
 * 1. A cache promises that its state includes every Yjs event of the stream with a local
 *    position <= `position` on replica `replica`. Positions are dense per database and only
 *    grow, so every event the cache lacks has a position > `position`, wherever it sorts in the
 *    total order: readSince(position) finds it (a late update included).
 * 2. `covers` is true of `state` (events.ts invariant 1), so a snapshot written after an open
 *    from the cache keeps its promise.
 * 3. The cache is never needed for correctness: a missing, malformed, damaged (`hash`), or
 *    foreign (other replica id, or a position beyond the log's head) cache is ignored and the
 *    document is loaded from its events.
 */

import { decodeBase64, encodeBase64 } from '../core/base64.ts';
import type { JsonValue } from '../core/events.ts';
import { STREAM_CACHE_PREFIXES } from '../store/local-cache.ts';
import type { Covers } from './events.ts';

export const CACHE_VERSION = 1;
/** Stream names longer than this get no cache (local keys are at most 200 characters). */
const MAX_KEY_STREAM = 180;

export interface DocCache {
  replica: string;
  position: number;
  state: Uint8Array;
  covers: Covers;
  /** Update events since the last snapshot, so that snapshotEvery keeps counting across opens. */
  sinceSnapshot: number;
}

export function cacheKey(stream: string): string | undefined {
  // store.shred clears the cache of a shredded stream by this prefix (store/local-cache.ts).
  return stream.length > MAX_KEY_STREAM ? undefined : `${STREAM_CACHE_PREFIXES[0]}${stream}`;
}

/** FNV-1a, 32 bits: detects a damaged state before it reaches the document. */
function hash(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function encodeCache(cache: DocCache): JsonValue {
  return {
    v: CACHE_VERSION,
    replica: cache.replica,
    position: cache.position,
    state: encodeBase64(cache.state),
    bytes: cache.state.length,
    hash: hash(cache.state),
    covers: cache.covers,
    sinceSnapshot: cache.sinceSnapshot,
  };
}

const isCount = (n: unknown): n is number =>
  typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** The cache if it is well-formed, undamaged and this replica's (invariant 3); else undefined. */
export function decodeCache(value: unknown, replica: string): DocCache | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const c = value as Record<string, unknown>;
  if (c.v !== CACHE_VERSION || c.replica !== replica || typeof c.state !== 'string')
    return undefined;
  if (!isCount(c.position) || !isCount(c.bytes) || !isCount(c.sinceSnapshot)) return undefined;
  if (typeof c.covers !== 'object' || c.covers === null || Array.isArray(c.covers))
    return undefined;
  const covers: Covers = {};
  for (const [r, seq] of Object.entries(c.covers)) {
    if (!isCount(seq)) return undefined;
    covers[r] = seq;
  }
  let state: Uint8Array;
  try {
    state = decodeBase64(c.state);
  } catch {
    return undefined;
  }
  if (state.length !== c.bytes || hash(state) !== c.hash) return undefined;
  return { replica, position: c.position, state, covers, sinceSnapshot: c.sinceSnapshot };
}
