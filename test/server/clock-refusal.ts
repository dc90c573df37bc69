/**
 * What a sync server does with an event stamped beyond its clock + tolerance, whatever its
 * storage (session-receiver.ts invariant 4, protocol invariants 6 and 7): refused alone with CLOCK_SKEW,
 * nothing of its batch stored, the resend without it stored and served. Shared by the SQLite
 * and PostgreSQL tests.
 */
import { expect } from 'vitest';
import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../../src/core/clock-skew.ts';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { DEFAULT_SYNC_LIMITS, PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { makeEvents } from './events.ts';
import { ProtocolClient, RawClient } from './helpers.ts';

const HOUR = 60 * 60 * 1000;

export async function serverRefusesEventsAhead(url: string, token: string): Promise<void> {
  const replica = 'skewedclient0001';
  const now = Date.now();
  const [onTime, ahead] = makeEvents(2, { replica, wall: now }) as [
    StoredEventRecord,
    StoredEventRecord,
  ];
  const future = makeEvents(2, { replica, wall: now + HOUR })[1]!;
  expect(future.id).toBe(ahead.id);
  const raw = await RawClient.connect(url, { token });
  try {
    await raw.nextOfType('hello');
    raw.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      replica,
      epoch: `epoch-${replica}`,
      head: 2,
      seq: 2,
      time: now,
      limits: DEFAULT_SYNC_LIMITS,
    });
    await raw.nextOfType('pull');
    raw.send({ type: 'events', from: 0, to: 2, toId: future.id, events: [onTime, future] });
    const refusal = await raw.next((m) => m.type === 'error' || m.type === 'ack');
    expect(refusal).toMatchObject({
      type: 'error',
      code: 'CLOCK_SKEW',
      eventId: future.id,
      refused: { from: 0, reason: { kind: 'clock-ahead', wall: now + HOUR } },
    });
    expect(refusal.fatal).toBeUndefined();
    const limit = (refusal.refused as { reason: { limit: number } }).reason.limit;
    expect(limit).toBeGreaterThanOrEqual(now + DEFAULT_MAX_CLOCK_AHEAD_MS);
    expect(limit).toBeLessThan(now + HOUR);
    raw.send({ type: 'events', from: 0, to: 2, toId: future.id, events: [onTime] });
    const ack = await raw.next((m) => m.type === 'ack' || m.type === 'error');
    expect(ack).toMatchObject({ type: 'ack', to: 2 });
  } finally {
    raw.close();
  }
  const reader = await ProtocolClient.connect(url, token, { expectPull: false });
  try {
    const held = await reader.pullAll();
    expect(held.filter((e) => e.replica === replica).map((e) => e.id)).toEqual([onTime.id]);
  } finally {
    reader.close();
  }
}
