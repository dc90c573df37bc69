import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { EventId, type ReplicaId } from '../../src/core/ids.ts';
import { planWrite } from '../../src/core/segment-plan.ts';
import {
  cursorAt,
  cursorsToPlace,
  indexAfter,
  MAX_SEGMENT_EVENTS,
  type Neighbours,
  neighboursFromKeys,
  packSegment,
  type Segment,
  type SegmentKey,
  segmentKey,
  segmentsToSplit,
  unpackSegment,
} from '../../src/core/segments.ts';
import { storedEvent } from '../fixtures/events.ts';
import { COUNTER_MAX, replicaA, replicaB } from './fixtures.ts';

function event(fields: {
  replica?: ReplicaId;
  seq: number;
  wall: number;
  counter?: number;
  stream?: string;
  version?: number;
}): StoredEventRecord {
  const replica = fields.replica ?? replicaA;
  return storedEvent({
    ...fields,
    replica,
    id: `e-${replica}-${fields.seq}`,
    data: { n: fields.seq },
  });
}

/** What a local append of `n` events writes: one tick apart, seq, version and pos following. */
function localRun(n: number, from = { seq: 1, pos: 1, wall: 1_000, counter: 0 }): LocalRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    pos: from.pos + i,
    event: event({ seq: from.seq + i, wall: from.wall, counter: from.counter + i }),
  }));
}

describe('packSegment and unpackSegment (invariant 4)', () => {
  it('stores what a local append shares once and gives every record back', () => {
    const run = localRun(5);
    const segment = packSegment(run);
    expect(segment).toMatchObject({ n: 5, pos: 1, stream: 's', replica: replicaA, seq: 1 });
    expect(typeof segment.hlc).toBe('string');
    expect(typeof segment.version).toBe('number');
    expect(segment.cursors).toBeUndefined();
    expect(segment.meta).toBeUndefined();
    expect(unpackSegment(segment)).toEqual(run);
  });

  it('keeps per-event columns where events do not follow one another, and meta and schema', () => {
    const run: LocalRecord[] = [
      { pos: 7, event: { ...event({ seq: 3, wall: 5 }), meta: { by: 'x' } } },
      { pos: 8, event: event({ replica: replicaB, seq: 9, wall: 5, counter: 4, version: 2 }) },
      { pos: 9, event: { ...event({ seq: 4, wall: 6 }), schema: 3 } },
    ];
    const segment = packSegment(run);
    expect(Array.isArray(segment.replica)).toBe(true);
    expect(Array.isArray(segment.seq)).toBe(true);
    expect(Array.isArray(segment.hlc)).toBe(true);
    expect(segment.meta).toEqual([{ by: 'x' }, null, null]);
    expect(segment.schema).toEqual([null, null, 3]);
    expect(unpackSegment(segment)).toEqual(run);
    expect(unpackSegment(segment, 1, 2)).toEqual([run[1]]);
  });

  it('does not derive an HLC across a counter overflow (the next millisecond)', () => {
    const run = localRun(3, { seq: 1, pos: 1, wall: 9, counter: COUNTER_MAX - 1 });
    run[2]!.event = event({ seq: 3, wall: 10, counter: 0 });
    const segment = packSegment(run);
    expect(Array.isArray(segment.hlc)).toBe(true);
    expect(unpackSegment(segment)).toEqual(run);
  });

  it('round-trips any run of events field for field (property)', () => {
    const arbEvent = fc.record({
      replica: fc.constantFrom(replicaA, replicaB),
      seq: fc.integer({ min: 1, max: 1e9 }),
      wall: fc.integer({ min: 0, max: 1e13 }),
      counter: fc.integer({ min: 0, max: COUNTER_MAX }),
      version: fc.integer({ min: 1, max: 1e6 }),
      meta: fc.option(fc.dictionary(fc.string(), fc.integer()), { nil: undefined }),
      schema: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(arbEvent, { minLength: 1, maxLength: 20 }), fc.nat(), (list, pos) => {
        const run = list.map((f, i) => {
          const e = event(f);
          if (f.meta !== undefined) e.meta = f.meta;
          if (f.schema !== undefined) e.schema = f.schema;
          return { pos: pos + 1 + i, event: e };
        });
        expect(unpackSegment(packSegment(run))).toEqual(run);
      }),
    );
  });
});

