/**
 * core/append-group.ts: the group-commit planner. Test names cite its invariants (G1..G5).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planLocalAppend, type ReplicaCounters } from '../../src/core/append.ts';
import {
  type AppendGroupPlan,
  type AppendUnitOutcome,
  planAppendGroup,
  type StreamAppendInput,
} from '../../src/core/append-group.ts';
import { ConcurrencyError, IdempotencyError } from '../../src/core/errors.ts';
import type { ExpectedVersion, StoredEventRecord } from '../../src/core/events.ts';
import { HLC_ZERO } from '../../src/core/hlc.ts';
import type { EventId } from '../../src/core/ids.ts';
import type { ValidNewEvent } from '../../src/core/validate.ts';
import { replicaA, T0 } from './fixtures.ts';

const EMPTY: ReplicaCounters = { seq: 0, pos: 0, clock: HLC_ZERO };

function event(id?: string, n = 1): ValidNewEvent & { id?: EventId } {
  const e: ValidNewEvent & { id?: EventId } = { type: 'Added', data: { n }, schema: 1 };
  if (id !== undefined) e.id = id as EventId;
  return e;
}

function part(
  stream: string,
  events: (ValidNewEvent & { id?: EventId })[],
  expectedVersion: ExpectedVersion = 'any',
): StreamAppendInput {
  return { stream, events, expectedVersion };
}

function plan(units: StreamAppendInput[][], streamVersions = new Map<string, number>()) {
  return planAppendGroup(
    { replica: replicaA, now: T0, units },
    { counters: EMPTY, streamVersions, existing: new Map() },
  );
}

const kinds = (p: AppendGroupPlan) => p.outcomes.map((o) => o.kind);

describe('planAppendGroup', () => {
  it('writes an atomic unit of several streams whole, each stream at its own next version (G1)', () => {
    const p = plan([[part('a', [event(), event()]), part('b', [event()], 'none')]]);
    expect(kinds(p)).toEqual(['appended']);
    expect(p.write.map((r) => [r.event.stream, r.event.version, r.pos, r.event.seq])).toEqual([
      ['a', 1, 1, 1],
      ['a', 2, 2, 2],
      ['b', 1, 3, 3],
    ]);
    expect(p.counters.seq).toBe(3);
    expect(p.streamVersions).toEqual(
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    );
  });

  it('writes nothing of a unit when one of its streams fails its expectedVersion (G1)', () => {
    const p = plan([[part('a', [event()]), part('b', [event()], 5)]], new Map([['b', 2]]));
    expect(p.outcomes[0]).toMatchObject({ kind: 'rejected' });
    const outcome = p.outcomes[0] as Extract<AppendUnitOutcome, { kind: 'rejected' }>;
    expect(outcome.error).toBeInstanceOf(ConcurrencyError);
    expect(p.write).toEqual([]);
    expect(p.counters).toEqual(EMPTY);
    expect(p.streamVersions.size).toBe(0);
  });

  it('lets the units around a rejected one write as if it had never been asked (G2)', () => {
    const p = plan([
      [part('a', [event()])],
      [part('a', [event()], 'none')],
      [part('b', [event()]), part('a', [event()], 1)],
    ]);
    expect(kinds(p)).toEqual(['appended', 'rejected', 'appended']);
    expect(p.write.map((r) => [r.event.stream, r.event.version, r.event.seq, r.pos])).toEqual([
      ['a', 1, 1, 1],
      ['b', 1, 2, 2],
      ['a', 2, 3, 3],
    ]);
  });

  it('chains a stream named twice and a custom id written by an earlier unit (G3)', () => {
    const p = plan([
      [part('a', [event('x', 1)])],
      [part('a', [event('x', 1)], 7)],
      [part('a', [event('x', 2)])],
      [part('a', [event()], 1)],
    ]);
    expect(kinds(p)).toEqual(['appended', 'appended', 'rejected', 'appended']);
    expect(p.outcomes[1]).toMatchObject({ streams: [{ kind: 'duplicate' }] });
    const third = p.outcomes[2] as Extract<AppendUnitOutcome, { kind: 'rejected' }>;
    expect(third.error).toBeInstanceOf(IdempotencyError);
    expect(p.write.map((r) => r.event.version)).toEqual([1, 2]);
  });

  it("refuses one id given in two parts of a unit as 'duplicate-in-batch' (G4)", () => {
    const p = plan([[part('a', [event('x')]), part('b', [event('x')])], [part('c', [event()])]]);
    const first = p.outcomes[0] as Extract<AppendUnitOutcome, { kind: 'rejected' }>;
    expect(first.error).toBeInstanceOf(IdempotencyError);
    expect(first.error.details).toMatchObject({ reason: 'duplicate-in-batch' });
    expect(kinds(p)).toEqual(['rejected', 'appended']);
  });

  /** The units planned one transaction each, in order, with planLocalAppend (G3, G5). */
  function oneByOne(units: StreamAppendInput[][]) {
    let counters = EMPTY;
    const versions = new Map<string, number>();
    const stored = new Map<string, StoredEventRecord>();
    const outcomes: string[] = [];
    const written: StoredEventRecord[] = [];
    for (const unit of units) {
      let c = counters;
      const v = new Map(versions);
      const s = new Map(stored);
      const out: StoredEventRecord[] = [];
      let rejected = false;
      const ids = unit.flatMap((p) => [...new Set(p.events.flatMap((e) => e.id ?? []))]);
      if (unit.length > 1 && new Set(ids).size < ids.length) rejected = true;
      for (const p of rejected ? [] : unit) {
        const planned = planLocalAppend(
          { ...p, replica: replicaA, now: T0 },
          {
            counters: c,
            streamVersion: v.get(p.stream) ?? 0,
            existing: p.events.map((e) => (e.id === undefined ? undefined : s.get(e.id))),
          },
        );
        if (planned.kind === 'rejected') {
          rejected = true;
          break;
        }
        if (planned.kind === 'duplicate') continue;
        c = planned.counters;
        v.set(p.stream, planned.streamVersion);
        for (const r of planned.events) {
          s.set(r.event.id, r.event);
          out.push(r.event);
        }
      }
      outcomes.push(rejected ? 'rejected' : 'appended');
      if (rejected) continue;
      counters = c;
      for (const [k, x] of v) versions.set(k, x);
      for (const [k, x] of s) stored.set(k, x);
      written.push(...out);
    }
    return { outcomes, written, counters };
  }

  it('plans what the same units would write one transaction each, in order (G3, G5)', () => {
    const arbEvent = fc
      .record({ id: fc.option(fc.constantFrom('x', 'y', 'z'), { nil: undefined }), n: fc.nat(2) })
      .map(({ id, n }) => event(id, n));
    const arbPart = fc.record({
      stream: fc.constantFrom('a', 'b', 'c'),
      events: fc.array(arbEvent, { minLength: 1, maxLength: 3 }),
      expectedVersion: fc.oneof(
        fc.constant<ExpectedVersion>('any'),
        fc.constant<ExpectedVersion>('none'),
        fc.nat(4),
      ),
    });
    const arbUnits = fc.array(fc.array(arbPart, { minLength: 1, maxLength: 3 }), {
      minLength: 1,
      maxLength: 8,
    });
    fc.assert(
      fc.property(arbUnits, (units) => {
        const grouped = plan(units);
        const single = oneByOne(units);
        expect(kinds(grouped)).toEqual(single.outcomes);
        expect(grouped.write.map((r) => r.event)).toEqual(single.written);
        expect(grouped.write.map((r) => r.pos)).toEqual(single.written.map((_, i) => i + 1));
        expect(grouped.counters).toEqual(single.counters);
      }),
      { numRuns: 300 },
    );
  });
});
