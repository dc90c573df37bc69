/**
 * core/retention.ts: the exclusive bound a partial replica's horizon must sort below.
 */
import { describe, expect, it } from 'vitest';
import { lastHlcOf } from '../../src/core/hlc.ts';
import { horizonBound, validRetainPolicy } from '../../src/core/retention.ts';

const NOW = Date.UTC(2026, 5, 1);
const DAY = 24 * 60 * 60 * 1000;
const base = { now: NOW, horizon: undefined } as const;

describe('horizonBound', () => {
  it('trims nothing without a policy, or an empty one (invariant 2)', () => {
    expect(
      horizonBound({ ...base, policy: undefined, countCursor: 'c', unackedMin: undefined }),
    ).toBe(undefined);
    expect(horizonBound({ ...base, policy: {}, countCursor: 'c', unackedMin: undefined })).toBe(
      undefined,
    );
  });

  it('trims nothing before the server acknowledged anything, and stays below the first unacknowledged cursor (invariant 1)', () => {
    expect(
      horizonBound({ ...base, policy: { events: 1 }, countCursor: 'm', unackedMin: null }),
    ).toBe(undefined);
    expect(
      horizonBound({ ...base, policy: { events: 1 }, countCursor: 'm', unackedMin: 'f' }),
    ).toBe('f');
    expect(
      horizonBound({ ...base, policy: { events: 1 }, countCursor: 'm', unackedMin: undefined }),
    ).toBe('m\u0000');
  });

  it('keeps `events` events: nothing when the log holds no more (invariant 2)', () => {
    expect(
      horizonBound({
        ...base,
        policy: { events: 5 },
        countCursor: undefined,
        unackedMin: undefined,
      }),
    ).toBe(undefined);
  });

  it('keeps every event of the last `days` days, and both limits when both are given', () => {
    const cut = `${lastHlcOf(NOW - 2 * DAY)}\u0000`;
    expect(
      horizonBound({ ...base, policy: { days: 2 }, countCursor: undefined, unackedMin: undefined }),
    ).toBe(cut);
    const newer = `${lastHlcOf(NOW - DAY)}.r.1`;
    expect(
      horizonBound({
        ...base,
        policy: { days: 2, events: 1 },
        countCursor: newer,
        unackedMin: undefined,
      }),
    ).toBe(cut);
    const older = `${lastHlcOf(NOW - 3 * DAY)}.r.1`;
    expect(
      horizonBound({
        ...base,
        policy: { days: 2, events: 1 },
        countCursor: older,
        unackedMin: undefined,
      }),
    ).toBe(`${older}\u0000`);
  });

  it('never moves the horizon back (invariant 3)', () => {
    expect(
      horizonBound({
        ...base,
        horizon: 'm',
        policy: { events: 1 },
        countCursor: 'k',
        unackedMin: undefined,
      }),
    ).toBe(undefined);
    expect(
      horizonBound({
        ...base,
        horizon: 'm',
        policy: { events: 1 },
        countCursor: 'm',
        unackedMin: undefined,
      }),
    ).toBe(undefined);
    expect(
      horizonBound({
        ...base,
        horizon: 'm',
        policy: { events: 1 },
        countCursor: 'p',
        unackedMin: undefined,
      }),
    ).toBe('p\u0000');
  });

  it('refuses negative or infinite limits', () => {
    expect(validRetainPolicy({ events: 10, days: 0.5 })).toBe(true);
    expect(validRetainPolicy({ events: -1 })).toBe(false);
    expect(validRetainPolicy({ days: Number.POSITIVE_INFINITY })).toBe(false);
  });
});
