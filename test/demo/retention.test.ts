/** demo/src/retention.ts: the demo's retain policy, its test knob, and storage notices in words. */
import { describe, expect, it } from 'vitest';
import { olderText } from '../../demo/src/activity-view.ts';
import {
  DEFAULT_RETAIN,
  describeRetain,
  parseWorkerName,
  retainFromSearch,
  storageNoticeText,
  workerName,
} from '../../demo/src/retention.ts';

describe('the demo’s retain policy', () => {
  it('keeps 5,000 events and 30 days unless ?keep-events asks for a number of events', () => {
    expect(retainFromSearch('')).toEqual({ events: 5_000, days: 30 });
    expect(retainFromSearch('?keep-events=10')).toEqual({ events: 10 });
    for (const bad of ['?keep-events=0', '?keep-events=-3', '?keep-events=2.5', '?keep-events=x']) {
      expect(retainFromSearch(bad)).toEqual(DEFAULT_RETAIN);
    }
  });

  it('hands the knobs to the worker in its name, and the default board keeps its plain name', () => {
    expect(workerName('chronicle-demo', '')).toBe('chronicle-demo');
    expect(workerName('chronicle-demo', '?devtools')).toBe('chronicle-demo');
    const named = workerName('board-abcdefghij012345', '?board=x&keep-events=10');
    expect(parseWorkerName(named)).toEqual({
      db: 'board-abcdefghij012345',
      retain: { events: 10 },
      join: 'snapshot',
    });
    expect(parseWorkerName('chronicle-demo')).toEqual({
      db: 'chronicle-demo',
      retain: DEFAULT_RETAIN,
      join: 'snapshot',
    });
    expect(parseWorkerName(workerName('chronicle-demo', '?join=replay'))).toEqual({
      db: 'chronicle-demo',
      retain: DEFAULT_RETAIN,
      join: 'replay',
    });
  });

  it('says what the device keeps, and where older history stands', () => {
    const keeps = describeRetain(DEFAULT_RETAIN);
    expect(keeps).toBe(
      'This device keeps the newest 5,000 events and the last 30 days; older history is on the server.',
    );
    expect(olderText({ kind: 'loading' }, false, keeps)).toBe('Loading older history…');
    expect(olderText({ kind: 'offline' }, false, keeps)).toMatch(/^Older history is on the server/);
    expect(olderText({ kind: 'idle' }, false, keeps)).toBe(keeps);
    expect(olderText({ kind: 'idle' }, true, keeps)).toBe('');
  });

  it('tells storage notices in words, with what was let go and whether the change was saved', () => {
    expect(storageNoticeText({ reason: 'quota', trimmed: 1200, retried: true, ok: true })).toBe(
      'Storage was full: this device let go of 1,200 older events (they stay on the server), and saved the change.',
    );
    expect(storageNoticeText({ reason: 'quota', trimmed: 0, retried: false, ok: false })).toMatch(
      /^Storage is full: the change was not saved\./,
    );
    expect(
      storageNoticeText({
        reason: 'estimate',
        trimmed: 1,
        retried: false,
        ok: true,
        usage: 95,
        quota: 100,
      }),
    ).toBe(
      'Storage nearly full (95% used): this device let go of 1 older event (they stay on the server).',
    );
  });
});
