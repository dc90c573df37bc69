/**
 * The store's local cache (EventStore.local, see LocalCache in types.ts): JSON values kept in the
 * log's meta, beside the events but never one of them.
 *
 * Invariant (numbered as in store.ts, whose list the tests cite):
 * 6. The local cache lives in the log's meta under LOCAL_META_PREFIX, a prefix no other meta
 *    key uses: it is not an event, so read, subscribe and sync never see it.
 */
import { ValidationError } from '../core/errors.ts';
import type { JsonValue } from '../core/events.ts';
import { assertJsonValue, jsonByteLength } from '../core/json.ts';
import type { EventLog } from '../storage/adapter.ts';
import type { LocalCache } from './types.ts';

/** Meta keys of the local cache (invariant 6). */
export const LOCAL_META_PREFIX = 'local:';
/**
 * Local cache keys `<prefix><stream>` hold what was made from one stream (the Yjs binding caches
 * a stream's document under `chronicle.yjs:<stream>`): store.shred clears them (shred.ts).
 */
export const STREAM_CACHE_PREFIXES: readonly string[] = ['chronicle.yjs:'];
export const LOCAL_KEY_MAX_LENGTH = 200;
/** The largest JSON text a local cache value may have: a merged Yjs state of a large document. */
export const LOCAL_VALUE_MAX_BYTES = 16 * 1024 * 1024;

/** The store's way of running an operation: refused once closed, awaited by close(). */
export type StoreGuard = <T>(operation: () => Promise<T>) => Promise<T>;

function localKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > LOCAL_KEY_MAX_LENGTH) {
    throw new ValidationError('key', `must be a string of 1 to ${LOCAL_KEY_MAX_LENGTH} characters`);
  }
  return LOCAL_META_PREFIX + key;
}

/** The local cache over `log`'s meta; every call goes through the store's guard. */
export function localCache(log: EventLog, guard: StoreGuard): LocalCache {
  return {
    get: (key) =>
      guard(async () => {
        const value = await log.getMeta(localKey(key));
        return value === null ? undefined : value; // set(key, null) clears
      }),
    set: (key, value) =>
      guard(async () => {
        const name = localKey(key);
        assertJsonValue(value, 'value');
        const bytes = jsonByteLength(value);
        if (bytes > LOCAL_VALUE_MAX_BYTES) {
          throw new ValidationError(
            'value',
            `encoded size ${bytes} bytes is over the limit of ${LOCAL_VALUE_MAX_BYTES}`,
          );
        }
        await log.setMeta(name, value as JsonValue);
      }),
  };
}
