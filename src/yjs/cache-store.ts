/**
 * The open cache of a bound document, read and written through the store (EventStore.local and
 * readSince). bind.ts decides when; this module does the reading, merging and writing, and never
 * touches a Y.Doc (so a cache can be refreshed after the binding was destroyed).
 *
 * Invariants (bind.ts invariants 8-9, cache.ts invariants 1-3):
 * 1. An open from the cache yields its state plus every well-formed Yjs event of the stream
 *    received after its position that the cache's covers do not include, in receive order.
 * 2. A refresh writes a state that includes every Yjs event up to the position it writes: the
 *    doc's state of one instant, plus every event since the previous position it may lack.
 * 3. Failures are swallowed or reported, never thrown: the cache is never needed.
 */
import * as Y from 'yjs';
import type { EventStore } from '../store/types.ts';
import { type DocCache, decodeCache, encodeCache } from './cache.ts';
import { type Covers, mergeYEvent, payloadOf, YJS_TYPES } from './events.ts';

/** After an open from the cache, rewrite it when the scan passed this many positions. */
const CACHE_STALE_POSITIONS = 1000;

type Store = Pick<EventStore<unknown>, 'readSince' | 'local' | 'replicaId'>;

/** What an open from the cache yields (invariant 1). */
export interface CachedOpen {
  /** Yjs updates to apply: the cached state first. */
  updates: Uint8Array[];
  covers: Covers;
  sinceSnapshot: number;
  /** Update events applied since the cache, plus one when the cache is stale: rewrite it. */
  sinceCache: number;
  /** Ids of the events applied on top of the cached state (live duplicates are skipped). */
  applied: Set<string>;
  /** The receive position the result holds every Yjs event of the stream up to. */
  position: number;
}

async function readCache(store: Store, key: string): Promise<DocCache | undefined> {
  try {
    return decodeCache(await store.local.get(key), store.replicaId);
  } catch {
    return undefined; // a store without a usable cache still opens (cache.ts invariant 3)
  }
}

/** The cached state and the events received since it; undefined when there is no usable cache. */
export async function openFromCache(
  store: Store,
  options: { key: string; stream: string; onError: (error: unknown) => void },
): Promise<CachedOpen | undefined> {
  const cache = await readCache(store, options.key);
  if (cache === undefined) return undefined;
  const since = await store.readSince(cache.position, { stream: options.stream, types: YJS_TYPES });
  if (since.head < cache.position) return undefined; // another log (cache.ts invariant 3)
  const opened: CachedOpen = {
    updates: [cache.state],
    covers: { ...cache.covers },
    sinceSnapshot: cache.sinceSnapshot,
    sinceCache: 0,
    applied: new Set(),
    position: since.position,
  };
  for (const event of since.events) {
    try {
      // A snapshot is merged even if the cache holds it already: it may hold a failed append
      // (bind.ts invariant 7).
      const kind = mergeYEvent(event, opened.updates, opened.covers);
      if (kind === undefined) continue;
      opened.applied.add(event.id);
      opened.sinceCache += 1;
      opened.sinceSnapshot = kind === 'update' ? opened.sinceSnapshot + 1 : 0;
    } catch (error) {
      options.onError(error);
    }
  }
  if (since.position - cache.position >= CACHE_STALE_POSITIONS) opened.sinceCache += 1;
  return opened;
}

/** Writes a cache whose state is known to hold everything up to its position; failures ignored. */
export function writeCache(store: Store, key: string, cache: DocCache): void {
  store.local.set(key, encodeCache(cache)).catch(() => {});
}

/** One instant of a bound document, to refresh its cache from. */
export interface DocInstant {
  state: Uint8Array;
  covers: Covers;
  sinceSnapshot: number;
  /** Payloads of the binding's own appends whose events may not be covered yet: in `state`. */
  own: ReadonlySet<string>;
}

/**
 * Writes the cache as `instant` plus the events received since position `from` that it may lack
 * (invariant 2). Resolves with the position written, or undefined when nothing was written.
 */
export async function refreshCache(
  store: Store,
  options: { key: string; stream: string; from: number; instant: DocInstant },
): Promise<number | undefined> {
  const { instant } = options;
  const parts = [instant.state];
  const covers: Covers = { ...instant.covers };
  try {
    const since = await store.readSince(options.from, { stream: options.stream, types: YJS_TYPES });
    if (since.head < options.from) return undefined;
    for (const event of since.events) {
      const payload = payloadOf(event);
      // The binding's own appends are in the state already (re-merging them would be harmless).
      if (payload !== undefined && instant.own.has(payload)) continue;
      try {
        mergeYEvent(event, parts, covers);
      } catch {
        // Malformed: the live path reports it; the cache just leaves it out.
      }
    }
    const state = parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts);
    const value = encodeCache({
      replica: store.replicaId,
      position: since.position,
      state,
      covers,
      sinceSnapshot: instant.sinceSnapshot,
    });
    await store.local.set(options.key, value);
    return since.position;
  } catch {
    return undefined; // the cache is optional (cache.ts invariant 3): the next open rescans
  }
}
