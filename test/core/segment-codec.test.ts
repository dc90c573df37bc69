/**
 * The stored form of a segment in IndexedDB (core/segment-codec.ts, segments.ts invariant 7):
 * lossless, shorter where ids are canonical and signatures are bytes, and idempotent.
 */
import { describe, expect, it } from 'vitest';
import { encodeBase64Url } from '../../src/core/base64.ts';
import type { JsonObject, LocalRecord } from '../../src/core/events.ts';
import { huskOf } from '../../src/core/husks.ts';
import { EventId, type ReplicaId, type Seq } from '../../src/core/ids.ts';
import { linkText } from '../../src/core/integrity.ts';
import { compactSegment } from '../../src/core/segment-codec.ts';
import { LINK_HASH_BYTES, packSegment, SIG_BYTES, unpackSegment } from '../../src/core/segments.ts';
import { storedEvent } from '../fixtures/events.ts';
import { replicaA, replicaB } from './fixtures.ts';

const sig = (n: number) =>
  encodeBase64Url(Uint8Array.from({ length: SIG_BYTES }, (_, i) => (i * 31 + n * 7) & 255));

function records(metas: (JsonObject | undefined)[], ids: (string | undefined)[] = []) {
  return metas.map(
    (meta, i): LocalRecord => ({
      pos: 10 + i,
      event: storedEvent({
        replica: i % 3 === 2 ? replicaB : replicaA,
        seq: i + 1,
        wall: 1_000 + i,
        stream: `card:${i % 2}`,
        id: ids[i],
        meta,
      }),
    }),
  );
}

/** The link an event at (replica, seq) carries to seq - 1, as signing writes it (integrity.ts). */
const link = (replica: ReplicaId, seq: number, n: number) => {
  const digest = Uint8Array.from({ length: 32 }, (_, i) => (i * 17 + n * 5 + 1) & 255);
  return linkText(seq - 1, digest, EventId.canonical(replica, (seq - 1) as Seq));
};

