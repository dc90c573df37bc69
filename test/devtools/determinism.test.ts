/** src/devtools/determinism.ts invariants 1–3. */
import { describe, expect, it } from 'vitest';
import { checkDeterminism } from '../../src/devtools/determinism.ts';
import type { StoredEvent } from '../../src/index.ts';

const events = Array.from(
  { length: 5 },
  (_, i) => ({ id: `e${i}`, type: 'Added', data: i, stream: 's' }) as unknown as StoredEvent,
);

describe('checkDeterminism', () => {
  it('agrees for a pure fold, whatever order keys are set in', () => {
    let flip = false;
    const result = checkDeterminism(
      {
        initial: () => ({}),
        apply: (state, e) => {
          flip = !flip;
          const s = state as Record<string, number>;
          const n = e.data as number;
          return flip ? { [`k${n}`]: n, ...s } : { ...s, [`k${n}`]: n };
        },
      },
      events,
    );
    expect(result).toEqual({ deterministic: true, events: 5 });
  });

  it('names the first event after which a fold that reads the clock parts', () => {
    let tick = 0;
    const result = checkDeterminism(
      {
        initial: () => 0,
        apply: (state, e) => {
          if ((e.data as number) !== 3) return (state as number) + 1;
          tick += 1; // a clock: another value on every fold
          return tick;
        },
      },
      events,
    );
    expect(result).toMatchObject({ deterministic: false, index: 3, eventId: 'e3' });
  });

  it('finds an initial() that hands out one shared object which apply mutates', () => {
    const shared: { n: number } = { n: 0 };
    const result = checkDeterminism(
      {
        initial: () => shared,
        apply: (state) => {
          (state as { n: number }).n += 1;
          return state;
        },
      },
      events,
    );
    expect(result).toMatchObject({
      deterministic: false,
      index: -1,
      first: '{"n":0}',
      second: '{"n":5}',
    });
  });
});
