/**
 * planBatches keeps runs of elided events whole (core/sync-runs.ts, core/integrity.ts isElided):
 * a receiver accepts an event without its `$sig` only when a later event of the same batch
 * covers it, so whoever relays such events must never end a batch inside a run.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonObject, LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { isElided } from '../../src/core/integrity.ts';
import { utf8Length } from '../../src/core/json.ts';
import {
  BATCH_ENVELOPE_BYTES,
  type BatchLimits,
  KEY_WIRE_BYTES,
  type PlannedBatch,
  payloadBytes,
  planBatches,
} from '../../src/core/sync.ts';
import { runsOpenAt } from '../../src/core/sync-runs.ts';
import { eventId, syncRecord } from './fixtures.ts';

// ---------------------------------------------------------------------------------------------
// Builders

/** e: elided (no `$sig`), s: signed and chained, p: unsigned (a replica that does not sign), t: strict. */
type Kind = 'e' | 's' | 'p' | 't';

function metaOf(kind: Kind, seq: number): JsonObject | undefined {
  // A replica's first chained event names its key instead of a link (core/integrity.ts).
  const chain: JsonObject =
    seq === 1 ? { $key: 'key.nonce' } : { $link: `${(seq - 1).toString(36)}.hash.prev` };
  switch (kind) {
    case 'e':
      return chain;
    case 's':
      return { ...chain, $sig: 'sig' };
    case 't':
      return { $strict: true, $sig: 'sig' };
    case 'p':
      return undefined;
  }
}

/** A record named `<replica><seq>` (its id too), e.g. rec(3, 'B', 2, 'e'). */
function rec(pos: number, replica: string, seq: number, kind: Kind, size = 0): LocalRecord {
  const record = syncRecord(pos, replica, seq, size);
  const event = record.event;
  event.id = eventId(`${replica}${seq}`);
  const meta = metaOf(kind, seq);
  if (meta !== undefined) event.meta = meta;
  return record;
}

/**
 * Records at positions 1, 2, ... from a text like 'A1s B1e B2e B3s': replica, seq, kind, and an
 * optional data size after a colon ('X1s:2000').
 */
function page(text: string): LocalRecord[] {
  return text
    .split(' ')
    .filter((word) => word !== '')
    .map((word, i) => {
      const match = /^([A-Z])(\d+)([espt])(?::(\d+))?$/.exec(word);
      if (match === null) throw new Error(`bad record ${word}`);
      const [, replica, seq, kind, size] = match;
      return rec(i + 1, replica!, Number(seq), kind as Kind, size === undefined ? 0 : Number(size));
    });
}

/** Batches as 'from-to: ids' (left-out events in brackets). */
function shape(batches: readonly PlannedBatch[]): string[] {
  return batches.map((b) => {
    const left = b.leftOut.map((l) => `[${l.event.id}]`);
    return `${b.from}-${b.to}: ${[...b.events.map((e) => e.id), ...left].join(' ')}`;
  });
}

/**
 * Index in `events` where the runs open after the last of them began (core/sync-runs.ts
 * invariant 2), or -1 when none is open: computed here independently of the planner.
 */
function openRunsSince(events: readonly StoredEventRecord[]): number {
  const open = new Set<string>();
  let since = -1;
  events.forEach((event, i) => {
    if (isElided(event)) {
      if (open.size === 0) since = i;
      open.add(event.replica);
    } else if (event.meta?.$strict !== true && open.delete(event.replica) && open.size === 0) {
      since = -1;
    }
  });
  return since;
}

const plan = (
  records: LocalRecord[],
  limits: BatchLimits,
  extra: { skip?: (r: LocalRecord) => boolean; more?: boolean; ownReplica?: string } = {},
) =>
  planBatches(0, records, {
    ownReplica: extra.ownReplica ?? 'A',
    skip: extra.skip ?? (() => false),
    limits,
    sizeOf: () => 100,
    elided: isElided,
    ...(extra.more === undefined ? {} : { more: extra.more }),
  });

const planToday = (records: LocalRecord[], limits: BatchLimits, ownReplica = 'A') =>
  planBatches(0, records, { ownReplica, skip: () => false, limits, sizeOf: () => 100 });

// ---------------------------------------------------------------------------------------------
// Today's planBatches, copied before runs were kept whole: without elided events the planner
// must give exactly what this gives.

