/**
 * core/integrity.ts without I/O: signing a replica's events, the chain, and the verdict a
 * receiver gives a batch (which events it refuses and why, which links it reports).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { Cursor, EventId, type Hlc, ReplicaId, Seq } from '../../src/core/ids.ts';
import {
  type ChainHead,
  type ChainLookup,
  eventDigest,
  INTEGRITY_META,
  signEvents,
  verifyBatch,
  withoutIntegrity,
} from '../../src/core/integrity.ts';
import { canonicalJson } from '../../src/core/json.ts';
import {
  generateSigningKey,
  newReplicaIdentity,
  replicaIdOf,
  replicaOfKeyText,
  type SigningIdentity,
} from '../../src/core/replica-identity.ts';
import { jsSha256Text } from '../../src/core/sha256.ts';
import { signingIdentity } from './signing-identity.ts';

function event(replica: string, seq: number, extra: Partial<StoredEventRecord> = {}) {
  const hlc = `0000${seq.toString(36).padStart(8, '0')}-00000` as Hlc;
  const record: StoredEventRecord = {
    id: EventId.parse(`${replica}.${seq}`),
    stream: 'todo',
    type: 'added',
    version: seq,
    data: { title: `item ${seq}` },
    replica: ReplicaId.parse(replica),
    seq: Seq.make(seq),
    hlc,
    time: seq,
    cursor: Cursor.make(hlc, ReplicaId.parse(replica), Seq.make(seq)),
    ...extra,
  } as StoredEventRecord;
  return record;
}

/** What a receiver holds: events by slot, and keys it learned. */
function holding(held: readonly StoredEventRecord[] = [], keys = new Map<string, string>()) {
  const lookup: ChainLookup = {
    eventAt: async (replica, seq) => held.find((e) => e.replica === replica && e.seq === seq),
    keyOf: async (replica) => keys.get(replica),
  };
  return lookup;
}

async function chain(id: SigningIdentity, n: number, from = 1) {
  const events = Array.from({ length: n }, (_, i) => event(id.replicaId, from + i));
  return (await signEvents(events, id, undefined)).signed;
}

describe('replica identity', () => {
  it('derives the replica id from the key and a nonce, and a fresh nonce gives another id', async () => {
    const key = await generateSigningKey();
    const a = newReplicaIdentity(key.publicKey);
    const b = newReplicaIdentity(key.publicKey);
    expect(a.replicaId).toMatch(/^[0-9a-z]{26}$/);
    expect(replicaIdOf(key.publicKey, a.nonce)).toBe(a.replicaId);
    expect(a.replicaId).not.toBe(b.replicaId);
    expect(replicaOfKeyText(`${key.publicKey}.${a.nonce}`)).toBe(a.replicaId);
    expect(replicaOfKeyText('not a key')).toBeUndefined();
    expect(replicaOfKeyText(`${key.publicKey}`)).toBeUndefined();
  });
});

