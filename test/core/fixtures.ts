/**
 * Small builders shared by the core tests. Everything is deterministic: random bytes come from a
 * seeded counter, never from crypto, so a failing property reproduces from its printed seed.
 */
import fc from 'fast-check';
import { planLocalAppend, type ReplicaCounters } from '../../src/core/append.ts';
import type {
  JsonObject,
  JsonValue,
  LocalRecord,
  StoredEventRecord,
} from '../../src/core/events.ts';
import { encodeHlc, HLC_ZERO, type HlcState } from '../../src/core/hlc.ts';
import { Cursor, type EventId, type RandomBytes, ReplicaId, Seq } from '../../src/core/ids.ts';
import type { ValidNewEvent } from '../../src/core/validate.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;
/** 2025-01-01, a realistic wall clock. */
export const T0 = Date.UTC(2025, 0, 1);
/** 9999-12-31: the largest wall time the tests generate (encodeHlc is fixed-width far past it). */
export const MAX_WALL = Date.UTC(9999, 11, 31);
export const COUNTER_MAX = 36 ** 5 - 1;

/** RandomBytes that always returns `fill`: gives fixed, readable replica and event ids. */
export function fixedBytes(fill: number): RandomBytes {
  return (length) => new Uint8Array(length).fill(fill);
}

export const replicaA = ReplicaId.parse('replicaaaaaaaaaa');
export const replicaB = ReplicaId.parse('replicabbbbbbbbb');
export const replicaC = ReplicaId.parse('replicaccccccccc');

export function eventId(name: string): EventId {
  return name as EventId;
}

export function newEvent(
  id: string,
  data: JsonValue,
  extra: { type?: string; meta?: JsonObject; schema?: number } = {},
): ValidNewEvent & { id: EventId } {
  const e: ValidNewEvent & { id: EventId } = {
    id: eventId(id),
    type: extra.type ?? 'thing-happened',
    data,
    schema: extra.schema ?? 1,
  };
  if (extra.meta !== undefined) e.meta = extra.meta;
  return e;
}

export const freshCounters = (): ReplicaCounters => ({ seq: 0, pos: 0, clock: HLC_ZERO });

/** Appends `events` to `stream` on `replica` as if on an empty log, and returns the stored records. */
export function appendFresh(
  replica: ReplicaId,
  stream: string,
  events: (ValidNewEvent & { id: EventId })[],
  options: { now?: number; counters?: ReplicaCounters; streamVersion?: number } = {},
): StoredEventRecord[] {
  const plan = planLocalAppend(
    { replica, stream, events, expectedVersion: 'any', now: options.now ?? T0 },
    {
      counters: options.counters ?? freshCounters(),
      streamVersion: options.streamVersion ?? 0,
      existing: events.map(() => undefined),
    },
  );
  if (plan.kind !== 'write') throw new Error(`expected a write plan, got ${plan.kind}`);
  return plan.events.map((w) => w.event);
}

/** An HLC state anywhere in the encodable range the tests care about. */
export const arbHlcState: fc.Arbitrary<HlcState> = fc.record({
  wall: fc.oneof(
    fc.integer({ min: 0, max: MAX_WALL }),
    fc.integer({ min: T0 - DAY_MS, max: T0 + DAY_MS }),
  ),
  counter: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: COUNTER_MAX })),
});

/**
 * Replica ids from a tiny alphabet so that equal ids and ids that are prefixes of each other
 * (the interesting cases for string order) come up often.
 */
export const arbReplicaId: fc.Arbitrary<ReplicaId> = fc
  .string({ unit: fc.constantFrom('0', 'a', 'z'), minLength: 1, maxLength: 4 })
  .map((s) => ReplicaId.parse(s));

export const arbSeq: fc.Arbitrary<Seq> = fc
  .oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))
  .map((n) => Seq.make(n));

/** A cursor built from its parts, with the parts kept for comparison. */
export interface CursorParts {
  hlc: HlcState;
  replica: ReplicaId;
  seq: Seq;
  cursor: Cursor;
}

export const arbCursorParts: fc.Arbitrary<CursorParts> = fc
  .record({
    hlc: fc.record({
      wall: fc.integer({ min: 0, max: 6 }),
      counter: fc.integer({ min: 0, max: 2 }),
    }),
    replica: arbReplicaId,
    seq: fc.integer({ min: 1, max: 4 }).map((n) => Seq.make(n)),
  })
  .map((p) => ({ ...p, cursor: Cursor.make(encodeHlc(p.hlc), p.replica, p.seq) }));

/**
 * A record at log position `pos` for the sync planning tests: only what the planner reads is
 * real (replica, seq, data size, cursor); `size` characters of data.
 */
export const syncRecord = (pos: number, replica: string, seq: number, size = 0): LocalRecord => ({
  pos,
  event: {
    id: `id${pos}`,
    type: 't',
    data: 'x'.repeat(size),
    stream: 's',
    version: seq,
    replica,
    seq,
    hlc: '00000000001-00000',
    time: 1,
    cursor: `c${pos}`,
  } as unknown as StoredEventRecord,
});
