/**
 * The Syncer (src/sync/controller.ts): status, pending, backoff (RELIABILITY case 19), clock
 * correction, fatal protocol versions. Time is virtual (test/sync/virtual-time.ts).
 */
import { describe, expect, it } from 'vitest';
import type { SyncStatus, Transport, TransportCloseInfo } from '../../src/core/sync-types.ts';
import { createSyncController } from '../../src/sync/controller.ts';
import { backoffDelay, DEFAULT_BACKOFF } from '../../src/sync/link.ts';
import { PROTOCOL_VERSION, type SyncMessage } from '../../src/sync/protocol.ts';
import { memoryTransportPair } from '../../src/sync/transports/memory.ts';
import { idsInOrder, memoryReplica } from './helpers.ts';
import { VirtualTime } from './virtual-time.ts';

/** A transport whose far end the test plays by hand. */
function scriptedTransport() {
  const messages = new Set<(t: string) => void>();
  const closes = new Set<(i: TransportCloseInfo) => void>();
  const sent: SyncMessage[] = [];
  let open = false;
  let opens = 0;
  const transport: Transport = {
    kind: 'scripted',
    async open() {
      opens++;
      open = true;
    },
    send(text) {
      if (!open) throw new Error('not open');
      sent.push(JSON.parse(text) as SyncMessage);
    },
    onMessage(l) {
      messages.add(l);
      return () => messages.delete(l);
    },
    onClose(l) {
      closes.add(l);
      return () => closes.delete(l);
    },
    close() {
      if (!open) return;
      open = false;
      for (const l of [...closes]) l({ code: 1000, reason: 'closed' });
    },
  };
  return {
    transport,
    sent,
    opens: () => opens,
    deliver: (m: unknown) => {
      for (const l of [...messages]) l(JSON.stringify(m));
    },
    drop: () => {
      open = false;
      for (const l of [...closes])
        l({ code: 1006, reason: 'gone', error: { code: 'TRANSPORT', message: 'gone' } });
    },
  };
}