describe('compactSegment (core/segment-codec.ts)', () => {
  it('stores canonical ids as empty, signatures as bytes and streams by place, and unpacks the same records (1, 6)', () => {
    const given = records(
      [0, 1, 2, 3].map((n) => ({ app: n, $sig: sig(n), $link: `${n}.abc` })),
      [undefined, 'custom-1', undefined, undefined],
    );
    const packed = packSegment(given);
    const compact = compactSegment(packed);
    expect(compact.ids).toEqual(['', 'custom-1', '', '']);
    expect(compact.sigs?.length).toBe(4 * SIG_BYTES);
    expect(compact.meta?.[0]).toEqual({ app: 0, $sig: 0, $link: '0.abc' });
    expect(packed.streamMax).toEqual([
      ['card:0', 3],
      ['card:1', 4],
    ]);
    expect(compact.streamMax).toBeUndefined();
    expect(compact.stream).toBe('');
    expect(compact.streamOf).toEqual([0, 1, 0, 1]);
    const out = unpackSegment(compact);
    expect(out).toEqual(given);
    // meta keeps its key order: a signed copy compares as the text it was.
    expect(out.map((r) => JSON.stringify(r.event))).toEqual(
      given.map((r) => JSON.stringify(r.event)),
    );
  });

  it('keeps an id of canonical form that is custom, found through the id index (2)', () => {
    // Event 0's id names (replicaB, 1): canonical form, but not its own slot.
    const given = records([undefined, undefined], [`${replicaB}.1`, undefined]);
    const compact = compactSegment(packSegment(given));
    expect(compact.ids).toEqual([`${replicaB}.1`, '']);
    expect(unpackSegment(compact)).toEqual(given);
  });

  it('leaves signatures as text unless every event has one of 64 bytes that comes back (3)', () => {
    const missing = records([{ $sig: sig(1) }, { app: 1 }]);
    expect(compactSegment(packSegment(missing)).sigs).toBeUndefined();
    // The last character of 86 carries 4 bits beyond the 64th byte: set, they would not come back.
    const odd = `${sig(2).slice(0, 85)}B`;
    const dirty = records([{ $sig: sig(1) }, { $sig: odd }]);
    const compact = compactSegment(packSegment(dirty));
    expect(compact.sigs).toBeUndefined();
    expect(unpackSegment(compact)).toEqual(dirty);
    const short = records([{ $sig: 'abc' }]);
    expect(unpackSegment(compactSegment(packSegment(short)))).toEqual(short);
  });

  it('gives a compact segment back as it is, and one with nothing to shorten (4)', () => {
    const given = records([{ $sig: sig(1) }, { $sig: sig(2) }]);
    const compact = compactSegment(packSegment(given));
    expect(compactSegment(compact)).toBe(compact);
    const plain = compactSegment(packSegment(records([undefined], ['custom-only'])));
    expect(compactSegment(plain)).toBe(plain);
  });

  it('leaves each $sig as its 0 for a reader that strips it, every other field the same (segments.ts 8)', () => {
    const given = records([0, 1, 2].map((n) => ({ app: n, $sig: sig(n), $link: `${n}.abc` })));
    const compact = compactSegment(packSegment(given));
    const bare = unpackSegment(compact, 0, 3, false);
    expect(bare.map((r) => r.event.meta)).toEqual(
      [0, 1, 2].map((n) => ({ app: n, $sig: 0, $link: `${n}.abc` })),
    );
    const strip = (r: LocalRecord) => ({ ...r, event: { ...r.event, meta: undefined } });
    expect(bare.map(strip)).toEqual(given.map(strip));
    // A whole read of the same segment afterwards still writes the text in.
    expect(unpackSegment(compact)).toEqual(given);
    expect(unpackSegment(packSegment(given), 0, 3, false)).toEqual(given);
  });

  it('stores each link to the previous seq as its hash bytes, any other link as its text (7)', () => {
    // Events 0, 1, 3 are replica A's seqs 1, 2, 4; event 2 is replica B's seq 3 (records()).
    const zeroHash = linkText(1, new Uint8Array(32), EventId.canonical(replicaA, 1 as Seq));
    const given = records([
      { $link: link(replicaA, 1, 0), app: 0 },
      { app: 1, $link: link(replicaA, 2, 1), $sig: sig(1) },
      { $link: `1.${link(replicaB, 3, 2).split('.')[1]}.${replicaB}.1` },
      { $link: link(replicaA, 4, 3) },
      { $link: zeroHash.replace(`${replicaA}.1`, `${replicaA}.3`).replace(/^1\./, '3.') },
      { $link: 0 },
      { $link: `${link(replicaA, 7, 6).slice(0, -1)}x` },
    ]);
    const compact = compactSegment(packSegment(given));
    // Event 1 only: event 0 is seq 1 (no previous seq), event 2 names seq 1 instead of 2, event
    // 3 is replica A's seq 4 next to replica B's, event 4's hash is zeros, event 5's link is a
    // number, event 6's id was changed.
    expect(compact.meta?.map((m) => m?.$link === 0)).toEqual([
      false,
      true,
      false,
      true,
      false,
      true,
      false,
    ]);
    expect(compact.links?.length).toBe(7 * LINK_HASH_BYTES);
    expect(compact.links?.subarray(0, LINK_HASH_BYTES).every((b) => b === 0)).toBe(true);
    expect(
      compact.links?.subarray(5 * LINK_HASH_BYTES, 6 * LINK_HASH_BYTES).every((b) => b === 0),
    ).toBe(true);
    const out = unpackSegment(compact);
    expect(out).toEqual(given);
    expect(out.map((r) => JSON.stringify(r.event))).toEqual(
      given.map((r) => JSON.stringify(r.event)),
    );
    // The caller's records keep their text.
    expect(given[1]!.event.meta?.$link).toBe(link(replicaA, 2, 1));
    // Idempotent, and a reader that strips integrity meta gets the 0s (segments.ts 8).
    expect(compactSegment(compact)).toBe(compact);
    const bare = unpackSegment(compactSegment(packSegment(given)), 0, 7, false);
    expect(bare[1]!.event.meta).toEqual({ app: 1, $link: 0, $sig: sig(1) });
    expect(unpackSegment(compact)).toEqual(given);
  });

  it('moves the links of a segment compacted before links were (7)', () => {
    const given = records([{ $sig: sig(0) }, { $sig: sig(1), $link: link(replicaA, 2, 1) }]);
    const older = compactSegment(packSegment(given));
    const before = {
      ...older,
      meta: older.meta!.map((m, i) => ({ ...m, ...given[i]!.event.meta, $sig: 0 })),
    };
    delete before.links;
    const now = compactSegment(before);
    expect(now.links).toBeDefined();
    expect(now.sigs).toBe(before.sigs);
    expect(unpackSegment(now)).toEqual(given);
  });

  it('keeps the stream maxima of a husk, whose events are gone (5)', () => {
    const husk = huskOf(records([{ $sig: sig(1) }, undefined]));
    expect(husk.streamMax).toEqual([
      ['card:0', 1],
      ['card:1', 2],
    ]);
    expect(compactSegment(husk)).toBe(husk);
  });
});