describe('indexAfter', () => {
  const segment = packSegment(localRun(4));
  const cursors = unpackSegment(segment).map((r) => r.event.cursor);

  it('finds the first event after a cursor, or at it when inclusive', () => {
    expect(indexAfter(segment, cursors[1]!)).toBe(2);
    expect(indexAfter(segment, cursors[1]!, true)).toBe(1);
    expect(indexAfter(segment, '')).toBe(0);
    expect(indexAfter(segment, cursors[3]!)).toBe(4);
    expect(indexAfter(segment, `${cursors[3]!}~`, true)).toBe(4);
    expect(cursorAt(segment, 2)).toBe(cursors[2]);
  });
});

/** An in-memory log of segments, to run planWrite against as the IndexedDB adapter does. */
class Model {
  segments: Segment[] = [];
  maxCursor = '';
  pos = 0;

  neighbours(cursors: readonly string[]): Map<string, Neighbours> {
    const out = new Map<string, Neighbours>();
    for (const c of cursors) {
      const around: Neighbours = {};
      const before = this.segments.filter((s) => s.first <= c).at(-1);
      const after = this.segments.find((s) => s.first > c);
      if (before !== undefined) around.before = segmentKey(before);
      if (after !== undefined) around.after = segmentKey(after);
      out.set(c, around);
    }
    return out;
  }

  write(events: StoredEventRecord[]): void {
    const records = events.map((event) => ({ event, pos: ++this.pos }));
    const neighbours = this.neighbours(cursorsToPlace(records, this.maxCursor));
    const keys = segmentsToSplit(neighbours).map((k) => k[0]);
    const split = this.segments.filter((s) => keys.includes(s.first));
    const plan = planWrite({ records, maxCursor: this.maxCursor, neighbours, split });
    const removed = new Set(plan.remove.map((s) => s.first));
    this.segments = [...this.segments.filter((s) => !removed.has(s.first)), ...plan.add].sort(
      (a, b) => (a.first < b.first ? -1 : 1),
    );
    this.maxCursor = plan.maxCursor;
  }

  /** Invariants 1–3 of core/segments.ts. */
  check(): LocalRecord[] {
    const all: LocalRecord[] = [];
    let previousLast = '';
    const positions = new Set<number>();
    for (const s of this.segments) {
      const records = unpackSegment(s);
      expect(records).toHaveLength(s.n);
      expect(s.n).toBeGreaterThan(0);
      expect(s.n).toBeLessThanOrEqual(MAX_SEGMENT_EVENTS);
      expect(s.first > previousLast).toBe(true);
      expect(records[0]!.event.cursor).toBe(s.first);
      expect(records[s.n - 1]!.event.cursor).toBe(s.last);
      // Invariant 3: each of its streams listed once, with the cursor of its first event there.
      const firsts = new Map<string, string>();
      for (const r of records)
        if (!firsts.has(r.event.stream)) firsts.set(r.event.stream, r.event.cursor);
      expect(s.streamKeys).toEqual([...firsts]);
      records.forEach((r, i) => {
        expect(r.pos).toBe(s.pos + i);
        if (i > 0) expect(r.event.cursor > records[i - 1]!.event.cursor).toBe(true);
        positions.add(r.pos);
      });
      previousLast = s.last;
      all.push(...records);
    }
    expect(positions.size).toBe(this.pos);
    return all;
  }
}