function planBatchesBefore(
  from: number,
  records: readonly LocalRecord[],
  options: {
    ownReplica: string;
    skip: (record: LocalRecord) => boolean;
    limits: BatchLimits;
    sizeOf?: (event: StoredEventRecord) => number;
    payloadOf?: (event: StoredEventRecord) => number;
  },
): PlannedBatch[] {
  const sizeOf = options.sizeOf ?? ((e: StoredEventRecord) => utf8Length(JSON.stringify(e)) + 1);
  const payloadOf = options.payloadOf ?? payloadBytes;
  const { limits } = options;
  const budget = Math.max(1, limits.maxMessageBytes - BATCH_ENVELOPE_BYTES);
  const maxEventBytes = limits.maxEventBytes ?? Number.POSITIVE_INFINITY;
  const emptyBatch = (start: number): PlannedBatch => ({
    from: start,
    to: start,
    toId: '',
    events: [],
    bytes: 0,
    replicas: new Set(),
    ownSeq: 0,
    leftOut: [],
  });
  const batches: PlannedBatch[] = [];
  let current: PlannedBatch | undefined;
  let start = from;
  for (const record of records) {
    if (current === undefined) {
      current = emptyBatch(start);
    }
    const event = record.event;
    if (!options.skip(record)) {
      const base = sizeOf(event);
      const size = base + (current.replicas.has(event.replica) ? 0 : KEY_WIRE_BYTES);
      const payload = size > maxEventBytes ? payloadOf(event) : 0;
      if (payload > maxEventBytes || size > budget) {
        const reason =
          payload > maxEventBytes
            ? { kind: 'too-large' as const, bytes: payload, limit: maxEventBytes }
            : { kind: 'too-large' as const, bytes: size, limit: budget };
        current.leftOut.push({ pos: record.pos, event, reason });
      } else {
        const full =
          current.events.length >= limits.maxBatchEvents ||
          (current.events.length > 0 && current.bytes + size > budget);
        if (full) {
          batches.push(current);
          start = current.to;
          current = emptyBatch(start);
        }
        current.events.push(event);
        current.bytes += current.replicas.has(event.replica) ? size : base + KEY_WIRE_BYTES;
        current.replicas.add(event.replica);
      }
    }
    if (event.replica === options.ownReplica && event.seq > current.ownSeq) {
      current.ownSeq = event.seq;
    }
    current.to = record.pos;
    current.toId = event.id;
  }
  if (current !== undefined) batches.push(current);
  return batches;
}

// ---------------------------------------------------------------------------------------------

