/**
 * Property test of the re-stamp plan (src/core/restamp.ts, invariants R1..R6): random logs of
 * own and remote events in receive order, stamped the way a replica stamps them (each own event
 * after everything held before it), with a clock that jumps ahead and back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { decodeHlc, encodeHlc, type HlcState, hlcWall, maxHlc, tick } from '../../src/core/hlc.ts';
import { isRestampCandidate, planRestamp, type RestampInput } from '../../src/core/restamp.ts';
import { storedEvent } from '../fixtures/events.ts';

const OWN = 'own0000000000001';
const REMOTE = 'remote0000000001';
const NOW = 10_000_000;
const AHEAD = 300_000;

type Step = { kind: 'own'; skew: number; gap: number } | { kind: 'remote'; delta: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('own' as const),
    skew: fc.constantFrom(0, 0, 1_000_000, 5_000_000, 90_000_000),
    gap: fc.integer({ min: 0, max: 20_000 }),
  }),
  fc.record({
    kind: fc.constant('remote' as const),
    delta: fc.integer({ min: -2_000_000, max: 0 }),
  }),
);

/** A log as a replica writes it: own events ticked past everything held before them. */
function buildLog(steps: readonly Step[]): LocalRecord[] {
  let clock: HlcState = { wall: 0, counter: 0 };
  let real = NOW - 5_000_000;
  let seq = 0;
  let remoteSeq = 0;
  const out: LocalRecord[] = [];
  for (const s of steps) {
    const pos = out.length + 1;
    if (s.kind === 'own') {
      real += s.gap;
      clock = tick(clock, real + s.skew);
      seq += 1;
      const event = storedEvent({ replica: OWN, seq, wall: clock.wall, counter: clock.counter });
      out.push({ event, pos });
    } else {
      remoteSeq += 1;
      const wall = Math.max(0, real + s.delta);
      const event = storedEvent({ replica: REMOTE, seq: remoteSeq, wall, stream: 'r' });
      clock = maxHlc(clock, decodeHlc(event.hlc));
      out.push({ event, pos });
    }
  }
  return out;
}

/** The plan's input over a whole log (before: none, tail: everything). */
function inputOf(
  log: readonly LocalRecord[],
  sharedSeq: number,
  shift: number | undefined,
): RestampInput {
  const input: RestampInput = {
    replica: OWN,
    sharedSeq,
    now: NOW,
    maxClockAheadMs: AHEAD,
    before: undefined,
    tail: log,
  };
  if (shift !== undefined) input.shift = shift;
  return input;
}

function apply(log: readonly LocalRecord[], changed: readonly LocalRecord[]): LocalRecord[] {
  const byPos = new Map(changed.map((r) => [r.pos, r]));
  return log.map((r) => byPos.get(r.pos) ?? r);
}

const arbitrary = fc.record({
  steps: fc.array(step, { minLength: 1, maxLength: 40 }),
  sharedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  shift: fc.option(fc.integer({ min: -100_000_000, max: 1_000 }), { nil: undefined }),
});

describe('planRestamp (property)', () => {
  it('keeps causal order, own order, never moves an event later, touches only candidates, and is idempotent', () => {
    fc.assert(
      fc.property(arbitrary, ({ steps, sharedFraction, shift }) => {
        const log = buildLog(steps);
        const ownCount = log.filter((r) => r.event.replica === OWN).length;
        const sharedSeq = Math.floor(ownCount * sharedFraction);
        const input = inputOf(log, sharedSeq, shift);
        const { changed } = planRestamp(input);
        const after = apply(log, changed);
        const oldByPos = new Map(log.map((r) => [r.pos, r]));
        for (const r of changed) {
          const old = oldByPos.get(r.pos)!;
          // R1: only candidates move, and only hlc, time and cursor change.
          expect(isRestampCandidate(old.event, input)).toBe(true);
          const { hlc: _a, time: _b, cursor: _c, ...rest } = r.event;
          const { hlc: _d, time: _e, cursor: _f, ...was } = old.event;
          expect(rest).toEqual(was);
          expect(r.event.time).toBe(hlcWall(r.event.hlc));
          // R4: never later than before.
          expect(r.event.hlc < old.event.hlc).toBe(true);
        }
        // R2: every moved event sorts after every event at a lower position.
        let held = '';
        for (const r of after) {
          if (changed.some((c) => c.pos === r.pos)) {
            expect(r.event.cursor > held).toBe(true);
            // R3: no later than now, unless what it follows is.
            expect(r.event.time).toBeLessThanOrEqual(
              Math.max(NOW, held === '' ? 0 : hlcWall(held)),
            );
          }
          if (r.event.cursor > held) held = r.event.cursor;
        }
        // R5: own events keep strictly increasing HLCs in seq order.
        const own = after.filter((r) => r.event.replica === OWN);
        for (let i = 1; i < own.length; i++)
          expect(own[i]!.event.hlc > own[i - 1]!.event.hlc).toBe(true);
        // R6: idempotent.
        expect(planRestamp(inputOf(after, sharedSeq, shift)).changed).toEqual([]);
        // Nothing unshared is left beyond the tolerance unless a shared or remote event it
        // follows is itself beyond it.
        let top = '';
        for (const r of after) {
          const ahead = hlcWall(r.event.hlc) > NOW + AHEAD;
          if (r.event.replica === OWN && r.event.seq > sharedSeq && ahead) {
            expect(hlcWall(top)).toBeGreaterThanOrEqual(NOW);
          }
          if (r.event.hlc > top) top = r.event.hlc;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('moves nothing when no own unshared event is beyond the tolerance', () => {
    const log = buildLog([
      { kind: 'own', skew: 0, gap: 10 },
      { kind: 'remote', delta: -5 },
      { kind: 'own', skew: 0, gap: 10 },
    ]);
    expect(planRestamp(inputOf(log, 0, -1_000_000)).changed).toEqual([]);
    expect(encodeHlc(decodeHlc(log[0]!.event.hlc))).toBe(log[0]!.event.hlc);
  });
});
