import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type IngestPlan,
  type LocalAppendPlan,
  planIngest,
  planLocalAppend,
  type ReplicaCounters,
} from '../../src/core/append.ts';
import { slotOf } from '../../src/core/copies.ts';
import { ConcurrencyError, IdempotencyError } from '../../src/core/errors.ts';
import type {
  ExpectedVersion,
  JsonValue,
  LocalRecord,
  StoredEventRecord,
} from '../../src/core/events.ts';
import { compareHlc, decodeHlc, encodeHlc, maxHlc } from '../../src/core/hlc.ts';
import { Cursor, EventId, type ReplicaId, Seq } from '../../src/core/ids.ts';
import type { ValidNewEvent } from '../../src/core/validate.ts';
import {
  appendFresh,
  arbHlcState,
  DAY_MS,
  freshCounters,
  newEvent,
  replicaA,
  replicaB,
  replicaC,
  T0,
} from './fixtures.ts';

type InputEvent = ValidNewEvent & { id: EventId };

function write(plan: LocalAppendPlan) {
  if (plan.kind !== 'write') throw new Error(`expected a write plan, got ${plan.kind}`);
  return plan;
}

function rejected(plan: LocalAppendPlan) {
  if (plan.kind !== 'rejected') throw new Error(`expected a rejection, got ${plan.kind}`);
  return plan.error;
}

const arbCounters: fc.Arbitrary<ReplicaCounters> = fc.record({
  seq: fc.integer({ min: 0, max: 1_000_000 }),
  pos: fc.integer({ min: 0, max: 1_000_000 }),
  clock: arbHlcState,
});

const arbNow = fc.oneof(
  fc.integer({ min: T0 - DAY_MS, max: T0 + DAY_MS }),
  fc.integer({ min: 0, max: 2 * T0 }),
);