describe('planBatches keeps runs of elided events whole (rule 1)', () => {
  it('moves a run that maxBatchEvents would split whole to the next batch', () => {
    const records = page('A1s A2s B1e B2e B3s A3s');
    const limits = { maxBatchEvents: 4, maxMessageBytes: 100_000 };
    expect(shape(planToday(records, limits))).toEqual(['0-4: A1 A2 B1 B2', '4-6: B3 A3']);
    const batches = plan(records, limits);
    expect(shape(batches)).toEqual(['0-2: A1 A2', '2-6: B1 B2 B3 A3']);
    // The cut batch is exactly the batch that ends at A2.
    expect(batches[0]).toEqual(planToday(records.slice(0, 2), limits)[0]);
  });

  it('moves a run that the byte budget would split whole to the next batch', () => {
    // 100 bytes an event, and 128 for each replica's key: A1 228, B1 228, B2 100, B3 100.
    const records = page('A1s B1e B2e B3s');
    const limits = { maxBatchEvents: 100, maxMessageBytes: BATCH_ENVELOPE_BYTES + 600 };
    expect(shape(planToday(records, limits))).toEqual(['0-3: A1 B1 B2', '3-4: B3']);
    const batches = plan(records, limits);
    expect(shape(batches)).toEqual(['0-1: A1', '1-4: B1 B2 B3']);
    expect(batches[0]).toEqual(planToday(records.slice(0, 1), limits)[0]);
    expect(batches[0]!.bytes).toBe(228);
    expect(batches[1]!.bytes).toBe(428);
    expect([...batches[0]!.replicas]).toEqual(['A']);
  });

  it('keeps adjacent runs of two replicas each whole', () => {
    const records = page('A1s B1e B2e B3s C1e C2e C3s');
    const limits = { maxBatchEvents: 5, maxMessageBytes: 100_000 };
    expect(shape(planToday(records, limits))).toEqual(['0-5: A1 B1 B2 B3 C1', '5-7: C2 C3']);
    expect(shape(plan(records, limits))).toEqual(['0-4: A1 B1 B2 B3', '4-7: C1 C2 C3']);
  });

  it('cuts interleaved runs before the first of them, not only before the earliest still open', () => {
    // When X1..B2 fill the batch, only B's run is open, but A's (closed by A2) overlaps it:
    // a cut before B1 would leave A1 uncovered.
    const records = page('X1s A1e B1e A2s B2e B3s C1s');
    const limits = { maxBatchEvents: 5, maxMessageBytes: 100_000 };
    expect(shape(planToday(records, limits))).toEqual(['0-5: X1 A1 B1 A2 B2', '5-7: B3 C1']);
    const batches = plan(records, limits);
    expect(shape(batches)).toEqual(['0-1: X1', '1-6: A1 B1 A2 B2 B3', '6-7: C1']);
    for (const batch of batches) expect(openRunsSince(batch.events)).toBe(-1);
  });

  it('neither opens nor closes a run with a strict event of the replica', () => {
    const records = page('A1s B1e B2t B3s');
    const limits = { maxBatchEvents: 3, maxMessageBytes: 100_000 };
    expect(shape(plan(records, limits))).toEqual(['0-1: A1', '1-4: B1 B2 B3']);
  });

  it('gives the cut batch the skipped and left-out records before the run, and the next batch those after', () => {
    // P's events are the peer's own (skipped); Y1 and X1 are over the peer's maxEventBytes.
    const records = page('A1s Y1s:900 P1s B1e X1s:900 P2s B2e B3s');
    const limits = { maxBatchEvents: 3, maxMessageBytes: 100_000, maxEventBytes: 500 };
    const skip = (r: LocalRecord) => r.event.replica === 'P';
    const sized: string[] = [];
    const batches = planBatches(0, records, {
      ownReplica: 'P',
      skip,
      limits,
      sizeOf: (event) => {
        sized.push(event.id);
        return utf8Length(JSON.stringify(event)) + 1; // as planBatches' own sizeOf
      },
      elided: isElided,
    });
    expect(shape(batches)).toEqual(['0-3: A1 [Y1]', '3-8: B1 B2 B3 [X1]']);
    // Exactly the batch that ends at P1, the record before the run.
    const alone = planBatches(0, records.slice(0, 3), { ownReplica: 'P', skip, limits });
    expect(batches[0]).toEqual(alone[0]);
    expect(batches[0]).toMatchObject({ to: 3, toId: 'P1', ownSeq: 1 });
    expect(batches[1]).toMatchObject({ from: 3, to: 8, toId: 'B3', ownSeq: 2 });
    // Each record not skipped is sized once, in record order, though B1 and X1 were planned twice.
    expect(sized).toEqual(['A1', 'Y1', 'B1', 'X1', 'B2', 'B3']);
  });
});

describe('a run longer than a batch (rule 2)', () => {
  it('fills the batch as before when the run began at its first carried event', () => {
    const records = page('B1e B2e B3e B4e B5s A1s');
    const limits = { maxBatchEvents: 3, maxMessageBytes: 100_000 };
    expect(shape(plan(records, limits))).toEqual(shape(planToday(records, limits)));
    expect(shape(plan(records, limits))).toEqual(['0-3: B1 B2 B3', '3-6: B4 B5 A1']);
  });

  it('moves the run to a batch of its own first, then splits it there', () => {
    const records = page('A1s B1e B2e B3e B4e B5s');
    const limits = { maxBatchEvents: 3, maxMessageBytes: 100_000 };
    expect(shape(plan(records, limits))).toEqual(['0-1: A1', '1-4: B1 B2 B3', '4-6: B4 B5']);
  });

  it('also when skipped records come before the run in the batch', () => {
    const records = page('P1s B1e B2e B3e B4s');
    const limits = { maxBatchEvents: 2, maxMessageBytes: 100_000 };
    const skip = (r: LocalRecord) => r.event.replica === 'P';
    expect(shape(plan(records, limits, { skip }))).toEqual(['0-3: B1 B2', '3-5: B3 B4']);
  });
});

