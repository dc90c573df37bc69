/**
 * The events of the `$keyring` stream, which carry an encrypted space's keys through the log
 * (store/encryption.ts): never sealed, since they are what opens the rest; every key in them
 * is wrapped (core/key-wrap.ts), so the server sees key ids, stream names and ciphertext.
 *
 *   KeyAdded       { kid, wrapped: { <older kid>: text } }      a space key rotation
 *   StreamKey      { stream, kid, under, wrapped }               a stream's data key, wrapped
 *                                                                under space key `under`
 *   StreamShredded { stream, kids }                              the stream is erased
 *
 * Invariants:
 * 1. Parsing trusts nothing: an event of another shape is not a keyring event (undefined).
 * 2. A StreamKey whose data is null is erased: its key is gone. An erased copy has the same id,
 *    envelope and cursor as the original, and its canonical JSON sorts first ("data":null before
 *    "data":{…}), so core/copies.ts keeps the erased copy wherever the two meet, client or
 *    server, without knowing about keys: an erasure spreads like any winning copy.
 */
import type { StoredEventRecord } from './events.ts';
import { withoutIntegrity } from './integrity-meta.ts';
import { KEYRING_STREAM } from './sealing.ts';

export const KEY_ADDED = 'KeyAdded';
export const STREAM_KEY = 'StreamKey';
export const STREAM_SHREDDED = 'StreamShredded';

export interface KeyAdded {
  kind: 'key-added';
  kid: string;
  wrapped: Record<string, string>;
}

export interface StreamKey {
  kind: 'stream-key';
  stream: string;
  kid: string;
  under: string;
  wrapped: string;
}

export interface StreamKeyErased {
  kind: 'stream-key-erased';
}

export interface StreamShredded {
  kind: 'stream-shredded';
  stream: string;
  kids: string[];
}

export type KeyringEvent = KeyAdded | StreamKey | StreamKeyErased | StreamShredded;

const text = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/** The keyring event `event` is, or undefined (invariant 1). */
export function keyringEventOf(event: {
  stream: string;
  type: string;
  data: unknown;
}): KeyringEvent | undefined {
  if (event.stream !== KEYRING_STREAM) return undefined;
  const data = event.data as Record<string, unknown> | null;
  if (event.type === STREAM_KEY && data === null) return { kind: 'stream-key-erased' };
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  switch (event.type) {
    case KEY_ADDED: {
      const { kid, wrapped } = data;
      if (!text(kid) || typeof wrapped !== 'object' || wrapped === null || Array.isArray(wrapped)) {
        return undefined;
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(wrapped)) if (text(v)) out[k] = v;
      return { kind: 'key-added', kid, wrapped: out };
    }
    case STREAM_KEY: {
      const { stream, kid, under, wrapped } = data;
      if (!text(stream) || !text(kid) || !text(under) || !text(wrapped)) return undefined;
      return { kind: 'stream-key', stream, kid, under, wrapped };
    }
    case STREAM_SHREDDED: {
      const { stream, kids } = data;
      if (!text(stream) || !Array.isArray(kids)) return undefined;
      return { kind: 'stream-shredded', stream, kids: kids.filter(text) };
    }
    default:
      return undefined;
  }
}

/**
 * Whether a lost copy is a StreamKey that lost to its erased copy (invariant 2): a shred
 * spreading, neither a conflict to report nor a sign of a cloned replica (core/append.ts 8).
 */
export function isErasure(lost: {
  code: string;
  keptId: string;
  event: StoredEventRecord;
}): boolean {
  return (
    lost.code === 'ID_CONFLICT' &&
    lost.keptId === lost.event.id &&
    keyringEventOf(lost.event)?.kind === 'stream-key'
  );
}

/**
 * Whether an event is the erased copy of a StreamKey (invariant 2). Its origin's signature no
 * longer holds for it (core/integrity.ts invariant 7): whoever shreds writes it.
 */
export function isErasedCopy(event: { stream: string; type: string; data: unknown }): boolean {
  return event.stream === KEYRING_STREAM && event.type === STREAM_KEY && event.data === null;
}

/**
 * The erased copy of a StreamKey event (invariant 2). Without the origin's signature fields
 * (core/integrity.ts), which no longer hold for it: every replica erases to the same copy,
 * whichever version of the event it held.
 */
export function erasedCopy(event: StoredEventRecord): StoredEventRecord {
  const erased: StoredEventRecord = { ...event, data: null };
  const meta = withoutIntegrity(event.meta);
  if (meta === undefined) delete erased.meta;
  else erased.meta = meta;
  return erased;
}
