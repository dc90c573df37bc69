/**
 * A held event goes once the peer's clock is right, not only once time passes what its hello
 * showed (issue 12 defect 5; the public-API convergence property's wedge with clocks hours
 * apart). A peer's hello shows its clock once per session; a clock set right afterwards (by
 * NTP, or by a server's correction: controller.ts invariant 4) was invisible to the sender, which
 * held the event for as long as that clock had been wrong. Cites session-sender.ts invariant 10
 * and clock-hold.ts invariant 3.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStore, memoryStorage, memoryTransportPair, openStore } from '../../src/index.ts';
import { VirtualTime } from './virtual-time.ts';

const BASE = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

async function replica(name: string, time: VirtualTime, skew: { ms: number }, server = false) {
  const store = await openStore({
    name,
    storage: memoryStorage(),
    now: () => BASE + time.now + skew.ms,
    syncOptions: {
      timers: time,
      backoff: { initialMs: 20, maxMs: 400, healthyAfterMs: 1000 },
      ...(server ? { server: true } : {}),
    },
  });
  closers.push(() => store.close());
  return store;
}

const ids = async (s: EventStore) => (await s.read()).map((e) => e.id);

describe('a peer whose clock is set right mid-session', () => {
  it('is sent the event held for its slow clock within a couple of minutes, and both go idle (S10, H3)', async () => {
    const time = new VirtualTime();
    const honest = await replica('honest', time, { ms: 0 });
    const slowSkew = { ms: -3 * HOUR };
    const slow = await replica('slow', time, slowSkew);
    const [ta, tb] = memoryTransportPair({ schedule: time.schedule });
    for (const c of [honest.sync.connect(ta), slow.sync.connect(tb)]) {
      closers.push(() => c.close());
    }
    await time.run(1_000, time.now + 1_000);
    const [event] = await honest.append('s', { type: 'now', data: null });
    await time.run(1_000, time.now + 1_000);
    // Three hours ahead of the slow clock: held, not sent (C3).
    expect(await ids(slow)).toEqual([]);
    expect(honest.sync.status().pending).toBe(1);

    // Its clock is set right; the session (and its hello) stays.
    slowSkew.ms = 0;
    await time.run(10_000, time.now + 3 * MINUTE);
    expect(await ids(slow)).toEqual([event!.id]);
    expect(honest.sync.status()).toMatchObject({ state: 'idle', pending: 0 });
    expect(slow.sync.status()).toMatchObject({ state: 'idle', pending: 0 });
    // Nothing is held any more: no look stays armed (it would ping, and keep a timer, for nothing).
    expect(time.pending).toBe(0);
  });

  it('is sent the held event as soon as a server corrects its clock: it tells its peers its new time unasked (S10)', async () => {
    const time = new VirtualTime();
    const honest = await replica('honest', time, { ms: 0 });
    const slow = await replica('slow', time, { ms: -3 * HOUR });
    const server = await replica('server', time, { ms: 0 }, true);
    const link = (a: EventStore, b: EventStore) => {
      const [ta, tb] = memoryTransportPair({ schedule: time.schedule });
      for (const c of [a.sync.connect(ta), b.sync.connect(tb)]) closers.push(() => c.close());
    };
    link(honest, slow);
    await time.run(1_000, time.now + 1_000);
    const [event] = await honest.append('s', { type: 'now', data: null });
    await time.run(1_000, time.now + 1_000);
    expect(await ids(slow)).toEqual([]);
    // The server's hello corrects the slow clock (controller.ts invariant 4); well before the
    // honest side's next look (a minute), the event arrives.
    link(slow, server);
    await time.run(1_000, time.now + 5_000);
    expect(await ids(slow)).toEqual([event!.id]);
    expect(honest.sync.status()).toMatchObject({ state: 'idle', pending: 0 });
  });
});

describe('a sender whose own clock a server corrects mid-session', () => {
  it('measures its peer against the clock the correction does not move, and holds nothing the peer takes (H1)', async () => {
    const time = new VirtualTime();
    const fast = await replica('fast', time, { ms: 3 * HOUR });
    const honest = await replica('honest', time, { ms: 0 });
    const server = await replica('server', time, { ms: 0 }, true);
    const link = (a: EventStore, b: EventStore) => {
      const [ta, tb] = memoryTransportPair({ schedule: time.schedule });
      for (const c of [a.sync.connect(ta), b.sync.connect(tb)]) closers.push(() => c.close());
    };
    // The honest peer's hello shows its clock three hours behind the fast one's.
    link(fast, honest);
    await time.run(1_000, time.now + 1_000);
    // Then a server sets the fast clock right (controller.ts invariant 4), three hours back.
    link(fast, server);
    await time.run(1_000, time.now + 2_000);
    // Stamped now, right by every clock: measured against the corrected clock, the honest
    // peer's clock was still three hours behind, so the event waited for the next look (a
    // minute) and the link stayed syncing until then.
    const [event] = await fast.append('s', { type: 'now', data: null });
    await time.run(1_000, time.now + 5_000);
    expect(await ids(honest)).toEqual([event!.id]);
    expect(fast.sync.status()).toMatchObject({ state: 'idle', pending: 0 });
  });
});