describe('planWrite (invariants 1–3, 5, 6)', () => {
  it('packs an append after everything stored into segments of at most MAX_SEGMENT_EVENTS', () => {
    const records = localRun(MAX_SEGMENT_EVENTS + 3);
    const plan = planWrite({ records, maxCursor: '', neighbours: new Map(), split: [] });
    expect(plan.remove).toEqual([]);
    expect(plan.add.map((s) => s.n)).toEqual([MAX_SEGMENT_EVENTS, 3]);
    expect(plan.maxCursor).toBe(records.at(-1)!.event.cursor);
  });

  it('splits a stored segment around a new event that sorts inside it', () => {
    const model = new Model();
    model.write(Array.from({ length: 4 }, (_, i) => event({ seq: i + 1, wall: 10 * (i + 1) })));
    expect(model.segments).toHaveLength(1);
    model.write([event({ replica: replicaB, seq: 1, wall: 25, stream: 's' })]);
    expect(model.segments.map((s) => s.n)).toEqual([2, 1, 2]);
    const all = model.check();
    expect(all.map((r) => r.event.time)).toEqual([10, 20, 25, 30, 40]);
  });

  it('keeps new events apart when a stored one sorts between them', () => {
    const model = new Model();
    model.write([event({ replica: replicaB, seq: 1, wall: 15 })]);
    model.write([event({ seq: 1, wall: 10 }), event({ seq: 2, wall: 20 })]);
    expect(model.segments.map((s) => s.n)).toEqual([1, 1, 1]);
    model.check();
  });

  it('refuses a second event with a stored cursor, or two with one cursor in a batch', () => {
    const model = new Model();
    model.write([event({ seq: 1, wall: 10 }), event({ seq: 2, wall: 20 })]);
    const twin = { ...event({ seq: 1, wall: 10 }), id: EventId.parse('twin') };
    expect(() => model.write([twin])).toThrow(StorageError);
    const a = event({ replica: replicaB, seq: 5, wall: 1 });
    expect(() => model.write([a, { ...a, id: EventId.parse('other') }])).toThrow(StorageError);
  });

  it('keeps the log a partition of the total order over random writes (property)', () => {
    const arbBatch = fc.array(
      fc.record({
        replica: fc.constantFrom(replicaA, replicaB),
        wall: fc.integer({ min: 1, max: 60 }),
        stream: fc.constantFrom('a', 'b'),
      }),
      { minLength: 1, maxLength: 12 },
    );
    fc.assert(
      fc.property(fc.array(arbBatch, { minLength: 1, maxLength: 15 }), (batches) => {
        const model = new Model();
        const seqs = new Map<string, number>();
        const written: StoredEventRecord[] = [];
        for (const batch of batches) {
          const events = batch.map((f) => {
            const seq = (seqs.get(f.replica) ?? 0) + 1;
            seqs.set(f.replica, seq);
            return event({ ...f, seq });
          });
          model.write(events);
          written.push(...events);
        }
        const all = model.check();
        const byCursor = [...written].sort((x, y) => (x.cursor < y.cursor ? -1 : 1));
        expect(all.map((r) => r.event)).toEqual(byCursor);
      }),
    );
  });
});

describe('neighboursFromKeys', () => {
  /** Before and after of each cursor against every stored key: what one lookup per cursor finds. */
  function bruteForce(cursors: readonly string[], all: readonly SegmentKey[]) {
    const out = new Map<string, Neighbours>();
    for (const c of cursors) {
      const around: Neighbours = {};
      const before = all.filter((k) => k[0] <= c).at(-1);
      const after = all.find((k) => k[0] > c);
      if (before !== undefined) around.before = before;
      if (after !== undefined) around.after = after;
      out.set(c, around);
    }
    return out;
  }

  it('finds for every cursor the neighbours a lookup per cursor finds, from the keys of its range', () => {
    const cursor = fc.stringMatching(/^[a-e]{1,3}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(cursor, { maxLength: 20 }),
        fc.array(cursor, { minLength: 1, maxLength: 10 }),
        (firsts, cursors) => {
          const all = [...firsts].sort().map((f, i): SegmentKey => [f as never, f as never, i + 1]);
          const lo = [...cursors].sort()[0]!;
          const hi = [...cursors].sort().at(-1)!;
          // What lookupNeighbours reads: the last key at or before lo, the keys after lo up to
          // hi, and the first key after hi.
          const keys = [
            ...all.filter((k) => k[0] <= lo).slice(-1),
            ...all.filter((k) => k[0] > lo && k[0] <= hi),
            ...all.filter((k) => k[0] > hi).slice(0, 1),
          ];
          expect(neighboursFromKeys(cursors, keys)).toEqual(bruteForce(cursors, all));
        },
      ),
      { numRuns: 500 },
    );
  });
});
