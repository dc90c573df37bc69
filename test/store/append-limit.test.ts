/** The largest event a store appends (src/store/append-limit.ts, store.ts invariants 7 and 8). */
import { describe, expect, it } from 'vitest';
import { memoryStorage } from '../../src/index.ts';
import { AppendLimit, PEER_LIMITS_META_KEY } from '../../src/store/append-limit.ts';

describe('AppendLimit', () => {
  it('is the smallest of its own limit and every peer limit it learnt, kept in meta (7)', async () => {
    const log = await memoryStorage().open();
    const limit = new AppendLimit(log, 1000);
    expect(await limit.maxEventBytes()).toBe(1000);
    await limit.learn('server', 500);
    await limit.learn('peer', 800);
    expect(await limit.maxEventBytes()).toBe(500);
    expect(await log.getMeta(PEER_LIMITS_META_KEY)).toEqual({ server: 500, peer: 800 });
    // Another handle on the same log reads it (8).
    expect(await new AppendLimit(log, 1000).maxEventBytes()).toBe(500);
  });

  it('forgets a peer that announces as much as its own limit or more (a raised limit)', async () => {
    const log = await memoryStorage().open();
    const limit = new AppendLimit(log, 1000);
    await limit.learn('server', 500);
    await limit.learn('server', 2000);
    expect(await limit.maxEventBytes()).toBe(1000);
    expect(await log.getMeta(PEER_LIMITS_META_KEY)).toEqual({});
  });

  it('reads a stored value of the wrong shape as nothing learnt', async () => {
    const log = await memoryStorage().open();
    await log.setMeta(PEER_LIMITS_META_KEY, { server: 'x', other: -1 });
    expect(await new AppendLimit(log, 1000).maxEventBytes()).toBe(1000);
  });

  it('keeps at most 64 learnt limits, the smallest', async () => {
    const log = await memoryStorage().open();
    const limit = new AppendLimit(log, 10_000);
    for (let i = 0; i < 70; i++) await limit.learn(`peer-${i}`, 100 + i);
    const kept = (await log.getMeta(PEER_LIMITS_META_KEY)) as Record<string, number>;
    expect(Object.keys(kept)).toHaveLength(64);
    expect(Math.max(...Object.values(kept))).toBe(100 + 63);
    expect(await limit.maxEventBytes()).toBe(100);
  });
});