describe('planLocalAppend: a batch that is written', () => {
  it('append invariants 2, 3, 4, 7: seq and pos dense, versions consecutive, HLCs strictly increasing past the prior clock', () => {
    fc.assert(
      fc.property(
        arbCounters,
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 30 }),
        arbNow,
        (counters, streamVersion, size, now) => {
          const events = Array.from({ length: size }, (_, i) => newEvent(`e${i}`, { i }));
          const plan = write(
            planLocalAppend(
              { replica: replicaA, stream: 'cart-1', events, expectedVersion: 'any', now },
              { counters, streamVersion, existing: events.map(() => undefined) },
            ),
          );
          expect(plan.events).toHaveLength(size);
          let previous = counters.clock;
          plan.events.forEach(({ event, pos }, i) => {
            expect(event.id).toBe(events[i]!.id);
            expect(event.seq).toBe(counters.seq + i + 1);
            expect(pos).toBe(counters.pos + i + 1);
            expect(event.version).toBe(streamVersion + i + 1);
            const hlc = decodeHlc(event.hlc);
            expect(compareHlc(hlc, previous)).toBeGreaterThan(0);
            expect(event.time).toBe(hlc.wall);
            expect(event.cursor).toBe(Cursor.make(event.hlc, replicaA, event.seq));
            expect(event.stream).toBe('cart-1');
            expect(event.replica).toBe(replicaA);
            previous = hlc;
          });
          expect(plan.counters).toEqual({
            seq: counters.seq + size,
            pos: counters.pos + size,
            clock: previous,
          });
          expect(plan.streamVersion).toBe(streamVersion + size);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an event appended without an id gets the canonical id of its (replica, seq)', () => {
    const events: (ValidNewEvent & { id?: EventId })[] = [
      { type: 't', data: 1, schema: 1 },
      { ...newEvent('given', 2) },
      { type: 't', data: 3, schema: 1 },
    ];
    const plan = write(
      planLocalAppend(
        { replica: replicaA, stream: 's', events, expectedVersion: 'any', now: T0 },
        {
          counters: freshCounters(),
          streamVersion: 0,
          existing: [undefined, undefined, undefined],
        },
      ),
    );
    expect(plan.events.map((r) => r.event.id)).toEqual([
      EventId.canonical(replicaA, Seq.make(1)),
      'given',
      EventId.canonical(replicaA, Seq.make(3)),
    ]);
  });

  it('append invariant 3: HLCs keep increasing across appends while the wall clock jumps back and forth', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            step: fc.integer({ min: -2 * DAY_MS, max: 2 * DAY_MS }),
            size: fc.integer({ min: 1, max: 5 }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        (appends) => {
          let counters = freshCounters();
          let version = 0;
          let now = T0;
          let lastCursor = '';
          let n = 0;
          for (const { step, size } of appends) {
            now += step;
            const events = Array.from({ length: size }, () => newEvent(`e${n++}`, n));
            const plan = write(
              planLocalAppend(
                { replica: replicaA, stream: 's', events, expectedVersion: version, now },
                { counters, streamVersion: version, existing: events.map(() => undefined) },
              ),
            );
            for (const { event } of plan.events) {
              expect(event.cursor > lastCursor).toBe(true);
              lastCursor = event.cursor;
            }
            counters = plan.counters;
            version = plan.streamVersion;
          }
          expect(counters.seq).toBe(n);
          expect(version).toBe(n);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps meta, sets schema only when it is not 1, and takes the wall clock when it is ahead', () => {
    const plan = write(
      planLocalAppend(
        {
          replica: replicaA,
          stream: 's',
          events: [newEvent('a', 1, { meta: { by: 'ann' } }), newEvent('b', 2, { schema: 3 })],
          expectedVersion: 'none',
          now: T0,
        },
        { counters: freshCounters(), streamVersion: 0, existing: [undefined, undefined] },
      ),
    );
    const [a, b] = plan.events.map((w) => w.event);
    expect(a).toEqual({
      id: 'a',
      type: 'thing-happened',
      data: 1,
      meta: { by: 'ann' },
      stream: 's',
      version: 1,
      replica: replicaA,
      seq: 1,
      hlc: encodeHlc({ wall: T0, counter: 0 }),
      time: T0,
      cursor: Cursor.make(encodeHlc({ wall: T0, counter: 0 }), replicaA, a!.seq),
    });
    expect('schema' in a!).toBe(false);
    expect(b?.schema).toBe(3);
    expect(b?.hlc).toBe(encodeHlc({ wall: T0, counter: 1 }));
  });
});

describe('planLocalAppend: idempotency (append invariant 5)', () => {
  const stream = 'orders-1';
  const batch: InputEvent[] = [
    newEvent(
      'o1',
      { sku: 'a', qty: 1, opts: { gift: true, wrap: 'red' } },
      { meta: { u: 'x', v: 1 } },
    ),
    newEvent('o2', [1, 2]),
  ];
  const stored = appendFresh(replicaB, stream, batch);

  /** The same events, with their data and meta keys in another order. */
  const reordered: InputEvent[] = [
    newEvent(
      'o1',
      { opts: { wrap: 'red', gift: true }, qty: 1, sku: 'a' },
      { meta: { v: 1, u: 'x' } },
    ),
    newEvent('o2', [1, 2]),
  ];

  const plan = (
    events: InputEvent[],
    existing: (StoredEventRecord | undefined)[],
    expectedVersion: ExpectedVersion = 'any',
    streamVersion = 2,
    onStream = stream,
  ) =>
    planLocalAppend(
      { replica: replicaA, stream: onStream, events, expectedVersion, now: T0 },
      { counters: { seq: 7, pos: 9, clock: { wall: T0, counter: 0 } }, streamVersion, existing },
    );

  it('returns the stored events and writes nothing when every id is stored with an equal payload', () => {
    const result = plan(reordered, stored);
    expect(result).toEqual({ kind: 'duplicate', events: stored });
    if (result.kind === 'duplicate') expect(result.events[0]).toBe(stored[0]);
  });

  it('decides a full duplicate before expectedVersion: a stale expectation is no error then', () => {
    for (const expected of [0, 1, 5, 'none'] as const) {
      expect(plan(reordered, stored, expected).kind).toBe('duplicate');
    }
  });

  it('treats a missing schema as schema 1 when comparing payloads', () => {
    const [first] = stored;
    expect(first!.schema).toBeUndefined();
    expect(plan([{ ...batch[0]!, schema: 1 }], [first]).kind).toBe('duplicate');
  });

  const differing: [string, InputEvent, string][] = [
    [
      'data',
      newEvent(
        'o1',
        { sku: 'a', qty: 2, opts: { gift: true, wrap: 'red' } },
        { meta: { u: 'x', v: 1 } },
      ),
      stream,
    ],
    [
      'nested data',
      newEvent(
        'o1',
        { sku: 'a', qty: 1, opts: { gift: false, wrap: 'red' } },
        { meta: { u: 'x', v: 1 } },
      ),
      stream,
    ],
    ['meta', newEvent('o1', batch[0]!.data, { meta: { u: 'y', v: 1 } }), stream],
    ['a missing meta', newEvent('o1', batch[0]!.data), stream],
    ['type', newEvent('o1', batch[0]!.data, { type: 'other', meta: { u: 'x', v: 1 } }), stream],
    ['schema', newEvent('o1', batch[0]!.data, { schema: 2, meta: { u: 'x', v: 1 } }), stream],
    ['stream', newEvent('o1', batch[0]!.data, { meta: { u: 'x', v: 1 } }), 'orders-2'],
  ];

  it.each(differing)(
    'rejects a stored id whose %s differs, with reason payload-differs',
    (_n, event, onStream) => {
      const error = rejected(plan([event, reordered[1]!], stored, 'any', 2, onStream));
      expect(error).toBeInstanceOf(IdempotencyError);
      expect(error).toMatchObject({
        code: 'IDEMPOTENCY',
        eventId: 'o1',
        reason: 'payload-differs',
      });
    },
  );

  it('rejects a differing payload before checking expectedVersion', () => {
    const error = rejected(plan([differing[0]![1], reordered[1]!], stored, 99));
    expect(error).toBeInstanceOf(IdempotencyError);
  });

  it('rejects a batch that mixes stored and new ids with reason mixed-batch, before expectedVersion', () => {
    for (const expected of ['any', 'none', 2, 99] as const) {
      const error = rejected(
        plan([newEvent('new-1', 0), reordered[1]!], [undefined, stored[1]], expected),
      );
      expect(error).toBeInstanceOf(IdempotencyError);
      expect(error).toMatchObject({ code: 'IDEMPOTENCY', eventId: 'o2', reason: 'mixed-batch' });
    }
  });

  it('rejects an id that appears twice in one batch with reason duplicate-in-batch', () => {
    const events = [newEvent('x', 1), newEvent('y', 2), newEvent('x', 1)];
    const error = rejected(plan(events, [undefined, undefined, undefined]));
    expect(error).toBeInstanceOf(IdempotencyError);
    expect(error).toMatchObject({
      code: 'IDEMPOTENCY',
      eventId: 'x',
      reason: 'duplicate-in-batch',
    });
  });
});

describe('planLocalAppend: expectedVersion', () => {
  const run = (expectedVersion: ExpectedVersion, streamVersion: number) =>
    planLocalAppend(
      { replica: replicaA, stream: 'acct-9', events: [newEvent('n', 1)], expectedVersion, now: T0 },
      { counters: freshCounters(), streamVersion, existing: [undefined] },
    );

  it("rejects 'none' on a stream that exists, with stream, expected and actual version", () => {
    const error = rejected(run('none', 3));
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({
      code: 'CONCURRENCY',
      stream: 'acct-9',
      expectedVersion: 'none',
      actualVersion: 3,
    });
  });

  it('rejects a stale number, with stream, expected and actual version', () => {
    const error = rejected(run(2, 3));
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ stream: 'acct-9', expectedVersion: 2, actualVersion: 3 });
    expect(rejected(run(4, 3))).toMatchObject({ expectedVersion: 4, actualVersion: 3 });
    expect(rejected(run(0, 3))).toMatchObject({ expectedVersion: 0, actualVersion: 3 });
  });

  it('writes when the expectation holds, whatever it is', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constant<ExpectedVersion>('any'),
          fc.constant<ExpectedVersion>('none'),
          fc.integer({ min: 0, max: 6 }),
        ),
        fc.integer({ min: 0, max: 6 }),
        (expected, actual) => {
          const result = run(expected, actual);
          const holds =
            expected === 'any' || (expected === 'none' ? actual === 0 : expected === actual);
          expect(result.kind).toBe(holds ? 'write' : 'rejected');
          if (result.kind === 'rejected') {
            expect(result.error).toBeInstanceOf(ConcurrencyError);
            expect(result.error).toMatchObject({
              expectedVersion: expected,
              actualVersion: actual,
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/* ---------------------------------- ingest ---------------------------------- */

/** Events as three replicas would have appended them, some with clocks far ahead. */
const arbRemoteEvents: fc.Arbitrary<StoredEventRecord[]> = fc
  .array(
    fc.record({
      replica: fc.constantFrom(replicaA, replicaB, replicaC),
      stream: fc.constantFrom('s1', 's2', 's3'),
      offset: fc.oneof(
        fc.integer({ min: -DAY_MS, max: DAY_MS }),
        fc.integer({ min: DAY_MS - 5, max: 3 * DAY_MS }),
      ),
      data: fc.jsonValue({ maxDepth: 2 }).map((v) => v as JsonValue),
    }),
    { maxLength: 25 },
  )
  .map((specs) => {
    const counters = new Map<ReplicaId, ReplicaCounters>();
    const versions = new Map<string, number>();
    return specs.map((spec, i) => {
      const key = `${spec.replica}/${spec.stream}`;
      const plan = write(
        planLocalAppend(
          {
            replica: spec.replica,
            stream: spec.stream,
            events: [newEvent(`ev-${i}`, spec.data)],
            expectedVersion: 'any',
            now: T0 + spec.offset,
          },
          {
            counters: counters.get(spec.replica) ?? freshCounters(),
            streamVersion: versions.get(key) ?? 0,
            existing: [undefined],
          },
        ),
      );
      counters.set(spec.replica, plan.counters);
      versions.set(key, plan.streamVersion);
      return plan.events[0]!.event;
    });
  });

/** A local log of one replica, enough to answer what planIngest reads and to apply its plan. */
class Log {
  readonly byId = new Map<string, LocalRecord>();
  readonly bySlot = new Map<string, LocalRecord>();
  readonly positions: { id: string; pos: number }[] = [];
  readonly streamVersions = new Map<string, number>();
  counters: ReplicaCounters = freshCounters();

  ingest(events: StoredEventRecord[], now: number, replica: ReplicaId = replicaA): IngestPlan {
    const streams = new Map<string, number>();
    for (const e of events) streams.set(e.stream, this.streamVersions.get(e.stream) ?? 0);
    const plan = planIngest(
      { replica, events, now, maxClockDriftMs: DAY_MS },
      {
        counters: this.counters,
        existing: events.map((e) => this.byId.get(e.id)),
        slots: events.map((e) => this.bySlot.get(slotOf(e))),
        streamVersions: streams,
      },
    );
    for (const record of plan.remove) {
      this.byId.delete(record.event.id);
      this.bySlot.delete(slotOf(record.event));
    }
    for (const record of plan.write) {
      expect(this.byId.has(record.event.id)).toBe(false);
      this.byId.set(record.event.id, record);
      this.bySlot.set(slotOf(record.event), record);
      this.positions.push({ id: record.event.id, pos: record.pos });
    }
    for (const [stream, version] of plan.streamVersions) this.streamVersions.set(stream, version);
    this.counters = plan.counters;
    return plan;
  }
}

describe('planIngest', () => {
  it('append invariants 6 and 7: ingesting the same events again, in any chunks and with repeats, writes each once at dense positions', () => {
    fc.assert(
      fc.property(
        arbRemoteEvents,
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 }),
        (events, picks, chunkSizes) => {
          fc.pre(events.length > 0);
          // a delivery: every event at least once, plus repeats, cut into chunks
          const delivery = [...events, ...picks.map((p) => events[p % events.length]!)];
          const log = new Log();
          let offset = 0;
          let c = 0;
          while (offset < delivery.length) {
            const size = chunkSizes[c++ % chunkSizes.length]!;
            const plan = log.ingest(delivery.slice(offset, offset + size), T0);
            expect(plan.lost).toEqual([]);
            offset += size;
          }
          expect(log.byId.size).toBe(events.length);
          expect(log.positions.map((p) => p.pos)).toEqual(events.map((_, i) => i + 1));
          expect(log.counters.pos).toBe(events.length);
          // and the whole delivery once more writes nothing
          const again = log.ingest(delivery, T0);
          expect(again.write).toEqual([]);
          expect(again.counters).toEqual(log.counters);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes an id repeated inside one batch once: the first copy', () => {
    const [e1, e2] = appendFresh(replicaB, 's', [newEvent('x', 1), newEvent('y', 2)]) as [
      StoredEventRecord,
      StoredEventRecord,
    ];
    const log = new Log();
    const plan = log.ingest([e1, e2, e1, e2, e1], T0);
    expect(plan.write.map((w) => [w.event.id, w.pos])).toEqual([
      ['x', 1],
      ['y', 2],
    ]);
    expect(plan.lost).toEqual([]);
  });

  it('append invariant 6: keeps the same copy of an id received with two payloads in either order, and reports the other', () => {
    const [original] = appendFresh(replicaB, 's', [newEvent('x', { v: 1 })]);
    const forged = { ...original!, data: { v: 2 } };
    // Equal cursors: the canonical JSON decides ("v":1 sorts first), whatever the order.
    for (const order of [
      [original!, forged],
      [forged, original!],
    ]) {
      const log = new Log();
      log.ingest([order[0]!], T0);
      const plan = log.ingest([order[1]!], T0);
      expect(log.byId.get('x')?.event.data).toEqual({ v: 1 });
      expect(plan.lost.map((l) => [l.code, l.event.data])).toEqual([['ID_CONFLICT', { v: 2 }]]);
      expect(new Log().ingest(order, T0).write.map((w) => w.event.data)).toEqual([{ v: 1 }]);
    }
  });

  it('append invariant 6: a held copy that loses leaves the log and the winner takes a new position', () => {
    const [late] = appendFresh(replicaB, 's', [newEvent('x', { from: 'B' })], {
      now: T0 + 5_000,
    });
    const [early] = appendFresh(replicaC, 's', [newEvent('x', { from: 'C' })], { now: T0 });
    const log = new Log();
    log.ingest([late!], T0);
    const plan = log.ingest([early!], T0);
    expect(plan.remove.map((r) => [r.event.data, r.pos])).toEqual([[{ from: 'B' }, 1]]);
    expect(plan.write.map((w) => [w.event.data, w.pos])).toEqual([[{ from: 'C' }, 2]]);
    expect(plan.lost).toMatchObject([{ code: 'ID_CONFLICT', held: true, keptId: 'x' }]);
  });

  it('append invariant 6: of two ids at one (replica, seq), every order keeps the one first in the total order', () => {
    const [a] = appendFresh(replicaB, 's', [newEvent('a', 1)], { now: T0 });
    const [b] = appendFresh(replicaB, 's', [newEvent('b', 2)], { now: T0 + 1_000 });
    for (const order of [
      [a!, b!],
      [b!, a!],
    ]) {
      const log = new Log();
      log.ingest([order[0]!], T0);
      const plan = log.ingest([order[1]!], T0);
      expect([...log.byId.keys()]).toEqual(['a']);
      expect(plan.lost.map((l) => [l.code, l.event.id])).toEqual([['SEQ_CONFLICT', 'b']]);
      expect(new Log().ingest(order, T0).write.map((w) => w.event.id)).toEqual(['a']);
    }
  });

  it('append invariant 3: the clock reaches every ingested HLC within drift, and stops at now + drift beyond it', () => {
    fc.assert(
      fc.property(
        arbRemoteEvents,
        fc.integer({ min: -DAY_MS, max: DAY_MS }),
        (events, nowOffset) => {
          const now = T0 + nowOffset;
          const log = new Log();
          const before = log.counters.clock;
          const plan = log.ingest(events, now);
          const within = events.filter((e) => decodeHlc(e.hlc).wall <= now + DAY_MS);
          const beyond = events.filter((e) => decodeHlc(e.hlc).wall > now + DAY_MS);
          for (const e of within)
            expect(compareHlc(plan.counters.clock, decodeHlc(e.hlc))).toBeGreaterThanOrEqual(0);
          expect(plan.skewed).toBe(beyond.length > 0);
          expect(plan.counters.clock.wall).toBeLessThanOrEqual(Math.max(before.wall, now + DAY_MS));
          const reached = within.reduce((m, e) => maxHlc(m, decodeHlc(e.hlc)), before);
          const expected =
            beyond.length > 0 ? maxHlc(reached, { wall: now + DAY_MS, counter: 0 }) : reached;
          expect(plan.counters.clock).toEqual(expected);

          // the next local event sorts after every ingested event within drift
          const local = write(
            planLocalAppend(
              {
                replica: replicaA,
                stream: 'mine',
                events: [newEvent('local', 0)],
                expectedVersion: 'any',
                now,
              },
              { counters: plan.counters, streamVersion: 0, existing: [undefined] },
            ),
          ).events[0]!.event;
          for (const e of within) {
            expect(local.hlc > e.hlc).toBe(true);
            expect(local.cursor > e.cursor).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never refuses an event for clock skew: an event a week ahead is written', () => {
    const [ahead] = appendFresh(replicaB, 's', [newEvent('future', 1)], { now: T0 + 7 * DAY_MS });
    const plan = new Log().ingest([ahead!], T0);
    expect(plan.write.map((w) => w.event.id)).toEqual(['future']);
    expect(plan.skewed).toBe(true);
    expect(plan.counters.clock).toEqual({ wall: T0 + DAY_MS, counter: 0 });
  });

  it("moves the seq counter past this replica's own events coming back, and only those", () => {
    const mine = appendFresh(replicaA, 's', [
      newEvent('m1', 1),
      newEvent('m2', 2),
      newEvent('m3', 3),
    ]);
    const theirs = appendFresh(replicaB, 's', [
      newEvent('t1', 1),
      newEvent('t2', 2),
      newEvent('t3', 3),
      newEvent('t4', 4),
    ]);
    const log = new Log();
    expect(log.ingest([theirs[3]!], T0).counters.seq).toBe(0);
    expect(log.ingest([mine[2]!, mine[0]!], T0).counters.seq).toBe(3);
    expect(log.ingest([mine[1]!], T0).counters.seq).toBe(3);
  });

  it('append invariant 4: raises stream versions to the largest seen and flags versions already held', () => {
    const a = appendFresh(replicaA, 's1', [newEvent('a1', 1), newEvent('a2', 2)]);
    const b = appendFresh(replicaB, 's1', [newEvent('b1', 1)]);
    const log = new Log();
    const first = log.ingest([a[0]!, a[1]!], T0);
    expect(first.streamVersions).toEqual(new Map([['s1', 2]]));
    expect(first.possibleConflicts.size).toBe(0);
    const second = log.ingest([b[0]!], T0);
    expect(second.streamVersions.size).toBe(0);
    expect([...second.possibleConflicts]).toEqual(['s1']);
    expect(log.streamVersions.get('s1')).toBe(2);
  });
});