describe('the end of a full page (rule 3)', () => {
  const limits = { maxBatchEvents: 10, maxMessageBytes: 100_000 };

  it('leaves a run open at the end of a full page for the next read', () => {
    const records = page('A1s A2s B1e B2e');
    expect(shape(plan(records, limits, { more: true }))).toEqual(['0-2: A1 A2']);
    const [batch] = plan(records, limits, { more: true });
    expect(batch).toEqual(planToday(records.slice(0, 2), limits)[0]);
  });

  it('sends the page as before when it is not full (nothing follows it yet)', () => {
    const records = page('A1s A2s B1e B2e');
    expect(shape(plan(records, limits, { more: false }))).toEqual(['0-4: A1 A2 B1 B2']);
    expect(shape(plan(records, limits))).toEqual(['0-4: A1 A2 B1 B2']);
  });

  it('keeps the only batch as it is when it holds nothing but the run', () => {
    const records = page('B1e B2e');
    expect(shape(plan(records, limits, { more: true }))).toEqual(['0-2: B1 B2']);
  });

  it('drops the last batch when it holds nothing but the run and earlier batches went', () => {
    const small = { maxBatchEvents: 2, maxMessageBytes: 100_000 };
    const records = page('A1s A2s B1e B2e');
    expect(shape(plan(records, small))).toEqual(['0-2: A1 A2', '2-4: B1 B2']);
    const sized: string[] = [];
    const batches = planBatches(0, records, {
      ownReplica: 'A',
      skip: () => false,
      limits: small,
      sizeOf: (event) => {
        sized.push(event.id);
        return 100;
      },
      elided: isElided,
      more: true,
    });
    expect(shape(batches)).toEqual(['0-2: A1 A2']);
    // The sender's texts line up with the batches' events, and past them only the dropped tail's.
    expect(sized).toEqual(['A1', 'A2', 'B1', 'B2']);
  });

  it('cuts the last batch back after a cut earlier in the page', () => {
    const small = { maxBatchEvents: 3, maxMessageBytes: 100_000 };
    const records = page('A1s B1e B2e B3s C1s C2e');
    expect(shape(plan(records, small, { more: true }))).toEqual([
      '0-1: A1',
      '1-4: B1 B2 B3',
      '4-5: C1',
    ]);
  });
});

