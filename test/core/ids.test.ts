import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareHlc, encodeHlc } from '../../src/core/hlc.ts';
import { Cursor, EventId, ReplicaId, Seq } from '../../src/core/ids.ts';
import { arbCursorParts, arbHlcState, arbReplicaId, arbSeq, fixedBytes, T0 } from './fixtures.ts';

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);
const arbBytes16 = fc.uint8Array({ minLength: 16, maxLength: 16 });

describe('ReplicaId', () => {
  it('ids invariant 1: makes 16 lowercase base-32 characters without the order-key separator', () => {
    fc.assert(
      fc.property(arbBytes16, (bytes) => {
        const id = ReplicaId.make(() => bytes);
        expect(id).toMatch(/^[0-9abcdefghjkmnpqrstvwxyz]{16}$/);
        expect(id).not.toContain('.');
        expect(ReplicaId.isValid(id)).toBe(true);
        expect(ReplicaId.parse(id)).toBe(id);
      }),
      { numRuns: 300 },
    );
  });

  it('makes different ids from crypto randomness by default, across refills of the random pool', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => ReplicaId.make()));
    expect(ids.size).toBe(1000);
  });

  it('rejects values that are not replica ids', () => {
    for (const bad of ['', 'ABC', 'a.b', 'a-b', 'a b', 'x'.repeat(65), 7, null, undefined, {}]) {
      expect(ReplicaId.isValid(bad)).toBe(false);
      expect(() => ReplicaId.parse(bad)).toThrow(TypeError);
    }
  });

  it('compares as plain strings', () => {
    const a = ReplicaId.parse('aa');
    const b = ReplicaId.parse('ab');
    expect(ReplicaId.compare(a, b)).toBe(-1);
    expect(ReplicaId.compare(b, a)).toBe(1);
    expect(ReplicaId.compare(a, a)).toBe(0);
  });
});

describe('EventId', () => {
  it('makes 26 characters whose time prefix sorts by creation time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 50 - 1 }),
        fc.integer({ min: 0, max: 2 ** 50 - 1 }),
        arbBytes16,
        (t1, t2, bytes) => {
          const a = EventId.make(t1, () => bytes);
          const b = EventId.make(t2, fixedBytes(0));
          expect(a).toHaveLength(26);
          expect(EventId.isValid(a)).toBe(true);
          const prefixOrder =
            a.slice(0, 10) < b.slice(0, 10) ? -1 : a.slice(0, 10) > b.slice(0, 10) ? 1 : 0;
          expect(prefixOrder).toBe(sign(t1 - t2));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('accepts any non-empty string of at most 128 characters as an application-supplied id', () => {
    expect(EventId.parse('order-1')).toBe('order-1');
    expect(EventId.isValid('x'.repeat(128))).toBe(true);
    for (const bad of ['', 'x'.repeat(129), 1, null]) {
      expect(EventId.isValid(bad)).toBe(false);
      expect(() => EventId.parse(bad)).toThrow(TypeError);
    }
  });

  it('makes unique ids in one millisecond', () => {
    const ids = new Set(Array.from({ length: 50 }, () => EventId.make(T0)));
    expect(ids.size).toBe(50);
  });

  it('canonical ids: one per (replica, seq), recognised exactly, never equal to a made id', () => {
    fc.assert(
      fc.property(arbReplicaId, arbSeq, arbReplicaId, arbSeq, (r1, s1, r2, s2) => {
        const id = EventId.canonical(r1, s1);
        expect(EventId.isValid(id)).toBe(true);
        expect(EventId.isCanonical(id, r1, s1)).toBe(true);
        const same = r1 === r2 && s1 === s2;
        expect(EventId.canonical(r2, s2) === id).toBe(same);
        expect(EventId.isCanonical(id, r2, s2)).toBe(same);
        expect(id).not.toBe(EventId.make(T0));
      }),
      { numRuns: 300 },
    );
    const r = ReplicaId.parse('abc');
    expect(EventId.canonical(r, Seq.make(36))).toBe('abc.10');
    expect(EventId.isCanonical('abc.010', r, 36)).toBe(false);
    expect(EventId.isCanonical('abcd.10', r, 36)).toBe(false);
    expect(EventId.isCanonical('ab.10', r, 36)).toBe(false);
    expect(EventId.isCanonical('abc-10', r, 36)).toBe(false);
  });
});

describe('Seq', () => {
  it('accepts positive safe integers only', () => {
    expect(Seq.make(1)).toBe(1);
    expect(Seq.make(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(Seq.isValid(bad)).toBe(false);
      expect(() => Seq.make(bad)).toThrow(TypeError);
    }
    expect(Seq.isValid('1')).toBe(false);
  });

  it('encodes at a fixed width so that string order equals numeric order', () => {
    fc.assert(
      fc.property(arbSeq, arbSeq, (a, b) => {
        const ea = Seq.encode(a);
        const eb = Seq.encode(b);
        expect(ea).toHaveLength(12);
        expect(ea < eb ? -1 : ea > eb ? 1 : 0).toBe(sign(Seq.compare(a, b)));
      }),
      { numRuns: 500 },
    );
  });
});

describe('Cursor', () => {
  it('ids invariant 2: cursor string order equals (hlc, replica, seq) order', () => {
    const byParts = (
      a: { hlc: Parameters<typeof compareHlc>[0]; replica: ReplicaId; seq: Seq },
      b: typeof a,
    ) =>
      sign(compareHlc(a.hlc, b.hlc)) ||
      sign(ReplicaId.compare(a.replica, b.replica)) ||
      sign(Seq.compare(a.seq, b.seq));
    // small parts: equal hlcs and replica ids that prefix each other come up often
    fc.assert(
      fc.property(arbCursorParts, arbCursorParts, (a, b) => {
        expect(sign(Cursor.compare(a.cursor, b.cursor))).toBe(byParts(a, b));
      }),
      { numRuns: 2000 },
    );
    // full-range parts
    const arbWide = fc.record({ hlc: arbHlcState, replica: arbReplicaId, seq: arbSeq });
    fc.assert(
      fc.property(arbWide, arbWide, (a, b) => {
        const ca = Cursor.make(encodeHlc(a.hlc), a.replica, a.seq);
        const cb = Cursor.make(encodeHlc(b.hlc), b.replica, b.seq);
        expect(sign(Cursor.compare(ca, cb))).toBe(byParts(a, b));
      }),
      { numRuns: 1000 },
    );
  });

  it('ids invariant 2: sorting cursors as strings sorts events in the total order', () => {
    fc.assert(
      fc.property(fc.array(arbCursorParts, { maxLength: 30 }), (parts) => {
        const byString = parts.map((p) => p.cursor).sort();
        const byTuple = [...parts]
          .sort(
            (a, b) =>
              compareHlc(a.hlc, b.hlc) || ReplicaId.compare(a.replica, b.replica) || a.seq - b.seq,
          )
          .map((p) => p.cursor);
        expect(byString).toEqual(byTuple);
      }),
      { numRuns: 300 },
    );
  });

  it('parses the cursors it makes and rejects other strings', () => {
    fc.assert(
      fc.property(arbCursorParts, (p) => {
        expect(Cursor.isValid(p.cursor)).toBe(true);
        expect(Cursor.parse(p.cursor)).toBe(p.cursor);
      }),
      { numRuns: 200 },
    );
    for (const bad of ['', 'abc', '0000000000a-00000.replica', '0-0.A.1', '0-0.a.1.2', 3, null]) {
      expect(Cursor.isValid(bad)).toBe(false);
      expect(() => Cursor.parse(bad)).toThrow(TypeError);
    }
  });
});
