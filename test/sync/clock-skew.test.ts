/**
 * One wrong clock, peer to peer (issue 12 defect 5; RELIABILITY cases 20 and 38): two stores on
 * the public API over memoryTransportPair, one clock 25 h ahead of the other, no server. Cites
 * core/clock-skew.ts (K1-K3), core/restamp.ts (R1-R6), controller.ts (C6, C7).
 */
import { afterEach, describe, expect, it } from 'vitest';

/** The default tolerance (core/clock-skew.ts), written out so that this file also runs on main. */
const DEFAULT_MAX_CLOCK_AHEAD_MS = 5 * 60_000;

import type { SyncConnection } from '../../src/core/sync-types.ts';
import {
  defineProjection,
  type EventStore,
  memoryStorage,
  memoryTransportPair,
  openStore,
} from '../../src/index.ts';

const HOUR = 60 * 60 * 1000;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const chain = defineProjection<string[]>({
  name: 'chain',
  version: 1,
  initial: () => [],
  apply: (list, e) => [...list, e.id],
  snapshotEvery: 4,
});

/**
 * Time that both peers' clocks have moved on together, beyond real time: the test moves it 10 s
 * a step, so that the re-stamped order does not depend on how fast the machine ran the steps
 * against the reconnect (core/restamp.ts invariant 3 keeps the fast events' spacing and puts the
 * latest at `now`: with steps a few ms apart, a slow reconnect put all of them after every
 * honest event, and the order did not change).
 */
const drift = { ms: 0 };
const clockNow = () => Date.now() + drift.ms;

async function peer(name: string, offset: { ms: number }) {
  const store = await openStore({
    name,
    storage: memoryStorage(),
    projections: [chain],
    now: () => clockNow() + offset.ms,
    syncOptions: { backoff: { initialMs: 10, maxMs: 50, healthyAfterMs: 10_000 } },
  });
  closers.push(() => store.close());
  return store;
}

function link(a: EventStore, b: EventStore): SyncConnection[] {
  const [ta, tb] = memoryTransportPair();
  const connections = [a.sync.connect(ta), b.sync.connect(tb)];
  for (const c of connections) closers.push(() => c.close());
  return connections;
}

const ids = async (s: EventStore) => (await s.read()).map((e) => e.id);
const has = async (s: EventStore, id: string) => (await ids(s)).includes(id);

describe('a clock 25 h ahead, peer to peer', () => {
  it('drags nobody, misorders no causal chain, holds the fast peer back until its clock is set right, then delivers (cases 20, 38)', async () => {
    const fastOffset = { ms: 25 * HOUR };
    const fast = await peer('fast', fastOffset);
    const honest = await peer('honest', { ms: 0 });
    const connections = link(fast, honest);
    /** Per event: the events its appender held when it appended it (its causal past). */
    const pastOf = new Map<string, string[]>();
    const append = async (store: EventStore, id: string) => {
      pastOf.set(id, await ids(store));
      await store.append('chain', { id, type: 'step', data: null });
    };
    for (let i = 0; i < 30; i++) {
      drift.ms += 10_000;
      const id = `step-${i}`;
      if (i % 2 === 0) {
        await append(honest, id);
        // The fast peer receives the honest one's events: they are in its past (K1).
        await waitFor(() => has(fast, id));
      } else {
        await append(fast, id);
      }
    }
    const start = clockNow();
    // Nobody is dragged: the honest peer's events stay near its own clock (K2).
    for (const e of await honest.read()) {
      expect(e.time).toBeLessThanOrEqual(start + DEFAULT_MAX_CLOCK_AHEAD_MS);
    }
    // The fast peer's events were never sent (K3); both sides report CLOCK_SKEW.
    expect((await ids(honest)).filter((id) => Number(id.split('-')[1]) % 2 === 1)).toEqual([]);
    await waitFor(() => fast.sync.status().lastError?.code === 'CLOCK_SKEW');
    expect(honest.sync.status().lastError?.code).toBe('CLOCK_SKEW');
    expect(fast.sync.status().pending).toBe(15);

    // Fold and snapshot the order the fast clock made, and watch it.
    const skewedOrder = await ids(fast);
    expect(await fast.state('chain')).toEqual(skewedOrder);
    const watched: string[][] = [];
    fast.watch<string[]>('chain', (state) => watched.push(state));

    // Its clock is set right; at the next session its unshared events are re-stamped (C8).
    fastOffset.ms = 0;
    for (const c of connections) await c.close();
    link(fast, honest);
    await waitFor(async () => (await honest.read()).length === 30);
    await waitFor(() => fast.sync.status().pending === 0);
    const done = clockNow();
    for (const store of [fast, honest]) {
      const events = await store.read();
      const position = new Map(events.map((e, i) => [e.id, i]));
      // Causal order: every event sorts after everything its appender held (R2).
      for (const [id, past] of pastOf) {
        for (const before of past) expect(position.get(before)!).toBeLessThan(position.get(id)!);
      }
      for (const e of events) expect(e.time).toBeLessThanOrEqual(done + DEFAULT_MAX_CLOCK_AHEAD_MS);
      // Projections (with snapshots taken before the re-stamp) fold the new order.
      expect(await store.state('chain')).toEqual(events.map((e) => e.id));
      expect(await store.state('chain', { at: done })).toEqual(events.map((e) => e.id));
      expect((await store.read({ from: start - HOUR, to: done })).map((e) => e.id)).toEqual(
        events.map((e) => e.id),
      );
    }
    expect(await ids(fast)).toEqual(await ids(honest));
    // The order changed (each fast event now right after the one it followed); the projection
    // rebased from before the moved events, and its watcher was told.
    expect(await ids(fast)).not.toEqual(skewedOrder);
    await waitFor(() => (JSON.stringify(watched.at(-1)) === JSON.stringify(skewedOrder)) === false);
    await waitFor(async () => JSON.stringify(watched.at(-1)) === JSON.stringify(await ids(fast)));
    // New events of the once-fast peer are stamped by its right clock (its HLC was set back).
    const [late] = await fast.append('chain', { type: 'step', data: null });
    expect(late!.time).toBeLessThanOrEqual(clockNow() + DEFAULT_MAX_CLOCK_AHEAD_MS);
  });
});
