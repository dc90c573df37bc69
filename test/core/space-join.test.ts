/** core/space-join.ts: which snapshot a device takes, and which events its base covers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHlc, encodeHlc } from '../../src/core/hlc.ts';
import { clockAfterBase, coveredBy, matchSnapshot, uncovered } from '../../src/core/space-join.ts';
import type { SpaceSnapshot } from '../../src/core/space-snapshot.ts';
import { storedEvent } from '../fixtures/events.ts';

const snapshot: SpaceSnapshot = {
  pos: 3,
  cursor: storedEvent({ replica: 'replicaaaaaaaaaa', seq: 3, wall: 5_000 }).cursor,
  count: 3,
  projections: [
    { name: 'board', version: 2, state: { n: 3 } },
    { name: 'extra', version: 1, state: null },
  ],
  streams: [],
  vector: { replicaaaaaaaaaa: 3 },
};

describe('space-join', () => {
  it('covers exactly the seqs at or below the vector entry of their replica (invariant 3)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        (top, seq) => {
          const vector = { r: top };
          expect(coveredBy(vector, { replica: 'r', seq })).toBe(seq <= top);
          expect(coveredBy(vector, { replica: 'other', seq })).toBe(false);
        },
      ),
    );
    const events = [1, 2, 3, 4].map((seq) => ({ replica: 'r', seq }));
    expect(uncovered({ r: 2 }, events)).toEqual(events.slice(2));
    expect(uncovered(undefined, events)).toBe(events);
    expect(uncovered({ s: 9 }, events)).toBe(events);
  });

  it('takes a snapshot only when it holds every projection asked at exactly its version (invariant 2)', () => {
    expect(matchSnapshot(snapshot, [{ name: 'board', version: 2 }])).toEqual([
      snapshot.projections[0],
    ]);
    expect(matchSnapshot(snapshot, [])).toEqual([]);
    expect(matchSnapshot(snapshot, [{ name: 'board', version: 1 }])).toBeUndefined();
    expect(
      matchSnapshot(snapshot, [
        { name: 'board', version: 2 },
        { name: 'missing', version: 1 },
      ]),
    ).toBeUndefined();
  });

  it("raises the clock to the base cursor's HLC, never lowers it (invariant 4)", () => {
    const base = decodeHlc(snapshot.cursor.split('.')[0]!);
    expect(clockAfterBase({ wall: 0, counter: 0 }, snapshot.cursor)).toEqual(base);
    const later = { wall: base.wall + 1, counter: 0 };
    expect(clockAfterBase(later, snapshot.cursor)).toEqual(later);
    expect(clockAfterBase(later, '')).toEqual(later);
    expect(encodeHlc(clockAfterBase({ wall: 0, counter: 0 }, snapshot.cursor))).toBe(
      snapshot.cursor.split('.')[0],
    );
  });
});
