/**
 * core/trimmed-copies.ts through core/copies.ts resolveCopies: a partial replica, which keeps
 * only traces (id, cursor) of the events it trimmed, keeps the same copies as a full replica that
 * received the same batches in the same order, and reports every trimmed copy that lost.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveCopies, slotOf } from '../../src/core/copies.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import type { TrimmedTrace } from '../../src/core/trimmed-copies.ts';
import { storedEvent } from '../fixtures/events.ts';

/** A replica's copies: held records and (when it trims) traces, by id and by slot. */
class Replica {
  private readonly heldById = new Map<string, LocalRecord>();
  private readonly heldBySlot = new Map<string, LocalRecord>();
  private readonly tracesById = new Map<string, TrimmedTrace>();
  private readonly tracesBySlot = new Map<string, TrimmedTrace>();
  private pos = 0;
  lostTrimmed = 0;
  lostHeld = 0;

  ingest(events: StoredEventRecord[]): void {
    const r = resolveCopies({
      events,
      heldById: events.map((e) => this.heldById.get(e.id)),
      heldBySlot: events.map((e) => this.heldBySlot.get(slotOf(e))),
      trimmedById: events.map((e) => this.tracesById.get(e.id)),
      trimmedBySlot: events.map((e) => this.tracesBySlot.get(slotOf(e))),
    });
    if (r.kind !== 'resolved') throw new Error('refused');
    expect(r.evict.map((e) => e.cursor)).toEqual(r.lostTrimmed.map((l) => l.cursor));
    this.lostTrimmed += r.lostTrimmed.length;
    this.lostHeld += r.lost.filter((l) => l.held).length;
    for (const { id, cursor } of r.evict) {
      expect(
        this.tracesById.get(id)?.cursor ?? this.tracesBySlot.get(slotOf({ cursor }))?.cursor,
      ).toBe(cursor);
      if (this.tracesById.get(id)?.cursor === cursor) this.tracesById.delete(id);
      const slot = slotOf({ cursor });
      if (this.tracesBySlot.get(slot)?.cursor === cursor) this.tracesBySlot.delete(slot);
    }
    for (const gone of r.remove) {
      this.heldById.delete(gone.event.id);
      this.heldBySlot.delete(slotOf(gone.event));
    }
    for (const event of r.write) {
      const record = { event, pos: ++this.pos };
      this.heldById.set(event.id, record);
      this.heldBySlot.set(slotOf(event), record);
    }
  }

  /** Trims every held event: only its trace is left. */
  trim(): void {
    for (const { event } of this.heldById.values()) {
      const trace = { id: event.id, cursor: event.cursor };
      this.tracesById.set(event.id, trace);
      this.tracesBySlot.set(slotOf(event), trace);
    }
    this.heldById.clear();
    this.heldBySlot.clear();
  }

  /** Every copy it keeps, held or trimmed, as `id cursor`, sorted. */
  kept(): string[] {
    const all = [
      ...[...this.heldById.values()].map((r) => `${r.event.id} ${r.event.cursor}`),
      ...[...this.tracesById.values()].map((t) => `${t.id} ${t.cursor}`),
    ];
    return all.sort();
  }
}

/**
 * Copies that collide by id and by (replica, seq): two replicas, three seqs each, ids from a
 * small pool or canonical. Every copy has its own stamp, so no two share a cursor.
 */
const arbCopies = fc
  .array(
    fc.record({
      replica: fc.constantFrom('ra', 'rb'),
      seq: fc.integer({ min: 1, max: 3 }),
      wall: fc.integer({ min: 1, max: 9 }),
      id: fc.option(fc.constantFrom('x', 'y', 'z'), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 14 },
  )
  .map((specs) =>
    specs.map((s, i) =>
      storedEvent({
        replica: s.replica,
        seq: s.seq,
        wall: s.wall * 100 + i,
        ...(s.id === undefined ? {} : { id: s.id }),
        data: i,
      }),
    ),
  );

describe('copies meeting trimmed events (core/trimmed-copies.ts)', () => {
  it('a replica that trims keeps the copies a full replica keeps, batch for batch', () => {
    fc.assert(
      fc.property(
        arbCopies,
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1 }),
        fc.array(fc.boolean(), { minLength: 1 }),
        (copies, sizes, trims) => {
          const full = new Replica();
          const partial = new Replica();
          for (let i = 0, b = 0; i < copies.length; b++) {
            const size = sizes[b % sizes.length]!;
            // Some copies come twice (a peer and the server both send them).
            const batch = copies.slice(i, i + size);
            full.ingest(batch);
            partial.ingest(batch);
            if (trims[b % trims.length]!) partial.trim();
            i += size;
          }
          expect(partial.kept()).toEqual(full.kept());
          // Every copy the full replica took out of its log, the partial one reported too.
          expect(partial.lostHeld + partial.lostTrimmed).toBe(full.lostHeld);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('weighs by cursor: a repeat is skipped, an earlier copy wins, a later or tied one loses', () => {
    const trimmed = storedEvent({ replica: 'ra', seq: 2, wall: 500, id: 'x' });
    const trace = { id: trimmed.id, cursor: trimmed.cursor };
    const earlier = storedEvent({ replica: 'rb', seq: 1, wall: 400, id: 'x' });
    const later = storedEvent({ replica: 'rb', seq: 1, wall: 600, id: 'x' });
    const tied = { ...storedEvent({ replica: 'ra', seq: 2, wall: 500, id: 'other' }) };
    const resolve = (event: StoredEventRecord, byId?: TrimmedTrace, bySlot?: TrimmedTrace) => {
      const r = resolveCopies({
        events: [event],
        heldById: [undefined],
        heldBySlot: [undefined],
        trimmedById: [byId],
        trimmedBySlot: [bySlot],
      });
      if (r.kind !== 'resolved') throw new Error('refused');
      return r;
    };
    const again = resolve(trimmed, trace, trace);
    expect([again.write, again.lost, again.lostTrimmed]).toEqual([[], [], []]);
    const won = resolve(earlier, trace);
    expect(won.write).toEqual([earlier]);
    expect(won.evict).toEqual([trace]);
    expect(won.lostTrimmed).toEqual([
      { code: 'ID_CONFLICT', id: 'x', cursor: trimmed.cursor, keptId: 'x', keptReplica: 'rb' },
    ]);
    const lost = resolve(later, trace);
    expect(lost.write).toEqual([]);
    expect(lost.lost.map((l) => [l.code, l.held, l.keptReplica])).toEqual([
      ['ID_CONFLICT', false, 'ra'],
    ]);
    const tie = resolve(tied, undefined, trace);
    expect(tie.write).toEqual([]);
    expect(tie.lost.map((l) => [l.code, l.keptId])).toEqual([['SEQ_CONFLICT', 'x']]);
    // A trace whose cursor the log cannot tell holds its id as before: skipped, not reported.
    const unknown = resolve(earlier, { id: trimmed.id, cursor: undefined });
    expect([unknown.write, unknown.lost, unknown.evict]).toEqual([[], [], []]);
  });
});
