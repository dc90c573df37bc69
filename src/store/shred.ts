/**
 * Crypto-shredding (store.shred): a stream's data key is erased everywhere, so its events, which
 * keep their envelopes and ciphertext, can never be read again (stream-keys.ts).
 *
 * Invariants:
 * 1. shred records a StreamShredded event (stream, key ids; the envelope says who and when: the
 *    audit trail), then erases here before it resolves. Every other replica erases when that
 *    event reaches it (encryption.ts prepare), or when an erased StreamKey copy does: whichever
 *    comes first, through any peer.
 * 2. Erasing here: the StreamKey events become their erased copies (through ingest, so the
 *    copies rule spreads them: core/keyring-events.ts 2), the keys leave memory, every snapshot
 *    is deleted (a state folded from the stream holds its data) and every projection folds again,
 *    and the stream's local caches (STREAM_CACHE_PREFIXES) are cleared. It is idempotent: a
 *    replica that crashed midway erases again at open.
 * 3. Only an encrypted store shreds (store.ts checks): an event in clear has no key to erase.
 */
import { ValidationError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { erasedCopy, STREAM_SHREDDED } from '../core/keyring-events.ts';
import { KEYRING_STREAM } from '../core/sealing.ts';
import { validateStream } from '../core/validate.ts';
import type { EventLog } from '../storage/adapter.ts';
import type { Encryption } from './encryption.ts';
import { LOCAL_META_PREFIX, STREAM_CACHE_PREFIXES } from './local-cache.ts';

export interface ShredHost {
  encryption: Encryption;
  /** The store's view of the log (sealed-log.ts). */
  log: EventLog;
  projections: readonly string[];
  /** The store's ingest: durable, then watchers and projections hear of it. */
  ingest(events: StoredEventRecord[]): Promise<unknown>;
  /** Folds every projection again from the start. */
  refoldAll(): Promise<void>;
  /** After a raw write: the store's feed and watchers hear of it. */
  wrote(): Promise<void>;
  now(): number;
}

/** Invariant 2. `streams` as stored (pseudonyms when names are hidden). */
export async function eraseStreams(host: ShredHost, streams: readonly string[]): Promise<void> {
  const set = new Set(streams);
  host.encryption.view.forget(set);
  const held = host.encryption.streams.toErase(set);
  if (held.length > 0) await host.ingest(held.map(erasedCopy));
  for (const projection of host.projections) await host.log.deleteSnapshots(projection);
  for (const stream of set) {
    const name = host.encryption.nameOf(stream);
    for (const prefix of STREAM_CACHE_PREFIXES) {
      await host.log.setMeta(`${LOCAL_META_PREFIX}${prefix}${name}`, null);
    }
  }
  await host.refoldAll();
}

/** Invariants 1 and 3. */
export async function shredStream(host: ShredHost, stream: unknown): Promise<void> {
  const given = validateStream(stream);
  if (given === KEYRING_STREAM) {
    throw new ValidationError('stream', `${KEYRING_STREAM} is not shredded`);
  }
  // Keys and shreds go by the stream as stored: its pseudonym when names are hidden.
  const name = await host.encryption.envelopeStream(given);
  const { streams } = host.encryption;
  const kids = streams.kids(name);
  streams.noteShredded(name, kids);
  await host.log.appendLocal({
    stream: KEYRING_STREAM,
    events: [{ type: STREAM_SHREDDED, data: { stream: name, kids }, schema: 1 }],
    expectedVersion: 'any',
    now: host.now(),
  });
  await host.wrote();
  await eraseStreams(host, [name]);
}
