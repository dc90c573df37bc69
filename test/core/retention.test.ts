/**
 * core/retention.ts: the exclusive bound a partial replica's horizon must sort below.
 */
import { describe, expect, it } from 'vitest';
import { lastHlcOf } from '../../src/core/hlc.ts';
import {
  bytesCursor,
  eventBytes,
  horizonBound,
  validRetainPolicy,
} from '../../src/core/retention.ts';

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

  it('keeps the newest events that fit in `bytes`: nothing trimmed while all fit (invariant 2)', () => {
    const policy = { bytes: 1000 };
    expect(horizonBound({ ...base, policy, countCursor: undefined, unackedMin: undefined })).toBe(
      undefined,
    );
    expect(
      horizonBound({
        ...base,
        policy,
        countCursor: undefined,
        bytesCursor: 'k',
        unackedMin: undefined,
      }),
    ).toBe('k\u0000');
  });

  it('keeps at least each of events, days and bytes: the largest keep wins (invariant 2)', () => {
    const cut = lastHlcOf(NOW - 2 * DAY);
    const inputs = { ...base, unackedMin: undefined };
    // bytes keeps more (its cursor is older) than events: the bound is the bytes one.
    expect(
      horizonBound({
        ...inputs,
        policy: { events: 2, bytes: 5000 },
        countCursor: `${cut}.r.9`,
        bytesCursor: `${cut}.r.3`,
      }),
    ).toBe(`${cut}.r.3\u0000`);
    // events keeps more than bytes.
    expect(
      horizonBound({
        ...inputs,
        policy: { events: 200, bytes: 50 },
        countCursor: `${cut}.r.1`,
        bytesCursor: `${cut}.r.8`,
      }),
    ).toBe(`${cut}.r.1\u0000`);
    // days keeps everything of the last two days even when bytes would keep less.
    expect(
      horizonBound({
        ...inputs,
        policy: { days: 2, bytes: 50 },
        countCursor: undefined,
        bytesCursor: `${lastHlcOf(NOW - DAY)}.r.1`,
      }),
    ).toBe(`${cut}\u0000`);
    // bytes whose events all fit keeps everything, whatever the others allow.
    expect(
      horizonBound({
        ...inputs,
        policy: { events: 1, bytes: 1e9 },
        countCursor: `${cut}.r.9`,
        bytesCursor: undefined,
      }),
    ).toBe(undefined);
  });

  it('counts event sizes newest first and names the first event past the budget (invariant 5)', () => {
    const sizes = [
      { cursor: 'z', bytes: 400 },
      { cursor: 'y', bytes: 400 },
      { cursor: 'x', bytes: 400 },
      { cursor: 'w', bytes: 400 },
    ];
    expect(bytesCursor(sizes, 800)).toBe('x');
    expect(bytesCursor(sizes, 799)).toBe('y');
    expect(bytesCursor(sizes, 1600)).toBe(undefined);
    expect(bytesCursor(sizes, 0)).toBe('z');
    expect(eventBytes({ data: 'é' })).toBe(JSON.stringify({ data: 'é' }).length + 1);
  });

  it('refuses negative or infinite limits', () => {
    expect(validRetainPolicy({ bytes: -5 })).toBe(false);
    expect(validRetainPolicy({ bytes: 0 })).toBe(true);
    expect(validRetainPolicy({ events: 10, days: 0.5 })).toBe(true);
    expect(validRetainPolicy({ events: -1 })).toBe(false);
    expect(validRetainPolicy({ days: Number.POSITIVE_INFINITY })).toBe(false);
  });
});
