/**
 * Branded identifiers: easy to mix up as plain strings and numbers, so each has its own type,
 * a `make`/`parse` and a `compare`.
 *
 * Invariants:
 * 1. A ReplicaId is lowercase base-32: 16 random characters (ReplicaId.make), or 26 derived from
 *    a signing key (core/integrity.ts replicaIdOf); it never contains the order-key separator.
 * 2. An order key (Cursor) sorts, as a plain string, in the total order (hlc, replica, seq).
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type ReplicaId = Brand<string, 'ReplicaId'>;
export type EventId = Brand<string, 'EventId'>;
export type Seq = Brand<number, 'Seq'>;
export type Hlc = Brand<string, 'Hlc'>;
/** Opaque position in the total order; comes from a StoredEvent and sorts as a string. */
export type Cursor = Brand<string, 'Cursor'>;

/** A source of random bytes; injected so that core stays deterministic under test. */
export type RandomBytes = (length: number) => Uint8Array;

const POOL_SIZE = 4096;
let pool = new Uint8Array(0);
let poolOffset = 0;

/**
 * Random bytes from the platform's CSPRNG, drawn from a pool: one getRandomValues call per 4 KiB
 * instead of one per id (the call itself, not the entropy, dominated append cost).
 */
export const cryptoRandomBytes: RandomBytes = (length) => {
  if (length > POOL_SIZE) return globalThis.crypto.getRandomValues(new Uint8Array(length));
  if (poolOffset + length > pool.length) {
    pool = globalThis.crypto.getRandomValues(new Uint8Array(POOL_SIZE));
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + length);
  poolOffset += length;
  return out;
};

const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(bytes: Uint8Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE32[(bytes[i] ?? 0) & 31];
  return out;
}

export const ReplicaId = {
  make(random: RandomBytes = cryptoRandomBytes): ReplicaId {
    return base32(random(16), 16) as ReplicaId;
  },
  parse(value: unknown): ReplicaId {
    if (typeof value !== 'string' || !/^[0-9a-z]{1,64}$/.test(value)) {
      throw new TypeError(`not a replica id: ${String(value)}`);
    }
    return value as ReplicaId;
  },
  isValid(value: unknown): value is ReplicaId {
    return typeof value === 'string' && /^[0-9a-z]{1,64}$/.test(value);
  },
  compare(a: ReplicaId, b: ReplicaId): number {
    return a < b ? -1 : a > b ? 1 : 0;
  },
};

export const EventId = {
  /** 26 characters: 10 of time (ms) so ids roughly sort by creation, 16 random. */
  make(nowMs: number, random: RandomBytes = cryptoRandomBytes): EventId {
    let time = '';
    let t = Math.max(0, Math.floor(nowMs));
    for (let i = 0; i < 10; i++) {
      time = BASE32[t % 32] + time;
      t = Math.floor(t / 32);
    }
    return (time + base32(random(16), 16)) as EventId;
  },
  /**
   * The id of an event appended without one: `<replica>.<seq in base 36>`. It is unique because
   * (replica, seq) is (events.ts invariant 2), contains a '.' so it never equals an id from
   * make(), and it can be left out on the wire and rebuilt from the event's replica and seq.
   */
  canonical(replica: ReplicaId, seq: Seq): EventId {
    return `${replica}.${seq.toString(36)}` as EventId;
  },
  /** Whether `id` is the canonical id of (replica, seq). */
  isCanonical(id: string, replica: string, seq: number): boolean {
    const dot = replica.length;
    return (
      id.length > dot + 1 &&
      id.charCodeAt(dot) === 46 &&
      id.startsWith(replica) &&
      id.slice(dot + 1) === seq.toString(36)
    );
  },
  /**
   * The slot (`<replica>.<seq encoded>`, core/copies.ts slotOf) of the (replica, seq) whose
   * canonical id `id` would be, or undefined when `id` has not that form. A custom id may have
   * it too ("invoice.42"): the slot says only where the event with that canonical id would be.
   */
  canonicalSlot(id: string): string | undefined {
    const dot = id.indexOf('.');
    if (dot < 1 || dot > 64) return undefined;
    const replica = id.slice(0, dot);
    const digits = id.slice(dot + 1);
    if (!/^[0-9a-z]{1,64}$/.test(replica) || !/^[1-9a-z][0-9a-z]*$/.test(digits)) return undefined;
    const seq = Number.parseInt(digits, 36);
    if (!Number.isSafeInteger(seq) || seq.toString(36) !== digits) return undefined;
    return `${replica}.${Seq.encode(seq as Seq)}`;
  },
  parse(value: unknown): EventId {
    if (!EventId.isValid(value)) throw new TypeError(`not an event id: ${String(value)}`);
    return value as EventId;
  },
  isValid(value: unknown): value is EventId {
    return typeof value === 'string' && value.length > 0 && value.length <= 128;
  },
  compare(a: EventId, b: EventId): number {
    return a < b ? -1 : a > b ? 1 : 0;
  },
};

const SEQ_WIDTH = 12;

export const Seq = {
  make(value: number): Seq {
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`not a seq: ${value}`);
    return value as Seq;
  },
  isValid(value: unknown): value is Seq {
    return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
  },
  compare(a: Seq, b: Seq): number {
    return a - b;
  },
  /** Fixed-width base-36 so that string order equals numeric order (up to 36^12). */
  encode(value: Seq): string {
    return value.toString(36).padStart(SEQ_WIDTH, '0');
  },
};

export const Cursor = {
  /** The order key of an event: `hlc.replica.seq`, sortable as a plain string. */
  make(hlc: Hlc, replica: ReplicaId, seq: Seq): Cursor {
    return `${hlc}.${replica}.${Seq.encode(seq)}` as Cursor;
  },
  parse(value: unknown): Cursor {
    if (typeof value !== 'string' || !/^[0-9a-z]+-[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]+$/.test(value)) {
      throw new TypeError(`not a cursor: ${String(value)}`);
    }
    return value as Cursor;
  },
  isValid(value: unknown): value is Cursor {
    return typeof value === 'string' && /^[0-9a-z]+-[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]+$/.test(value);
  },
  compare(a: Cursor, b: Cursor): number {
    return a < b ? -1 : a > b ? 1 : 0;
  },
};
