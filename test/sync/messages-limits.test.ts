/**
 * Parsing of what the limits exchange adds to the wire (protocol.ts invariants 5 and 6):
 * hello.limits, error.refused, and an event over the receiver's maxEventBytes.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import {
  DEFAULT_SERVER_EVENT_BYTES,
  DEFAULT_SYNC_LIMITS,
  limitsOfPeer,
} from '../../src/sync/protocol.ts';
import { replicaA, T0 } from '../core/fixtures.ts';
import { storedEvent } from '../fixtures/events.ts';
import { helloFrom } from './helpers.ts';

const parse = (message: unknown, limits = DEFAULT_SYNC_LIMITS) =>
  parseMessage(JSON.stringify(message), limits);

describe('hello.limits', () => {
  it('keeps the named limits, fills a missing one with the default, drops unknown ones', () => {
    const result = parse(
      helloFrom(replicaA, { limits: { maxBatchEvents: 2, future: 1 } as never }),
    );
    expect(result).toMatchObject({
      ok: true,
      message: { limits: { ...DEFAULT_SYNC_LIMITS, maxBatchEvents: 2 } },
    });
  });

  it('leaves limits out of a hello that had none (an older peer)', () => {
    const result = parse(helloFrom(replicaA));
    expect(result.ok && result.message.type === 'hello' && 'limits' in result.message).toBe(false);
  });

  it('gives a peer older than hello.limits the defaults of its kind', () => {
    expect(limitsOfPeer({})).toEqual(DEFAULT_SYNC_LIMITS);
    expect(limitsOfPeer({ server: true })).toEqual({
      ...DEFAULT_SYNC_LIMITS,
      maxEventBytes: DEFAULT_SERVER_EVENT_BYTES,
    });
  });

  it.each([
    ['not an object', 5],
    ['a count of 0', { maxBatchEvents: 0 }],
    ['a message limit below 1024', { maxMessageBytes: 1023 }],
    ['a fraction', { maxInFlightBatches: 1.5 }],
  ])('refuses limits that are %s with PROTOCOL', (_name, limits) => {
    expect(parse(helloFrom(replicaA, { limits: limits as never }))).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
    });
  });
});

describe('error.refused', () => {
  const refusal = (reason: unknown, extra: object = { eventId: 'e1' }) =>
    parse({
      type: 'error',
      code: 'VALIDATION',
      message: 'm',
      ...extra,
      refused: { from: 3, reason },
    });

  it('parses the known reasons', () => {
    expect(refusal({ kind: 'too-large', bytes: 9, limit: 5 })).toMatchObject({
      ok: true,
      message: {
        eventId: 'e1',
        refused: { from: 3, reason: { kind: 'too-large', bytes: 9, limit: 5 } },
      },
    });
    expect(refusal({ kind: 'invalid', field: 'data' })).toMatchObject({
      ok: true,
      message: { refused: { reason: { kind: 'invalid', field: 'data' } } },
    });
  });

  it('reads a reason it does not know as other: still a refusal of that event', () => {
    expect(refusal({ kind: 'clock-skew', aheadMs: 5 })).toMatchObject({
      ok: true,
      message: { refused: { reason: { kind: 'other', name: 'clock-skew' } } },
    });
  });

  it('refuses a refusal without an eventId, or with a malformed reason, with PROTOCOL', () => {
    expect(refusal({ kind: 'invalid', field: 'data' }, {})).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
    });
    expect(refusal({ kind: 'too-large', bytes: 'x', limit: 5 })).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
    });
    expect(refusal({})).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });
});

describe('an event over the receiver maxEventBytes', () => {
  it('is LIMIT_EXCEEDED, naming the event and the batch that carried it', () => {
    const small = storedEvent({ replica: replicaA, seq: 1, wall: T0, data: 'x' });
    const big = storedEvent({ replica: replicaA, seq: 2, wall: T0, data: 'y'.repeat(2000) });
    const text = encodeMessage({
      type: 'events',
      from: 4,
      to: 6,
      toId: big.id,
      events: [small, big],
    });
    expect(parseMessage(text, { ...DEFAULT_SYNC_LIMITS, maxEventBytes: 1000 })).toMatchObject({
      ok: false,
      code: 'LIMIT_EXCEEDED',
      eventId: big.id,
      batch: { from: 4, to: 6, reason: { kind: 'too-large', bytes: 2002, limit: 1000 } },
    });
    expect(parseMessage(text, DEFAULT_SYNC_LIMITS).ok).toBe(true);
  });
});
