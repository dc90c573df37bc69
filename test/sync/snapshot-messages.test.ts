/**
 * Joining from a snapshot on the wire (protocol.ts invariant 10, snapshot-messages.ts): hello's
 * `join` and `snapshots`, and the `snapshot` message, parsed strictly with coded errors; a
 * snapshot larger than maxMessageBytes is taken only while this side waits for one.
 */
import { describe, expect, it } from 'vitest';
import type { SpaceSnapshot } from '../../src/core/space-snapshot.ts';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS, PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { replicaA, replicaB } from '../core/fixtures.ts';
import { storedEvent } from '../fixtures/events.ts';

const limits = DEFAULT_SYNC_LIMITS;
const last = storedEvent({ replica: replicaB, seq: 2, wall: 1_700_000_000_000 });

function snapshot(over: Partial<SpaceSnapshot> = {}): SpaceSnapshot {
  return {
    pos: 5,
    cursor: last.cursor,
    count: 5,
    projections: [{ name: 'board', version: 2, state: { cards: [1, 2] } }],
    streams: [{ stream: 'card-1', version: 3, conflict: false }],
    vector: { [replicaA]: 3, [replicaB]: 2 },
    ...over,
  };
}

const parse = (value: unknown, bytes?: number) =>
  parseMessage(JSON.stringify(value), limits, bytes);

describe('the snapshot message', () => {
  it('parses a snapshot and its id as sent, and "none" as a message without one', () => {
    const message = { type: 'snapshot' as const, snapshot: snapshot(), id: last.id };
    expect(parseMessage(encodeMessage(message), limits)).toMatchObject({ ok: true, message });
    expect(parse({ type: 'snapshot' })).toMatchObject({
      ok: true,
      message: { type: 'snapshot' },
    });
  });

  it.each([
    ['a position that is not an integer', { pos: 1.5 }],
    ['a cursor that is not one', { cursor: 'nope' }],
    ['events counted without a cursor', { cursor: '', pos: 0 }],
    ['a cursor at position 0', { pos: 0 }],
    ['a vector keyed by something else', { vector: { 'not a replica': 1 } }],
    ['a vector seq of 0', { vector: { [replicaA]: 0 } }],
    [
      'a projection named twice',
      {
        projections: [
          { name: 'a', version: 1, state: 1 },
          { name: 'a', version: 1, state: 2 },
        ],
      },
    ],
    ['a projection without its state', { projections: [{ name: 'a', version: 1 }] }],
    [
      'a stream named twice',
      {
        streams: [
          { stream: 's', version: 1, conflict: false },
          { stream: 's', version: 2, conflict: false },
        ],
      },
    ],
    [
      'a conflict flag that is not a boolean',
      { streams: [{ stream: 's', version: 1, conflict: 1 }] },
    ],
    ['an empty vector for a snapshot of events', { vector: {} }],
  ] as [string, Partial<SpaceSnapshot>][])('refuses %s with PROTOCOL', (_why, over) => {
    const result = parse({ type: 'snapshot', snapshot: snapshot(over), id: last.id });
    expect(result).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });

  it('refuses an id that is not an event id', () => {
    expect(parse({ type: 'snapshot', snapshot: snapshot(), id: 7 })).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
    });
  });

  it('takes a snapshot over maxMessageBytes only while waiting for one, and no other message', () => {
    const big = snapshot({
      projections: [{ name: 'board', version: 2, state: 'x'.repeat(limits.maxMessageBytes) }],
    });
    const text = encodeMessage({ type: 'snapshot', snapshot: big, id: last.id });
    expect(parseMessage(text, limits)).toMatchObject({ ok: false, code: 'LIMIT_EXCEEDED' });
    expect(parseMessage(text, limits, 4 * limits.maxMessageBytes)).toMatchObject({ ok: true });
    expect(parseMessage(text, limits, limits.maxMessageBytes + 10)).toMatchObject({
      ok: false,
      code: 'LIMIT_EXCEEDED',
    });
    const ping = JSON.stringify({ type: 'ping', time: 1, pad: 'x'.repeat(limits.maxMessageBytes) });
    expect(parseMessage(ping, limits, 4 * limits.maxMessageBytes)).toMatchObject({
      ok: false,
      code: 'LIMIT_EXCEEDED',
    });
  });
});

describe("hello's join and snapshots", () => {
  const hello = {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    replica: replicaA,
    epoch: 'e',
    head: 0,
    seq: 0,
    time: 1,
  };

  it('parses a join request and the snapshots flag; a hello without them stays as it was', () => {
    const join = { projections: [{ name: 'board', version: 2 }], maxBytes: 4096 };
    expect(parse({ ...hello, join, snapshots: true })).toMatchObject({
      ok: true,
      message: { join, snapshots: true },
    });
    const plain = parse(hello);
    expect(plain.ok && 'join' in plain.message).toBe(false);
  });

  it.each([
    ['no projection list', { maxBytes: 4096 }],
    [
      'a projection named twice',
      {
        projections: [
          { name: 'a', version: 1 },
          { name: 'a', version: 2 },
        ],
        maxBytes: 4096,
      },
    ],
    [
      'a version that is not an integer',
      { projections: [{ name: 'a', version: '1' }], maxBytes: 4096 },
    ],
    ['maxBytes below the least', { projections: [], maxBytes: 10 }],
  ])('refuses a join with %s (PROTOCOL)', (_why, join) => {
    expect(parse({ ...hello, join })).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });
});
