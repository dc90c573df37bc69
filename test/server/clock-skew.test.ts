/**
 * One device's clock a year ahead, through a real server (issue 12 defect 5; RELIABILITY cases
 * 20 and 38): a ws server on 127.0.0.1 over a SQLite file, three stores on the public API. Cites
 * core/clock-skew.ts (K1-K3), core/restamp.ts (R1-R4), controller.ts (C6).
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  defineProjection,
  type EventStore,
  memoryStorage,
  openStore,
  webSocketTransport,
} from '../../src/index.ts';
import { serverRefusesEventsAhead } from './clock-refusal.ts';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';

const YEAR = 365 * 24 * 60 * 60 * 1000;
/** The default tolerance (core/clock-skew.ts), written out so that this file also runs on main. */
const AHEAD = 5 * 60_000;

let t: TestServer | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  await t?.stop();
  t = undefined;
});

const titles = defineProjection<string[]>({
  name: 'titles',
  version: 1,
  initial: () => [],
  apply: (list, e) => [...list, (e.data as { title: string }).title],
  snapshotEvery: 2,
});

async function store(name: string, offsetMs = 0): Promise<EventStore> {
  const s = await openStore({
    name,
    storage: memoryStorage(),
    projections: [titles],
    now: () => Date.now() + offsetMs,
  });
  closers.push(() => s.close());
  return s;
}

function connect(server: TestServer, s: EventStore, sub: string): void {
  s.sync.connect(
    webSocketTransport(server.server.url, {
      token: server.token({ sub }),
      WebSocket: WebSocket as never,
    }),
  );
}

const titlesOf = async (s: EventStore) =>
  (await s.read()).map((e) => (e.data as { title: string }).title);

describe('a device clock a year ahead, through the server', () => {
  it('drags no honest replica; its offline events arrive re-stamped near server time, in order (cases 20, 38)', async () => {
    t = await startTestServer();
    const start = Date.now();
    const alice = await store('alice');
    const bob = await store('bob');
    connect(t, alice, 'alice');
    connect(t, bob, 'bob');
    await alice.append('notes', { type: 'note', data: { title: 'alice-1' } });
    await waitFor(async () => (await titlesOf(bob)).includes('alice-1'), 15_000);

    // Offline, with its clock a year ahead: a causal chain of three.
    const fast = await store('fast', YEAR);
    for (const title of ['fast-1', 'fast-2', 'fast-3']) {
      await fast.append('notes', { type: 'note', data: { title } });
    }
    connect(t, fast, 'mallory');
    await waitFor(async () => (await titlesOf(alice)).includes('fast-3'), 15_000);
    await waitFor(async () => (await titlesOf(bob)).includes('fast-3'), 15_000);
    // After receiving them, honest replicas keep stamping near their own clock.
    await alice.append('notes', { type: 'note', data: { title: 'alice-2' } });
    await bob.append('notes', { type: 'note', data: { title: 'bob-1' } });
    await waitFor(async () => (await titlesOf(fast)).length === 6, 15_000);
    await waitFor(async () => (await titlesOf(alice)).length === 6, 15_000);
    await waitFor(async () => (await titlesOf(bob)).length === 6, 15_000);
    const now = Date.now();

    for (const s of [alice, bob, fast]) {
      const events = await s.read();
      const order = events.map((e) => (e.data as { title: string }).title);
      // The offline chain, re-stamped near server time, in its order; alice-2 and bob-1 were
      // appended after it arrived, so they sort after it (K2).
      const at = (title: string) => order.indexOf(title);
      expect(at('fast-1')).toBeLessThan(at('fast-2'));
      expect(at('fast-2')).toBeLessThan(at('fast-3'));
      expect(at('fast-3')).toBeLessThan(at('alice-2'));
      expect(at('fast-3')).toBeLessThan(at('bob-1'));
      for (const e of events) {
        expect(e.time).toBeGreaterThanOrEqual(start - AHEAD);
        expect(e.time).toBeLessThanOrEqual(now + AHEAD);
      }
      // Time travel to now and a time-range read around now see every event.
      expect(await s.state('titles', { at: now + AHEAD })).toEqual(order);
      expect((await s.read({ from: start - AHEAD, to: now + AHEAD })).length).toBe(6);
      expect(await s.state('titles')).toEqual(order);
    }
    expect(await titlesOf(alice)).toEqual(await titlesOf(bob));
    expect(await titlesOf(fast)).toEqual(await titlesOf(bob));
    // The fast device now stamps with the server's time.
    const [next] = await fast.append('notes', { type: 'note', data: { title: 'fast-4' } });
    expect(next!.time).toBeLessThanOrEqual(Date.now() + AHEAD);
  }, 30_000);

  it('refuses alone an event stamped beyond its clock + tolerance on SQLite: nothing of its batch stored, the resend without it stored (K1)', async () => {
    t = await startTestServer();
    await serverRefusesEventsAhead(t.server.url, t.token({ sub: 'skewed' }));
  });
});
