/**
 * Bounded devices under pressure (docs/storage-growth.md part 2): `retain.bytes`, and a write the
 * storage refuses for its quota (store/storage-pressure.ts 1-4). The quota is injected at the
 * storage edge: a memory log whose appendGroup fails with QuotaExceededError while it is "full",
 * and which has room again once a trim dropped something.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QuotaExceededError } from '../../src/core/errors.ts';
import { eventBytes } from '../../src/core/retention.ts';
import { defineProjection, memoryStorage } from '../../src/index.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { ESTIMATE_EVERY_MS } from '../../src/store/storage-pressure.ts';
import type { StorageNotice } from '../../src/store/types.ts';
import { partialReplica } from './retention-harness.ts';

type Ev = { t: { n: number; pad: string } };

const seen = defineProjection<number[], Ev>({
  name: 'seen',
  version: 1,
  snapshotEvery: 2,
  initial: () => [],
  apply: (list, e) => [...list, e.data.n],
});

/** A memory log that refuses appends while `full`; a trim that drops something makes room. */
function fullableStorage() {
  const state = { full: false, refused: 0 };
  const storage: StorageAdapter = {
    name: 'memory (fullable)',
    async open(options) {
      const log = await memoryStorage().open(options);
      return new Proxy(log, {
        get(target, prop) {
          if (prop === 'appendGroup') {
            return (...args: Parameters<EventLog['appendGroup']>) => {
              if (state.full) {
                state.refused += 1;
                return Promise.reject(new QuotaExceededError());
              }
              return target.appendGroup(...args);
            };
          }
          if (prop === 'trim') {
            return async (...args: Parameters<NonNullable<EventLog['trim']>>) => {
              const step = await target.trim!(...args);
              if (step.trimmed > 0) state.full = false;
              return step;
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
  return { storage, state };
}

async function device(retain: Parameters<typeof partialReplica>[0]) {
  const edge = fullableStorage();
  const r = await partialReplica<Ev>(retain, [seen], edge.storage);
  const notices: StorageNotice[] = [];
  r.store.on('storage', (n) => notices.push(n));
  const append = (n: number) => {
    r.clock.advance(1_000);
    return r.store.append('s', { type: 't', data: { n, pad: 'x'.repeat(100) } });
  };
  return { ...r, edge, notices, append };
}

const held = async (log: EventLog) =>
  (await log.readByCursor({ limit: 100 })).map((r) => (r.event.data as { n: number }).n);

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('retain.bytes', () => {
  it('keeps the newest events whose stored sizes fit in `bytes`, and no fewer than `events` (core/retention.ts 2, 5)', async () => {
    const r = await device({ bytes: 1 });
    for (let n = 1; n <= 8; n++) await r.append(n);
    const [one] = await r.log.readByCursor({ reverse: true, limit: 1 });
    const size = eventBytes(one!.event);
    await r.store.close();

    // Three events' worth, and a little: the three newest stay in full.
    const b = await device({ bytes: 3 * size + size / 2 });
    for (let n = 1; n <= 8; n++) await b.append(n);
    await b.sync();
    expect((await b.retain()).trimmed).toBe(5);
    expect(await held(b.log)).toEqual([6, 7, 8]);
    expect(await b.store.state(seen)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await b.store.close();

    // events keeps more than bytes: the larger keep wins.
    const both = await device({ bytes: size, events: 4 });
    for (let n = 1; n <= 8; n++) await both.append(n);
    await both.sync();
    expect((await both.retain()).trimmed).toBe(4);
    expect(await held(both.log)).toEqual([5, 6, 7, 8]);
    await both.store.close();
  });
});

describe('quota pressure', () => {
  it('on QUOTA_EXCEEDED, trims what the server holds, tells the app and retries the append once', async () => {
    const r = await device({ events: 2 });
    for (let n = 1; n <= 6; n++) await r.append(n);
    await r.sync();
    r.edge.state.full = true;
    const [written] = await r.append(7);
    expect(written?.data.n).toBe(7);
    expect(r.edge.state.refused).toBe(1);
    expect(r.notices).toEqual([{ reason: 'quota', trimmed: 4, retried: true, ok: true }]);
    expect(await held(r.log)).toEqual([5, 6, 7]);
    expect(await r.store.state(seen)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await r.store.close();
  });

  it('retries an appendMany the same way', async () => {
    const r = await device({ events: 1 });
    for (let n = 1; n <= 3; n++) await r.append(n);
    await r.sync();
    r.edge.state.full = true;
    const parts = await r.store.appendMany([
      { stream: 'a', events: { type: 't', data: { n: 4, pad: '' } } },
      { stream: 'b', events: { type: 't', data: { n: 5, pad: '' } } },
    ]);
    expect(parts.map((p) => p.length)).toEqual([1, 1]);
    expect(r.notices).toEqual([{ reason: 'quota', trimmed: 2, retried: true, ok: true }]);
    await r.store.close();
  });

  it('with only unsynced events, trims nothing and the append fails with QUOTA_EXCEEDED, nothing lost', async () => {
    const r = await device({ events: 1 });
    for (let n = 1; n <= 4; n++) await r.append(n);
    r.edge.state.full = true;
    await expect(r.append(5)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(r.edge.state.refused).toBe(1);
    expect(r.notices).toEqual([{ reason: 'quota', trimmed: 0, retried: false, ok: false }]);
    expect(await held(r.log)).toEqual([1, 2, 3, 4]);
    expect(await r.log.horizon?.()).toBe(undefined);
    // Once there is room, the app's own retry goes through.
    r.edge.state.full = false;
    await r.append(5);
    expect(await held(r.log)).toEqual([1, 2, 3, 4, 5]);
    await r.store.close();
  });

  it('without a retain policy, the QuotaExceededError reaches the caller as it is', async () => {
    const r = await device(undefined);
    await r.append(1);
    await r.sync();
    r.edge.state.full = true;
    await expect(r.append(2)).rejects.toBeInstanceOf(QuotaExceededError);
    expect(r.notices).toEqual([{ reason: 'quota', trimmed: 0, retried: false, ok: false }]);
    await r.store.close();
  });

  it('runs a pass when estimate() reports more than 90% used, reading it at most once per interval (invariant 3)', async () => {
    const estimate = vi.fn(async () => ({ usage: 95, quota: 100 }));
    vi.stubGlobal('navigator', { storage: { estimate } });
    const r = await device({ events: 2 });
    for (let n = 1; n <= 5; n++) await r.append(n);
    expect(estimate).toHaveBeenCalledTimes(1);
    await r.sync();
    r.clock.advance(ESTIMATE_EVERY_MS);
    await r.append(6);
    expect(estimate).toHaveBeenCalledTimes(2);
    await vi.waitFor(() => expect(r.notices.length).toBe(2));
    // The first found nothing acknowledged to trim; the second trimmed the synced events.
    expect(r.notices[0]).toEqual({
      reason: 'estimate',
      trimmed: 0,
      retried: false,
      ok: true,
      usage: 95,
      quota: 100,
    });
    expect(r.notices[1]).toMatchObject({ reason: 'estimate', trimmed: 4, ok: true });
    expect(await held(r.log)).toEqual([5, 6]);
    await r.store.close();
  });

  it('below the threshold, or without a policy, reads no estimate into a pass', async () => {
    const estimate = vi.fn(async () => ({ usage: 80, quota: 100 }));
    vi.stubGlobal('navigator', { storage: { estimate } });
    const r = await device({ events: 1 });
    await r.append(1);
    await r.append(2);
    await r.sync();
    r.clock.advance(ESTIMATE_EVERY_MS);
    await r.append(3);
    await vi.waitFor(() => expect(estimate).toHaveBeenCalledTimes(2));
    expect(await held(r.log)).toEqual([1, 2, 3]);
    await r.store.close();
    expect(r.notices).toEqual([]);

    const none = await device(undefined);
    await none.append(1);
    expect(estimate).toHaveBeenCalledTimes(2);
    await none.store.close();
  });
});