describe('runsOpenAt: a run waits with the held event that covers it (the sender)', () => {
  const none = () => false;

  it('is where the run open at the held record began', () => {
    const records = page('A1s B1e B2e B3s A2s');
    expect(runsOpenAt(records, 3, none, isElided)).toBe(1);
    expect(runsOpenAt(records, 2, none, isElided)).toBe(1);
    expect(runsOpenAt(records, 1, none, isElided)).toBe(1);
    expect(runsOpenAt(records, 4, none, isElided)).toBe(4);
  });

  it('goes back to the first of overlapping runs, and counts no skipped record', () => {
    const records = page('X1s A1e B1e A2s B2e B3s');
    expect(runsOpenAt(records, 5, none, isElided)).toBe(1);
    const skip = (r: LocalRecord) => r.event.replica === 'B';
    expect(runsOpenAt(records, 5, skip, isElided)).toBe(5);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const REPLICAS = ['A', 'B', 'C', 'P'] as const;

describe('planBatches properties', () => {
  it('gives exactly what it gave before when no event is elided, or without `elided`', () => {
    const arbRecord = fc.record({
      replica: fc.constantFrom(...REPLICAS),
      kind: fc.constantFrom<Kind>('e', 's', 'p', 't'),
      size: fc.integer({ min: 0, max: 700 }),
      skipped: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(arbRecord, { maxLength: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 100, max: 3000 }),
        fc.option(fc.integer({ min: 50, max: 900 }), { nil: undefined }),
        fc.boolean(),
        fc.integer({ min: 0, max: 5 }),
        (specs, maxBatchEvents, maxMessageBytes, maxEventBytes, more, from) => {
          const seqs = new Map<string, number>();
          const build = (elidedTo: Kind) =>
            specs.map((s, i) => {
              const seq = (seqs.get(`${elidedTo}${s.replica}`) ?? 0) + 1;
              seqs.set(`${elidedTo}${s.replica}`, seq);
              return rec(from + i + 1, s.replica, seq, s.kind === 'e' ? elidedTo : s.kind, s.size);
            });
          const withElided = build('e');
          const signedOnly = build('s');
          const skipped = new Set(specs.flatMap((s, i) => (s.skipped ? [from + i + 1] : [])));
          const limits: BatchLimits = { maxBatchEvents, maxMessageBytes };
          if (maxEventBytes !== undefined) limits.maxEventBytes = maxEventBytes;
          const run = (
            planner: typeof planBatchesBefore,
            records: LocalRecord[],
            extra: { elided?: (e: StoredEventRecord) => boolean; more?: boolean },
          ) => {
            const sized: string[] = [];
            const batches = planner(from, records, {
              ownReplica: 'A',
              skip: (r) => skipped.has(r.pos),
              limits,
              sizeOf: (event) => {
                sized.push(event.id);
                return utf8Length(JSON.stringify(event)) + 1;
              },
              ...extra,
            });
            return { batches, sized };
          };
          // No elided event: the option changes nothing.
          expect(run(planBatches, signedOnly, { elided: isElided, more })).toEqual(
            run(planBatchesBefore, signedOnly, {}),
          );
          // Elided events, but no `elided`: as before.
          expect(run(planBatches, withElided, {})).toEqual(run(planBatchesBefore, withElided, {}));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never ends a batch inside a run that fits a batch, and tiles the page', () => {
    const MAX_RUN = 4;
    const arbSegment = fc.record({
      replica: fc.constantFrom('A', 'B', 'C', 'P', 'U'),
      elided: fc.integer({ min: 0, max: MAX_RUN }),
      sizes: fc.array(fc.integer({ min: 10, max: 200 }), {
        minLength: MAX_RUN + 1,
        maxLength: MAX_RUN + 1,
      }),
    });
    fc.assert(
      fc.property(
        fc.array(arbSegment, { maxLength: 12 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 8 }),
        fc.boolean(),
        (segments, pageLength, extraEvents, extraBytes, peerHolds, more) => {
          // The log: for each segment, `elided` events of its replica and the one covering them
          // (U does not sign: its events are plain); the page is a prefix of it.
          const seqs = new Map<string, number>();
          const sizes = new Map<string, number>();
          const log: LocalRecord[] = [];
          let runBytes = 0;
          for (const segment of segments) {
            const count = segment.replica === 'U' ? 1 : segment.elided + 1;
            let bytes = KEY_WIRE_BYTES;
            for (let i = 0; i < count; i++) {
              const seq = (seqs.get(segment.replica) ?? 0) + 1;
              seqs.set(segment.replica, seq);
              const kind: Kind = segment.replica === 'U' ? 'p' : i < count - 1 ? 'e' : 's';
              const record = rec(log.length + 1, segment.replica, seq, kind);
              sizes.set(record.event.id, segment.sizes[i]!);
              bytes += segment.sizes[i]!;
              log.push(record);
            }
            runBytes = Math.max(runBytes, bytes);
          }
          const records = log.slice(0, pageLength);
          // Every run fits a batch: in events and in bytes (with its replica's key).
          const limits = {
            maxBatchEvents: MAX_RUN + 1 + extraEvents,
            maxMessageBytes: BATCH_ENVELOPE_BYTES + runBytes + extraBytes,
          };
          const skip = (r: LocalRecord) => r.event.replica === 'P' && r.event.seq <= peerHolds;
          const sized: string[] = [];
          const batches = planBatches(0, records, {
            ownReplica: 'A',
            skip,
            limits,
            sizeOf: (event) => {
              sized.push(event.id);
              return sizes.get(event.id)!;
            },
            elided: isElided,
            more,
          });
          const carried = records.filter((r) => !skip(r));
          expect(sized).toEqual(carried.map((r) => r.event.id));
          if (records.length === 0) {
            expect(batches).toEqual([]);
            return;
          }
          // Tiling: adjacent, in order, each covering at least one position, ids at their ends.
          let at = 0;
          for (const batch of batches) {
            expect(batch.from).toBe(at);
            expect(batch.to).toBeGreaterThan(batch.from);
            expect(batch.toId).toBe(records[batch.to - 1]!.event.id);
            expect(batch.events.length).toBeLessThanOrEqual(limits.maxBatchEvents);
            expect(batch.bytes).toBeLessThanOrEqual(limits.maxMessageBytes - BATCH_ENVELOPE_BYTES);
            at = batch.to;
          }
          // Every record the batches cover and the peer lacks is carried, once, in order.
          expect(batches.flatMap((b) => b.events)).toEqual(
            carried.filter((r) => r.pos <= at).map((r) => r.event),
          );
          const pageOpen = openRunsSince(carried.map((r) => r.event)) >= 0;
          if (!more || !pageOpen) expect(at).toBe(records.length);
          else if (at < records.length) {
            // What is left for the next read begins with the open run's first event.
            const rest = carried.filter((r) => r.pos > at).map((r) => r.event);
            expect(openRunsSince(rest)).toBe(0);
          } else {
            // Rule 3: nothing but the run, in the only batch.
            expect(batches.length).toBe(1);
            expect(openRunsSince(batches[0]!.events)).toBe(0);
          }
          batches.forEach((batch, i) => {
            const since = openRunsSince(batch.events);
            const last = i === batches.length - 1;
            if (last && !more && pageOpen) return; // nothing follows yet: sent as it is
            if (last && more && batches.length === 1 && since === 0) return; // rule 3
            expect(since).toBe(-1);
          });
        },
      ),
      { numRuns: 400 },
    );
  });
});
