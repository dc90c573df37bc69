import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareHlc,
  DEFAULT_MAX_CLOCK_DRIFT_MS,
  decodeHlc,
  encodeHlc,
  HLC_ZERO,
  type HlcState,
  hlcsOfWall,
  isHlc,
  lastHlcOf,
  maxHlc,
  receive,
  tick,
} from '../../src/core/hlc.ts';
import { arbHlcState, COUNTER_MAX, DAY_MS, T0 } from './fixtures.ts';

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** A wall clock that runs forward, stalls, goes backwards, and jumps by up to a day either way. */
const arbClockStep = fc.oneof(
  fc.integer({ min: 0, max: 5 }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.integer({ min: -DAY_MS, max: DAY_MS }),
  fc.constantFrom(DAY_MS, -DAY_MS, 2 * DAY_MS, -2 * DAY_MS),
);

type ClockOp =
  | { kind: 'tick'; step: number }
  | { kind: 'receive'; step: number; remoteOffset: number; remoteCounter: number };

const arbClockOp: fc.Arbitrary<ClockOp> = fc.oneof(
  fc.record({ kind: fc.constant('tick' as const), step: arbClockStep }),
  fc.record({
    kind: fc.constant('receive' as const),
    step: arbClockStep,
    // remote timestamps behind, near, a day ahead, and beyond the drift limit
    remoteOffset: fc.oneof(
      fc.integer({ min: -DAY_MS, max: DAY_MS }),
      fc.integer({ min: DAY_MS, max: 3 * DAY_MS }),
      fc.integer({ min: -10, max: 10 }),
    ),
    remoteCounter: fc.integer({ min: 0, max: COUNTER_MAX }),
  }),
);

describe('encodeHlc / decodeHlc', () => {
  it('hlc invariant 3: encoded strings sort in (wall, counter) order', () => {
    fc.assert(
      fc.property(arbHlcState, arbHlcState, (a, b) => {
        const ea = encodeHlc(a);
        const eb = encodeHlc(b);
        const stringOrder = ea < eb ? -1 : ea > eb ? 1 : 0;
        expect(stringOrder).toBe(sign(compareHlc(a, b)));
      }),
      { numRuns: 1000 },
    );
  });

  it('hlc invariant 3: encoding is fixed-width and decodes back to the same state', () => {
    fc.assert(
      fc.property(arbHlcState, (state) => {
        const encoded = encodeHlc(state);
        expect(encoded).toHaveLength(17);
        expect(isHlc(encoded)).toBe(true);
        expect(decodeHlc(encoded)).toEqual(state);
      }),
      { numRuns: 1000 },
    );
  });

  it('hlcsOfWall builds the same HLCs as encodeHlc, counter by counter', () => {
    fc.assert(
      fc.property(arbHlcState, fc.nat({ max: 1000 }), (state, k) => {
        fc.pre(state.counter + k <= COUNTER_MAX);
        expect(hlcsOfWall(state.wall, state.counter)(k)).toBe(
          encodeHlc({ wall: state.wall, counter: state.counter + k }),
        );
      }),
    );
  });

  it('rejects strings that are not an encoded HLC', () => {
    for (const bad of ['', 'abc', '0000000000-00000', '00000000000_00000', 'A0000000000-00000']) {
      expect(isHlc(bad)).toBe(false);
      expect(() => decodeHlc(bad)).toThrow(TypeError);
    }
    expect(isHlc(42)).toBe(false);
  });

  it('hlc invariant 3: an HLC is above lastHlcOf(wall) exactly when its wall time is', () => {
    fc.assert(
      fc.property(arbHlcState, fc.double({ min: -10, max: 2 * T0, noNaN: true }), (state, wall) => {
        expect(encodeHlc(state) > lastHlcOf(wall)).toBe(state.wall > wall);
      }),
      { numRuns: 1000 },
    );
    expect(encodeHlc({ wall: T0, counter: COUNTER_MAX }) > lastHlcOf(T0)).toBe(false);
    expect(encodeHlc({ wall: T0 + 1, counter: 0 }) > lastHlcOf(T0)).toBe(true);
    expect(encodeHlc({ wall: T0 + 1, counter: 0 }) > lastHlcOf(T0 + 0.5)).toBe(true);
    expect(encodeHlc({ wall: 0, counter: 0 }) > lastHlcOf(-0.5)).toBe(true);
  });
});

describe('tick', () => {
  it('hlc invariant 1: never goes backwards when the wall clock does, even by a day', () => {
    fc.assert(
      fc.property(arbHlcState, fc.array(arbClockStep, { maxLength: 60 }), (start, steps) => {
        let state = start;
        let now = T0;
        for (const step of steps) {
          now += step;
          const next = tick(state, now);
          expect(compareHlc(next, state)).toBeGreaterThan(0);
          expect(encodeHlc(next) > encodeHlc(state)).toBe(true);
          state = next;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('follows the wall clock when it is ahead, with the counter reset', () => {
    expect(tick({ wall: T0, counter: 7 }, T0 + 5)).toEqual({ wall: T0 + 5, counter: 0 });
    expect(tick(HLC_ZERO, T0 + 0.9)).toEqual({ wall: T0, counter: 0 });
  });

  it('hlc invariant 1: bumps the counter when the wall clock stalls or goes backwards', () => {
    expect(tick({ wall: T0, counter: 7 }, T0)).toEqual({ wall: T0, counter: 8 });
    expect(tick({ wall: T0, counter: 7 }, T0 - DAY_MS)).toEqual({ wall: T0, counter: 8 });
  });

  it('hlc invariant 1: borrows a millisecond instead of wrapping when the counter is full', () => {
    const full = { wall: T0, counter: COUNTER_MAX };
    const next = tick(full, T0 - 1);
    expect(next).toEqual({ wall: T0 + 1, counter: 0 });
    expect(encodeHlc(next) > encodeHlc(full)).toBe(true);
  });
});

describe('receive', () => {
  it('hlc invariant 2: reaches a remote timestamp within drift, so the next tick is past it', () => {
    fc.assert(
      fc.property(
        arbHlcState,
        arbHlcState,
        fc.integer({ min: 0, max: 3 * DAY_MS }),
        fc.integer({ min: -2 * DAY_MS, max: 2 * DAY_MS }),
        (state, remote, maxDrift, nowOffset) => {
          const now = remote.wall - maxDrift + Math.abs(nowOffset); // remote.wall <= now + maxDrift
          const { state: after, skewed } = receive(state, remote, now, maxDrift);
          expect(skewed).toBe(false);
          expect(compareHlc(after, remote)).toBeGreaterThanOrEqual(0);
          expect(compareHlc(after, state)).toBeGreaterThanOrEqual(0);
          expect(after).toEqual(maxHlc(state, remote));
          expect(compareHlc(tick(after, now), remote)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('hlc invariant 2: stops at now + maxDrift and reports skew for a remote further ahead', () => {
    fc.assert(
      fc.property(
        arbHlcState,
        fc.integer({ min: 0, max: 3 * DAY_MS }),
        fc.integer({ min: 1, max: 5 * DAY_MS }),
        fc.integer({ min: 0, max: COUNTER_MAX }),
        (state, maxDrift, beyond, remoteCounter) => {
          const now = T0;
          const limit = now + maxDrift;
          const remote = { wall: limit + beyond, counter: remoteCounter };
          const { state: after, skewed } = receive(state, remote, now, maxDrift);
          expect(skewed).toBe(true);
          // never refused, never backwards, never past the limit on account of this remote
          expect(compareHlc(after, state)).toBeGreaterThanOrEqual(0);
          expect(after).toEqual(maxHlc(state, { wall: limit, counter: 0 }));
          expect(after.wall).toBeLessThanOrEqual(Math.max(state.wall, limit));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('hlc invariant 2: uses a default drift of 24 hours', () => {
    expect(DEFAULT_MAX_CLOCK_DRIFT_MS).toBe(DAY_MS);
    const atLimit = receive(HLC_ZERO, { wall: T0 + DAY_MS, counter: 3 }, T0);
    expect(atLimit).toEqual({ state: { wall: T0 + DAY_MS, counter: 3 }, skewed: false });
    const pastLimit = receive(HLC_ZERO, { wall: T0 + DAY_MS + 1, counter: 3 }, T0);
    expect(pastLimit).toEqual({ state: { wall: T0 + DAY_MS, counter: 0 }, skewed: true });
  });

  it('hlc invariant 1: keeps its own state when the remote timestamp is older', () => {
    const state = { wall: T0, counter: 4 };
    expect(receive(state, { wall: T0 - 10, counter: 99 }, T0)).toEqual({ state, skewed: false });
    expect(receive(state, { wall: T0, counter: 4 }, T0)).toEqual({ state, skewed: false });
  });
});

describe('a replica clock under arbitrary wall clocks and remote timestamps', () => {
  it('hlc invariants 1 and 2: never decreases and every tick exceeds every remote seen within drift', () => {
    fc.assert(
      fc.property(arbHlcState, fc.array(arbClockOp, { maxLength: 60 }), (start, ops) => {
        let state: HlcState = start;
        let now = T0;
        let maxSeenWithinDrift: HlcState = start;
        for (const op of ops) {
          now += op.step;
          if (op.kind === 'tick') {
            const next = tick(state, now);
            expect(compareHlc(next, state)).toBeGreaterThan(0);
            expect(compareHlc(next, maxSeenWithinDrift)).toBeGreaterThan(0);
            state = next;
            maxSeenWithinDrift = next;
          } else {
            const remote = { wall: Math.max(0, now + op.remoteOffset), counter: op.remoteCounter };
            const { state: next, skewed } = receive(state, remote, now);
            expect(compareHlc(next, state)).toBeGreaterThanOrEqual(0);
            expect(skewed).toBe(remote.wall > now + DAY_MS);
            if (!skewed) maxSeenWithinDrift = maxHlc(maxSeenWithinDrift, remote);
            state = next;
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('maxHlc', () => {
  it('returns the later of two states', () => {
    fc.assert(
      fc.property(arbHlcState, arbHlcState, (a, b) => {
        const m = maxHlc(a, b);
        expect(compareHlc(m, a)).toBeGreaterThanOrEqual(0);
        expect(compareHlc(m, b)).toBeGreaterThanOrEqual(0);
        expect([a, b]).toContain(m);
      }),
      { numRuns: 300 },
    );
  });
});