describe('signing and verifying', () => {
  it('chains a replica: the first event names its key, each other links the one before', async () => {
    const id = await signingIdentity();
    const signed = await chain(id, 3);
    expect(signed[0]!.meta?.[INTEGRITY_META.key]).toBe(id.keyText);
    expect(signed[1]!.meta?.[INTEGRITY_META.link]).toMatch(/^1\.[A-Za-z0-9_-]{22}\./);
    expect(signed.every((e) => typeof e.meta?.[INTEGRITY_META.sig] === 'string')).toBe(true);
    const verdict = await verifyBatch(signed, holding(), { requireSignatures: true });
    expect(verdict).toMatchObject({ ok: true, links: [] });
    if (verdict.ok) expect(verdict.keys.get(id.replicaId)).toBe(id.keyText);
  });

  it('signs the same events to the same bytes (Ed25519 is deterministic)', async () => {
    const id = await signingIdentity();
    const events = [event(id.replicaId, 1), event(id.replicaId, 2)];
    const a = await signEvents(events, id, undefined);
    const b = await signEvents(a.signed, id, undefined);
    expect(b.signed).toEqual(a.signed);
  });

  it('refuses an altered event, naming it, and takes the batch before it', async () => {
    const id = await signingIdentity();
    const signed = await chain(id, 4);
    const altered = signed.map((e) => ({ ...e }));
    altered[2] = { ...altered[2]!, data: { title: 'changed by the server' } };
    const verdict = await verifyBatch(altered, holding(), { requireSignatures: true });
    expect(verdict).toMatchObject({ ok: false, tampering: { reason: 'bad-signature' } });
    if (!verdict.ok) expect(verdict.tampering.event.id).toBe(altered[2]!.id);
  });

  it('refuses an altered last event (the tip) and an altered signature', async () => {
    const id = await signingIdentity();
    const signed = await chain(id, 3);
    const last = { ...signed[2]!, data: 'other' };
    expect(
      await verifyBatch([...signed.slice(0, 2), last], holding(), { requireSignatures: true }),
    ).toMatchObject({ ok: false, tampering: { reason: 'bad-signature', event: { seq: 3 } } });
    const sig = signed[1]!.meta?.[INTEGRITY_META.sig] as string;
    const flipped = `${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`;
    const badSig = { ...signed[1]!, meta: { ...signed[1]!.meta, [INTEGRITY_META.sig]: flipped } };
    expect(
      await verifyBatch([signed[0]!, badSig], holding(), { requireSignatures: true }),
    ).toMatchObject({ ok: false, tampering: { reason: 'bad-signature', event: { seq: 2 } } });
  });

  it('refuses events forged for another replica: re-signed under a new key, the key does not derive the id', async () => {
    const honest = await signingIdentity();
    const forger = await signingIdentity();
    const signed = await chain(honest, 2);
    // The forger keeps the honest replica id and signs with its own key.
    const forged = await signEvents(
      signed.map((e) => ({ ...e, data: 'forged' })),
      { ...forger, replicaId: honest.replicaId },
      undefined,
    );
    expect(await verifyBatch(forged.signed, holding(), { requireSignatures: true })).toMatchObject({
      ok: false,
      tampering: { reason: 'wrong-key' },
    });
    // Without the first event, against a receiver that knows the honest key: the signature fails.
    const keys = new Map([[honest.replicaId, honest.keyText]]);
    expect(
      await verifyBatch(forged.signed.slice(1), holding(signed.slice(0, 1), keys), {
        requireSignatures: true,
      }),
    ).toMatchObject({ ok: false, tampering: { reason: 'bad-signature' } });
  });

  it('refuses unsigned events where signatures are required, or from a replica known to sign', async () => {
    const id = await signingIdentity();
    const plain = event('legacyreplica001', 1);
    expect(await verifyBatch([plain], holding(), { requireSignatures: true })).toMatchObject({
      ok: false,
      tampering: { reason: 'unsigned' },
    });
    expect(await verifyBatch([plain], holding(), { requireSignatures: false })).toMatchObject({
      ok: true,
    });
    const keys = new Map([[id.replicaId, id.keyText]]);
    const stripped = { ...event(id.replicaId, 2) };
    expect(
      await verifyBatch([stripped], holding([], keys), { requireSignatures: false }),
    ).toMatchObject({ ok: false, tampering: { reason: 'unsigned' } });
  });

  it('verifies a batch without its replica first event through a held key or the keys its sender names', async () => {
    const id = await signingIdentity();
    const signed = await chain(id, 3);
    const rest = signed.slice(1);
    expect(
      await verifyBatch(rest, holding(signed.slice(0, 1)), { requireSignatures: true }),
    ).toMatchObject({ ok: false, tampering: { reason: 'unknown-key' } });
    const named = { [id.replicaId]: id.keyText };
    const verdict = await verifyBatch(rest, holding(signed.slice(0, 1)), {
      requireSignatures: true,
      keys: named,
    });
    expect(verdict).toMatchObject({ ok: true, links: [] });
    // A key named for a replica it does not derive is not taken.
    const other = await signingIdentity();
    expect(
      await verifyBatch(rest, holding(signed.slice(0, 1)), {
        requireSignatures: true,
        keys: { [id.replicaId]: other.keyText },
      }),
    ).toMatchObject({ ok: false, tampering: { reason: 'unknown-key' } });
  });

  it('reports a link whose event is missing (dropped on the way) or another one (a fork), without refusing', async () => {
    const id = await signingIdentity();
    const signed = await chain(id, 4);
    const keys = new Map([[id.replicaId, id.keyText]]);
    // Seq 2 dropped: 3 links to a seq the receiver never got.
    const dropped = await verifyBatch([signed[2]!, signed[3]!], holding([signed[0]!], keys), {
      requireSignatures: true,
    });
    expect(dropped).toMatchObject({
      ok: true,
      links: [{ status: 'missing', event: { seq: 3 }, link: { seq: 2, id: signed[1]!.id } }],
    });
    // The receiver holds another event at seq 2, signed by the same key (a restored backup).
    const [fork] = (
      await signEvents([event(id.replicaId, 2, { data: 'fork' })], id, {
        seq: 1,
        id: signed[0]!.id,
        digest: eventDigest(signed[0]!),
      })
    ).signed;
    const forked = await verifyBatch([signed[2]!], holding([signed[0]!, fork!], keys), {
      requireSignatures: true,
    });
    expect(forked).toMatchObject({ ok: true, links: [{ status: 'forked' }] });
  });

  it('signs strict events on their own, outside the chain, each with its key', async () => {
    const id = await signingIdentity();
    const strictMeta = { $strict: true };
    const events = [
      event(id.replicaId, 1),
      event(id.replicaId, 2, { meta: strictMeta }),
      event(id.replicaId, 3),
    ];
    const { signed } = await signEvents(events, id, undefined);
    expect(signed[1]!.meta?.[INTEGRITY_META.key]).toBe(id.keyText);
    expect(signed[2]!.meta?.[INTEGRITY_META.link]).toMatch(/^1\./);
    // The strict event rejected by its authority never arrives: the chain does not miss it.
    const verdict = await verifyBatch([signed[0]!, signed[2]!], holding(), {
      requireSignatures: true,
    });
    expect(verdict).toMatchObject({ ok: true, links: [] });
    const altered = { ...signed[1]!, data: 'x' };
    expect(
      await verifyBatch([signed[0]!, altered], holding(), { requireSignatures: true }),
    ).toMatchObject({ ok: false, tampering: { reason: 'bad-signature', event: { seq: 2 } } });
  });

  it('digests the canonical event: key order does not matter, the signature is not part of it', () => {
    const a = event('replicaaaaaaaaaa', 1, { meta: { b: 1, a: 2 } });
    const b = event('replicaaaaaaaaaa', 1, { meta: { a: 2, b: 1, $sig: 'x' } });
    expect(eventDigest(a)).toEqual(eventDigest(b));
    expect(eventDigest(a)).not.toEqual(eventDigest({ ...a, data: 'other' }));
    expect(withoutIntegrity({ a: 1, $sig: 's', $link: 'l', $key: 'k' })).toEqual({ a: 1 });
    expect(withoutIntegrity({ $sig: 's' })).toBeUndefined();
  });
});

