/**
 * Each stream's own data key (crypto-shredding): an encrypted store seals a stream's events under
 * a key made for that stream, wrapped under the space key in a StreamKey event of the `$keyring`
 * stream (core/keyring-events.ts). Erasing the stream (store.shred) erases that one small event
 * on every replica and on the server; the stream's events keep their envelopes and ciphertext,
 * which nothing can open any more.
 *
 * Invariants:
 * 1. A StreamKey event is written in the same unit as the first events sealed under its key
 *    (local-appends.ts), and again with every later append until one such unit is durable: no
 *    event is ever stored under a key that the log does not carry. Its id is `$key:<kid>` and it
 *    is made once, so every copy of it is the same event (an idempotent duplicate).
 * 2. Keys are unwrapped when an event needs them, not at open: a log of many streams opens in
 *    one read of `$keyring`, without a key derivation per stream.
 * 3. Once a stream is shredded here, none of its keys is taken again: a StreamKey arriving late
 *    for it is erased on arrival (its erased copy spreads, core/keyring-events.ts 2), its events
 *    read as shredded, and appends to it are refused.
 */
import { ValidationError } from '../core/errors.ts';
import type { JsonObject, StoredEventRecord } from '../core/events.ts';
import { unwrapKey, wrapKey } from '../core/key-wrap.ts';
import { generateEncryptionKey, type Keyring, type SpaceKey, spaceKey } from '../core/keyring.ts';
import { STREAM_KEY } from '../core/keyring-events.ts';
import { KEYRING_STREAM } from '../core/sealing.ts';
import type { StreamAppendRequest } from '../storage/adapter.ts';

interface Wrapped {
  stream: string;
  under: string;
  wrapped: string;
}

interface OwnKey {
  key: SpaceKey;
  /** The StreamKey event to write with the stream's appends until one is durable (invariant 1). */
  event: StreamAppendRequest['events'][number];
  durable: boolean;
}

export class StreamKeys {
  private readonly keyring: Keyring;
  /** Every key a StreamKey event carried and no erasure took, by id (invariant 2). */
  private readonly wrapped = new Map<string, Wrapped>();
  /** Each stream's keys, by id. */
  private readonly kidsOf = new Map<string, Set<string>>();
  /** The held StreamKey events with their key, by key id: what an erasure rewrites. */
  private readonly held = new Map<string, StoredEventRecord>();
  /** Key id of each StreamKey event id (an erased copy names only its id). */
  private readonly kidOfEvent = new Map<string, string>();
  private readonly shredded = new Set<string>();
  private readonly own = new Map<string, Promise<OwnKey>>();
  private readonly streamKids = new Set<string>();

  constructor(keyring: Keyring) {
    this.keyring = keyring;
  }

  isShredded(stream: string): boolean {
    return this.shredded.has(stream);
  }

  /** Whether `kid` names a stream's key (not a space key). */
  isStreamKey(kid: string): boolean {
    return this.streamKids.has(kid);
  }

  /** The key ids a stream's events may be sealed under, as known here. */
  kids(stream: string): string[] {
    return [...(this.kidsOf.get(stream) ?? [])];
  }

  /** A StreamKey event seen (any source). False when its stream is shredded (invariant 3). */
  noteKey(event: StoredEventRecord, key: Wrapped & { kid: string }): boolean {
    this.kidOfEvent.set(event.id, key.kid);
    this.streamKids.add(key.kid);
    this.held.set(key.kid, event);
    if (this.shredded.has(key.stream)) return false;
    this.wrapped.set(key.kid, key);
    const kids = this.kidsOf.get(key.stream) ?? new Set<string>();
    kids.add(key.kid);
    this.kidsOf.set(key.stream, kids);
    return true;
  }

  /** An erased StreamKey copy seen: its key is gone here too. */
  noteErased(eventId: string): void {
    const kid = this.kidOfEvent.get(eventId);
    if (kid === undefined) return;
    this.forgetKey(kid);
    this.held.delete(kid);
  }

  /** The stream is shredded (invariant 3). True when it was not before. */
  noteShredded(stream: string, kids: readonly string[]): boolean {
    const fresh = !this.shredded.has(stream);
    this.shredded.add(stream);
    for (const kid of [...kids, ...this.kids(stream)]) this.forgetKey(kid);
    this.kidsOf.delete(stream);
    this.own.delete(stream);
    return fresh;
  }

  private forgetKey(kid: string): void {
    this.keyring.remove(kid);
    this.wrapped.delete(kid);
  }

  /** The held StreamKey events of `streams` that still carry their key: to be erased. */
  toErase(streams: ReadonlySet<string>): StoredEventRecord[] {
    const out: StoredEventRecord[] = [];
    for (const event of this.held.values()) {
      const data = event.data as { stream?: unknown } | null;
      if (data !== null && typeof data.stream === 'string' && streams.has(data.stream)) {
        out.push(event);
      }
    }
    return out;
  }

  /** Unwraps the key `kid` if a StreamKey carried it and its space key is here (invariant 2). */
  async resolve(kid: string): Promise<boolean> {
    if (this.keyring.has(kid)) return true;
    const wrapped = this.wrapped.get(kid);
    const under = wrapped && this.keyring.get(wrapped.under);
    if (wrapped === undefined || under === undefined || this.shredded.has(wrapped.stream)) {
      return false;
    }
    const key = await unwrapKey(under, kid, wrapped.wrapped);
    if (key === undefined || this.shredded.has(wrapped.stream)) return false;
    this.keyring.add(key);
    return true;
  }

  /**
   * The key to seal `stream`'s events with, and the StreamKey event to write beside them when
   * the log may not carry it yet (invariant 1).
   */
  async sealingKey(
    stream: string,
    space: SpaceKey,
  ): Promise<{ key: SpaceKey; keyPart?: StreamAppendRequest; written(): void }> {
    if (this.shredded.has(stream)) {
      throw new ValidationError(
        'stream',
        `"${stream}" was shredded: nothing is appended to it any more`,
      );
    }
    let pending = this.own.get(stream);
    if (pending === undefined) {
      pending = this.ownKey(stream, space);
      this.own.set(stream, pending);
      pending.catch(() => this.own.delete(stream));
    }
    const own = await pending;
    const written = () => {
      own.durable = true;
    };
    if (own.durable) return { key: own.key, written };
    const keyPart: StreamAppendRequest = {
      stream: KEYRING_STREAM,
      events: [own.event],
      expectedVersion: 'any',
    };
    return { key: own.key, keyPart, written };
  }

  /**
   * A key of the stream this replica can use, or a new one (with its event). Only a key wrapped
   * under the current space key is used again: after a rotation a stream's new events are sealed
   * under a new key, which the old space key does not open.
   */
  private async ownKey(stream: string, space: SpaceKey): Promise<OwnKey> {
    for (const kid of this.kids(stream)) {
      if (this.wrapped.get(kid)?.under !== space.kid || !(await this.resolve(kid))) continue;
      const key = this.keyring.get(kid);
      const event = this.held.get(kid);
      if (key !== undefined && event !== undefined) {
        return { key, event: event as OwnKey['event'], durable: true };
      }
    }
    const key = await spaceKey(generateEncryptionKey());
    this.streamKids.add(key.kid);
    const data = { stream, kid: key.kid, under: space.kid, wrapped: await wrapKey(space, key) };
    this.keyring.add(key);
    const event = {
      id: `$key:${key.kid}`,
      type: STREAM_KEY,
      data: data as JsonObject,
      schema: 1,
    } as OwnKey['event'];
    return { key, event, durable: false };
  }
}