describe('sync controller', () => {
  it('reports connecting, syncing and idle, with pending counting unacknowledged own events', async () => {
    const time = new VirtualTime();
    const { internals: a } = await memoryReplica({ clock: () => 1e12 + time.now });
    const { internals: b } = await memoryReplica({ clock: () => 1e12 + time.now });
    await a.append('s', 1, 2, 3);
    const ca = createSyncController(a, { timers: time });
    const cb = createSyncController(b, { timers: time });
    await time.run(10);
    expect(ca.status()).toMatchObject({ state: 'offline', pending: 3 });
    const states: SyncStatus['state'][] = [];
    ca.on('status', (s) => states.push(s.state));
    const [ta, tb] = memoryTransportPair({ schedule: time.schedule });
    const conn = ca.connect(ta);
    cb.connect(tb);
    await time.run(1000);
    expect(ca.status()).toMatchObject({ state: 'idle', pending: 0 });
    expect(ca.status().lastSyncedAt).toBeGreaterThan(0);
    expect(states[0]).toBe('connecting');
    expect(states).toContain('syncing');
    expect(await idsInOrder(b)).toEqual(await idsInOrder(a));
    await conn.close();
    await a.append('s', 4);
    await time.run(100);
    expect(ca.status()).toMatchObject({ state: 'offline', pending: 1 });
    await ca.close();
    await cb.close();
  });

  it('backs off with full jitter, and resets only after a connection stayed healthy (case 19)', async () => {
    const time = new VirtualTime();
    const delays: number[] = [];
    const timers = {
      setTimeout: (fn: () => void, ms: number) => {
        if (ms !== DEFAULT_BACKOFF.healthyAfterMs) delays.push(ms);
        return time.setTimeout(fn, ms);
      },
      clearTimeout: time.clearTimeout,
    };
    const { internals } = await memoryReplica();
    const peer = scriptedTransport();
    const controller = createSyncController(internals, { timers, random: () => 0.999 });
    controller.connect(peer.transport);
    // A server that accepts and drops at once: every open counts as a failure.
    // Each round is shorter than healthyAfterMs, longer than the retry delay.
    for (let i = 0; i < 4; i++) {
      await time.run(50, time.now + 5_000);
      peer.drop();
    }
    await time.run(50, time.now + 5_000);
    expect(delays.slice(0, 4)).toEqual([499, 999, 1998, 3996]);
    // Now a connection stays open past healthyAfterMs: the next delay starts over.
    await time.run(50, time.now + DEFAULT_BACKOFF.healthyAfterMs + 1);
    peer.drop();
    await time.run(5);
    expect(delays[delays.length - 1]).toBe(499);
    await controller.close();
  });

  it('computes full-jitter delays within the ceiling', () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(0);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0.5)).toBe(2000);
    expect(backoffDelay(30, DEFAULT_BACKOFF, () => 0.5)).toBe(15_000);
  });

  it("corrects the clock from a server's hello time when it is far off, and not from a peer's", async () => {
    const time = new VirtualTime();
    const { internals } = await memoryReplica({ clock: () => 1e12 });
    const peer = scriptedTransport();
    const controller = createSyncController(internals, { timers: time });
    controller.connect(peer.transport);
    await time.run(10);
    const hello = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      replica: 'server1',
      epoch: 'e',
      head: 0,
      seq: 0,
    };
    peer.deliver({ ...hello, time: 1e12 + 3_600_000, server: true });
    await time.run(10);
    expect(internals.offset).toBe(3_600_000);
    await controller.close();

    const { internals: other } = await memoryReplica({ clock: () => 1e12 });
    const peer2 = scriptedTransport();
    const c2 = createSyncController(other, { timers: time });
    c2.connect(peer2.transport);
    await time.run(10);
    peer2.deliver({ ...hello, time: 1e12 + 3_600_000 });
    await time.run(10);
    expect(other.offset).toBe(0);
    await c2.close();
  });

  it('stops reconnecting after a PROTOCOL_VERSION error and reports it', async () => {
    const time = new VirtualTime();
    const { internals } = await memoryReplica();
    const peer = scriptedTransport();
    const controller = createSyncController(internals, { timers: time });
    controller.connect(peer.transport);
    await time.run(10);
    peer.deliver({
      type: 'hello',
      protocol: PROTOCOL_VERSION + 1,
      replica: 'x',
      epoch: 'e',
      head: 0,
      seq: 0,
      time: 0,
    });
    await time.run(100, time.now + 120_000);
    expect(controller.status()).toMatchObject({
      state: 'offline',
      lastError: { code: 'PROTOCOL_VERSION' },
    });
    expect(peer.opens()).toBe(1);
    expect(peer.sent.some((m) => m.type === 'error' && m.code === 'PROTOCOL_VERSION')).toBe(true);
    await controller.close();
  });

  it('reports CLOCK_SKEW on both sides and holds back what is a day ahead, then delivers it re-stamped once the clock is right (invariants 8, 9)', async () => {
    const time = new VirtualTime();
    let skew = 2 * 86_400_000;
    const { internals: fast } = await memoryReplica({ clock: () => 1e12 + time.now + skew });
    const { internals: b } = await memoryReplica({ clock: () => 1e12 + time.now });
    const [future] = await fast.append('s', 'from the future');
    const ca = createSyncController(fast, { timers: time });
    const cb = createSyncController(b, { timers: time });
    const [ta, tb] = memoryTransportPair({ schedule: time.schedule });
    const links = [ca.connect(ta), cb.connect(tb)];
    await time.run(1000);
    expect(cb.status().lastError?.code).toBe('CLOCK_SKEW');
    expect(ca.status().lastError?.code).toBe('CLOCK_SKEW');
    expect(await idsInOrder(b)).toEqual([]);
    expect(ca.status().pending).toBe(1);
    // A peer's clock corrects nobody's (invariant 9): the fast clock is set right by hand.
    skew = 0;
    for (const link of links) await link.close();
    const [ta2, tb2] = memoryTransportPair({ schedule: time.schedule });
    ca.connect(ta2);
    cb.connect(tb2);
    await time.run(1000);
    expect(await idsInOrder(b)).toEqual([future!.id]);
    expect(ca.status().pending).toBe(0);
    const [moved] = await b.all();
    expect(moved!.time).toBeLessThanOrEqual(1e12 + time.now);
    await ca.close();
    await cb.close();
  });
});