describe('eventDigest', () => {
  /** Invariant 1 as first written: a copy of the meta without `$sig`, in one canonical array. */
  function digestByDefinition(e: StoredEventRecord): Uint8Array {
    const meta = e.meta === undefined ? undefined : { ...e.meta };
    if (meta !== undefined) delete meta[INTEGRITY_META.sig];
    const kept = meta === undefined || Object.keys(meta).length === 0 ? null : meta;
    const fields = ['chronicle/event/1', e.id, e.replica, e.seq, e.stream, e.type, e.version];
    return jsSha256Text(canonicalJson([...fields, e.hlc, e.time, e.schema ?? 1, e.data, kept]));
  }

  it('is the digest of its definition, whatever the meta holds (stored signatures hold)', () => {
    const meta = fc.option(
      fc.dictionary(
        fc.oneof(fc.constantFrom('$sig', '$link', '$key', '$sealed', 'a'), fc.string()),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      { nil: undefined },
    );
    fc.assert(
      fc.property(
        meta,
        fc.jsonValue({ maxDepth: 3 }),
        fc.integer({ min: 1, max: 9 }),
        (m, data, seq) => {
          const e = event('r', seq, {
            data: data as JsonValue,
            ...(m === undefined ? {} : { meta: m as JsonObject }),
          });
          expect(Buffer.from(eventDigest(e)).toString('hex')).toBe(
            Buffer.from(digestByDefinition(e)).toString('hex'),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('every event signed (invariant 8)', () => {
  /** The events without the `$sig` of those at `indexes`, as covered signatures sent them. */
  function elide(events: readonly StoredEventRecord[], indexes: readonly number[]) {
    return events.map((e, i) => {
      if (!indexes.includes(i)) return e;
      const { [INTEGRITY_META.sig]: _sig, ...meta } = e.meta ?? {};
      return { ...e, meta };
    });
  }

  it('refuses an event without its signature as unsigned, though a later event links to it', async () => {
    const id = await signingIdentity();
    const sent = elide(await chain(id, 5), [1, 2, 3]);
    const verdict = await verifyBatch(sent, holding(), { requireSignatures: true });
    expect(verdict).toMatchObject({ ok: false, tampering: { reason: 'unsigned' } });
    expect(!verdict.ok && verdict.tampering.event.id).toBe(sent[1]!.id);
  });

  it('refuses an event whose own signature or path fails, though a later event links to it', async () => {
    // A lying relay changes what the digest leaves out: the event's content still holds through
    // the link after it, but a receiver that held it so could prove it to no one, and every
    // peer that later took it without that link would refuse it for good.
    const id = await signingIdentity();
    const trees = await chain(id, 5);
    // Signed one by one, each with its own signature, linked.
    const single: StoredEventRecord[] = [];
    let head: ChainHead | undefined;
    for (let seq = 1; seq <= 3; seq++) {
      const one = await signEvents([event(id.replicaId, seq)], id, head);
      single.push(...one.signed);
      head = one.head;
    }
    const other = String((await chain(await signingIdentity(), 1))[0]!.meta![INTEGRITY_META.sig]);
    const altered = (events: StoredEventRecord[], field: string, value: JsonValue) =>
      events.map((e, i) => (i === 1 ? { ...e, meta: { ...e.meta, [field]: value } } : e));
    const path = String(trees[1]!.meta![INTEGRITY_META.tree]);
    for (const sent of [
      altered(trees, INTEGRITY_META.sig, other),
      altered(trees, INTEGRITY_META.tree, path.slice(0, 2) + 'A'.repeat(path.length - 2)),
      altered(single, INTEGRITY_META.sig, other),
    ]) {
      const verdict = await verifyBatch(sent, holding(), { requireSignatures: true });
      expect(verdict).toMatchObject({ ok: false, tampering: { reason: 'bad-signature' } });
      expect(!verdict.ok && verdict.tampering.event.id).toBe(sent[1]!.id);
    }
  });

  it('keeps taking unsigned events where signatures are not required and the replica is unknown', async () => {
    const id = await signingIdentity();
    const events = await chain(id, 3);
    // The chain's tail without its key event or signatures: nothing here says the replica signs.
    const sent = elide(events.slice(1), [0, 1]);
    const verdict = await verifyBatch(sent, holding(), { requireSignatures: false });
    expect(verdict.ok).toBe(true);
    const known = await verifyBatch(sent, holding([], new Map([[id.replicaId, id.keyText]])), {
      requireSignatures: false,
    });
    expect(known).toMatchObject({ ok: false, tampering: { reason: 'unsigned' } });
  });

  it('asks for an unknown replica’s key once a batch, and still refuses its unsigned events once its key event came', async () => {
    const plain = Array.from({ length: 50 }, (_, i) => event('pppppppppppppppp', i + 1));
    let asked = 0;
    const counting: ChainLookup = {
      ...holding(),
      keyOf: async () => {
        asked += 1;
        return undefined;
      },
    };
    expect((await verifyBatch(plain, counting, { requireSignatures: false })).ok).toBe(true);
    expect(asked).toBe(1);
    // A replica that names its key in the batch signs: its unsigned events after it are refused.
    const id = await signingIdentity();
    const [first] = await chain(id, 1);
    const unsigned = event(id.replicaId, 2);
    const verdict = await verifyBatch([first!, unsigned], counting, { requireSignatures: false });
    expect(verdict).toMatchObject({ ok: false, tampering: { reason: 'unsigned' } });
    expect(!verdict.ok && verdict.tampering.event.id).toBe(unsigned.id);
  });
});
