/**
 * core/copies.ts: the copy rule does not depend on arrival order (invariant 1), a held loser is
 * replaced (invariant 3), every loser is reported (invariant 4), and the server mode refuses a
 * reused (replica, seq) that does not win (invariant 5).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareCopies, resolveCopies, slotOf } from '../../src/core/copies.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { storedEvent } from '../fixtures/events.ts';

/** A tiny log: what a replica holds after ingesting `batches` one after another. */
function ingestAll(batches: StoredEventRecord[][]): { held: StoredEventRecord[]; lost: number } {
  const byId = new Map<string, LocalRecord>();
  const bySlot = new Map<string, LocalRecord>();
  let pos = 0;
  let lost = 0;
  for (const events of batches) {
    const r = resolveCopies({
      events,
      heldById: events.map((e) => byId.get(e.id)),
      heldBySlot: events.map((e) => bySlot.get(slotOf(e))),
    });
    if (r.kind !== 'resolved') throw new Error('refused');
    lost += r.lost.length;
    for (const gone of r.remove) {
      byId.delete(gone.event.id);
      bySlot.delete(slotOf(gone.event));
    }
    for (const event of r.write) {
      const record = { event, pos: ++pos };
      byId.set(event.id, record);
      bySlot.set(slotOf(event), record);
    }
  }
  const held = [...byId.values()].map((r) => r.event);
  return { held: held.sort((a, b) => compareCopies(a, b)), lost };
}

/** Copies that collide by id only: several replicas append ids from a small pool. */
const arbCopies = fc
  .array(
    fc.record({
      replica: fc.constantFrom('ra', 'rb', 'rc'),
      wall: fc.integer({ min: 1, max: 5 }),
      id: fc.constantFrom('x', 'y', 'z'),
      data: fc.integer({ min: 0, max: 2 }),
    }),
    { minLength: 1, maxLength: 12 },
  )
  .map((specs) => {
    const seqs = new Map<string, number>();
    return specs.map((s) => {
      const seq = (seqs.get(s.replica) ?? 0) + 1;
      seqs.set(s.replica, seq);
      return storedEvent({ replica: s.replica, seq, wall: s.wall, id: s.id, data: s.data });
    });
  });

describe('resolveCopies', () => {
  it('invariant 1: every arrival order and batching of the same copies keeps the same events', () => {
    fc.assert(
      fc.property(
        arbCopies,
        fc.array(fc.nat()),
        fc.array(fc.integer({ min: 1, max: 4 })),
        (copies, keys, sizes) => {
          const reference = ingestAll([copies]).held;
          // One winner per id: the copy first in the total order.
          for (const id of new Set(copies.map((c) => c.id))) {
            const best = copies.filter((c) => c.id === id).sort(compareCopies)[0]!;
            expect(reference.find((e) => e.id === id)).toEqual(best);
          }
          const shuffled = copies
            .map((c, i) => ({ c, k: keys[i] ?? i }))
            .sort((a, b) => a.k - b.k)
            .map((x) => x.c);
          const batches: StoredEventRecord[][] = [];
          for (let i = 0, b = 0; i < shuffled.length; b++) {
            const size = sizes[b % Math.max(1, sizes.length)] ?? 1;
            batches.push(shuffled.slice(i, i + size));
            i += size;
          }
          expect(ingestAll(batches).held).toEqual(reference);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('invariant 5: the server mode refuses a reused (replica, seq) that does not win, or two in one batch', () => {
    const held = storedEvent({ replica: 'r', seq: 1, wall: 1, id: 'held' });
    const later = storedEvent({ replica: 'r', seq: 1, wall: 2, id: 'later' });
    const earlier = storedEvent({ replica: 'r', seq: 1, wall: 0, id: 'earlier' });
    const record = { event: held, pos: 1 };
    const input = (events: StoredEventRecord[], slot?: LocalRecord) => ({
      events,
      heldById: events.map(() => undefined),
      heldBySlot: events.map(() => slot),
      refuseSeqConflicts: true,
    });
    expect(resolveCopies(input([later], record))).toEqual({
      kind: 'refused',
      eventId: 'later',
      keptId: 'held',
    });
    expect(resolveCopies(input([earlier, later]))).toMatchObject({
      kind: 'refused',
      eventId: 'later',
    });
    expect(resolveCopies(input([earlier], record))).toMatchObject({
      kind: 'resolved',
      write: [earlier],
      remove: [record],
      lost: [{ code: 'SEQ_CONFLICT', held: true, keptId: 'earlier' }],
    });
  });
});

describe('copies that differ only in $sig (invariant 6)', () => {
  const signed = storedEvent({ replica: 'ra', seq: 1, wall: 1, id: 'x', data: 1 });
  signed.meta = { app: 1, $link: '1.abc.x0', $sig: 'S'.repeat(86) };
  const elided = { ...signed, meta: { app: 1, $link: '1.abc.x0' } };

  it('are one copy, either way round: nothing is lost, nothing reported', () => {
    expect(compareCopies(signed, elided)).toBe(0);
    expect(compareCopies(elided, signed)).toBe(0);
    for (const [first, second] of [
      [signed, elided],
      [elided, signed],
    ] as const) {
      const { held, lost } = ingestAll([[first], [second]]);
      expect(lost).toBe(0);
      expect(held).toEqual([first]);
    }
  });

  it('still collide where anything else differs', () => {
    const other = { ...elided, meta: { app: 2, $link: '1.abc.x0' } };
    expect(compareCopies(signed, other)).not.toBe(0);
    expect(ingestAll([[signed], [other]]).lost).toBe(1);
  });
});
