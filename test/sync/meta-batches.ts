/**
 * Batches of events that carry the meta fields of signing and sealing in every mix (for the
 * meta-column and binary-frame tests): random steps, and signed runs.
 */
import fc from 'fast-check';
import type { JsonObject, JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { signEvents } from '../../src/core/integrity.ts';
import { replicaA, replicaB, T0 } from '../core/fixtures.ts';
import { signingIdentity } from '../core/signing-identity.ts';
import { storedEvent } from '../fixtures/events.ts';

export const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
export const arbB64 = (length: number) =>
  fc.string({ unit: fc.constantFrom(...B64), minLength: length, maxLength: length });
const arbJson: fc.Arbitrary<JsonValue> = fc
  .jsonValue({ maxDepth: 2 })
  .map((v) => JSON.parse(JSON.stringify(v)) as JsonValue);

/** What one event of a generated batch carries (built in order by batchOf). */
export const arbStep = fc.record({
  replica: fc.constantFrom(replicaA, replicaB, 'replicaccccccccc'),
  /** Seq steps: mostly the next, sometimes a gap. */
  gap: fc.constantFrom(1, 1, 1, 2, 7),
  customId: fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: undefined, freq: 4 }),
  strict: fc.boolean(),
  sealed: fc.option(fc.constantFrom('kidAAAAAAAAA', 'kidBBBBBBBBB', 'k'), { nil: undefined }),
  app: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), arbJson, { maxKeys: 3 }), {
    nil: undefined,
  }),
  signed: fc.constantFrom(true, true, true, false),
  link: fc.constantFrom('near', 'near', 'older', 'far', 'key', 'odd', 'none'),
  hash: fc.oneof(arbB64(22), fc.constant('not+base64/hash+at+all')),
  sig: fc.oneof(arbB64(86), arbB64(86), arbB64(85), fc.constant('x'.repeat(85).concat('+'))),
  /** A sealed event's data: mostly a canonical base64url text, sometimes not. */
  blob: fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64url')),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64url')),
    fc.string({ unit: fc.constantFrom(...B64), maxLength: 9 }),
    fc.constant<JsonValue>({ n: 1 }),
  ),
  /** The meta's keys in another order than sealing and signing write (sent whole). */
  shuffled: fc.constantFrom(false, false, false, true),
});

export type Step = typeof arbStep extends fc.Arbitrary<infer T> ? T : never;

export function batchOf(steps: Step[]): StoredEventRecord[] {
  const seqs = new Map<string, number>();
  const events: StoredEventRecord[] = [];
  for (const [i, s] of steps.entries()) {
    const seq = (seqs.get(s.replica) ?? 0) + s.gap;
    seqs.set(s.replica, seq);
    let meta: JsonObject | undefined;
    if (s.sealed !== undefined) meta = { $sealed: s.sealed };
    else if (s.app !== undefined) meta = { ...s.app };
    if (s.strict) meta = { ...meta, $strict: true, $prev: `prev-${i}` };
    if (s.signed) {
      const mine = events.filter((e) => e.replica === s.replica);
      const chained = mine.filter((e) => e.meta?.$strict !== true);
      const named =
        s.link === 'near' ? chained.at(-1) : s.link === 'older' ? mine.at(0) : undefined;
      meta = { ...meta };
      if (s.link === 'key') meta.$key = `key-of-${s.replica}.nonce`;
      else if (s.link === 'odd') meta.$link = `${i}`;
      else if (s.link !== 'none') {
        const [seqText, id] =
          named === undefined ? ['2s', `elsewhere.${i}`] : [named.seq.toString(36), named.id];
        meta.$link = `${seqText}.${s.hash}.${id}`;
      }
      meta.$sig = s.sig;
    }
    if (meta !== undefined && s.shuffled) {
      meta = Object.fromEntries(Object.entries(meta).reverse()) as JsonObject;
    }
    events.push(
      storedEvent({
        replica: s.replica,
        seq,
        wall: T0 + i,
        stream: `s${i % 3}`,
        version: i + 1,
        id: s.customId,
        data: s.sealed === undefined ? { n: i } : s.blob,
        meta,
      }),
    );
  }
  return events;
}

/** `count` events of a signing replica, sealed when `kid` is given, signed and chained. */
export async function signedRun(count: number, kid?: string) {
  const me = await signingIdentity();
  const events = Array.from({ length: count }, (_, i) =>
    storedEvent({
      replica: me.replicaId,
      seq: i + 1,
      wall: T0,
      counter: i,
      data: kid === undefined ? { card: i } : 'c2VhbGVk',
      ...(kid !== undefined && { meta: { $sealed: kid } }),
    }),
  );
  return (await signEvents(events, me, undefined)).signed;
}

export function plainStep(): Step {
  return {
    replica: replicaA,
    gap: 1,
    customId: undefined,
    strict: false,
    sealed: undefined,
    app: { a: 1 },
    signed: false,
    link: 'none',
    hash: 'A'.repeat(22),
    sig: 'A'.repeat(86),
    shuffled: false,
    blob: { n: 1 },
  };
}
