/**
 * The pure decisions behind limits exchange and per-event refusal (src/core/sync.ts invariants
 * 6, 7 and 8; RELIABILITY.md case 37).
 */
import { describe, expect, it } from 'vitest';
import {
  afterBatch,
  afterRefusal,
  BATCH_ENVELOPE_BYTES,
  classifyBatch,
  classifyRefusal,
  decideEventRefusal,
  EMPTY_WINDOW,
  EVENT_WIRE_OVERHEAD_BYTES,
  negotiateLimits,
  planBatches,
  sendableEventBytes,
  windowPush,
} from '../../src/core/sync.ts';
import { syncRecord as record } from './fixtures.ts';

describe('negotiateLimits (invariant 6)', () => {
  it('takes the smaller of each limit', () => {
    const mine = { maxBatchEvents: 2000, maxMessageBytes: 1000, maxEventBytes: 500 };
    const theirs = { maxBatchEvents: 2, maxMessageBytes: 5000, maxEventBytes: 500 };
    expect(negotiateLimits(mine, theirs)).toEqual({
      maxBatchEvents: 2,
      maxMessageBytes: 1000,
      maxEventBytes: 500,
    });
  });

  it('an event must fit the peer limit and a message', () => {
    const overhead = BATCH_ENVELOPE_BYTES + EVENT_WIRE_OVERHEAD_BYTES;
    expect(
      sendableEventBytes({ maxBatchEvents: 1, maxMessageBytes: 1e6, maxEventBytes: 500 }),
    ).toBe(500);
    expect(
      sendableEventBytes({ maxBatchEvents: 1, maxMessageBytes: 10_000, maxEventBytes: 1e6 }),
    ).toBe(10_000 - overhead);
  });
});

describe('planBatches with the peer maxEventBytes (invariant 6)', () => {
  const limits = { maxBatchEvents: 10, maxMessageBytes: 100_000, maxEventBytes: 1000 };

  it('leaves out an event over the peer limit, covers its position, and carries its neighbours', () => {
    const records = [record(1, 'me', 1, 10), record(2, 'me', 2, 2000), record(3, 'me', 3, 10)];
    const [batch, ...rest] = planBatches(0, records, {
      ownReplica: 'me',
      skip: () => false,
      limits,
    });
    expect(rest).toEqual([]);
    expect(batch).toMatchObject({ from: 0, to: 3, toId: 'id3' });
    expect(batch!.events.map((e) => e.id)).toEqual(['id1', 'id3']);
    expect(batch!.leftOut).toEqual([
      { pos: 2, event: records[1]!.event, reason: { kind: 'too-large', bytes: 2002, limit: 1000 } },
    ]);
  });

  it('counts a left-out or skipped own event in ownSeq: once acknowledged it is not pending', () => {
    const records = [record(1, 'me', 1, 10), record(2, 'me', 2, 2000)];
    const [batch] = planBatches(0, records, { ownReplica: 'me', skip: () => false, limits });
    expect(batch!.ownSeq).toBe(2);
    const [skipping] = planBatches(0, records, {
      ownReplica: 'me',
      skip: (r) => r.event.id === 'id2',
      limits,
    });
    expect(skipping!.ownSeq).toBe(2);
  });

  it('measures the payload only of events whose wire size passes the limit', () => {
    const measured: string[] = [];
    planBatches(0, [record(1, 'me', 1, 10), record(2, 'me', 2, 2000)], {
      ownReplica: 'me',
      skip: () => false,
      limits,
      sizeOf: (e) => JSON.stringify(e.data).length + 50,
      payloadOf: (e) => {
        measured.push(e.id);
        return JSON.stringify(e.data).length;
      },
    });
    expect(measured).toEqual(['id2']);
  });

  it('starts a new batch for an event only after placing it: ownSeq stays with its batch', () => {
    const records = [1, 2, 3].map((p) => record(p, 'me', p));
    const batches = planBatches(0, records, {
      ownReplica: 'me',
      skip: () => false,
      limits: { ...limits, maxBatchEvents: 2 },
    });
    expect(batches.map((b) => [b.to, b.ownSeq])).toEqual([
      [2, 2],
      [3, 3],
    ]);
  });
});

describe('classifyRefusal (invariant 7)', () => {
  let window = windowPush(EMPTY_WINDOW, {
    from: 0,
    to: 2,
    bytes: 10,
    ownSeq: 0,
    events: [{ id: 'a' }, { id: 'b' }],
  });
  window = windowPush(window, {
    from: 2,
    to: 4,
    bytes: 20,
    ownSeq: 0,
    events: [{ id: 'c' }, { id: 'd' }],
  });
  window = windowPush(window, { from: 4, to: 6, bytes: 30, ownSeq: 0, events: [{ id: 'e' }] });

  it('rewinds to the refused batch, keeping the batches before it in flight', () => {
    expect(classifyRefusal(window, 2, 'd', false)).toEqual({
      kind: 'rewind',
      sentPos: 2,
      window: { batches: [window.batches[0]], bytes: 10 },
    });
  });

  it('ignores a refusal it already followed (a duplicated frame)', () => {
    expect(classifyRefusal(window, 2, 'd', true)).toEqual({ kind: 'duplicate' });
  });

  it('finds invalid a refusal naming no batch in flight or an event the batch did not carry', () => {
    expect(classifyRefusal(window, 3, 'd', false).kind).toBe('invalid');
    expect(classifyRefusal(window, 2, 'e', false).kind).toBe('invalid');
    expect(classifyRefusal(EMPTY_WINDOW, 0, 'a', false).kind).toBe('invalid');
  });
});

describe('a receiver after a refusal (invariant 8)', () => {
  const refused = afterRefusal({ pos: 4, started: true }, 4, 'x');

  it('drops batches until the one that starts at the refused from', () => {
    expect(classifyBatch(refused, { from: 6, to: 8 })).toEqual({ kind: 'discard' });
    expect(afterBatch(refused, { kind: 'discard' })).toEqual(refused);
  });

  it('drops a repeat of the refused batch that still holds the event', () => {
    expect(classifyBatch(refused, { from: 4, to: 6, events: [{ id: 'x' }] })).toEqual({
      kind: 'discard',
    });
  });

  it('applies the resend without it, and forgets the refusal', () => {
    const decision = classifyBatch(refused, { from: 4, to: 6, events: [{ id: 'y' }] });
    expect(decision).toEqual({ kind: 'apply', to: 6, restart: false });
    expect(afterBatch(refused, decision)).toEqual({ pos: 6, started: true });
  });

  it('takes the resend of a refused restart from 0 as the restart', () => {
    const state = afterRefusal({ pos: 9, started: false }, 0, 'x');
    expect(classifyBatch(state, { from: 3, to: 5 })).toEqual({ kind: 'discard' });
    expect(classifyBatch(state, { from: 0, to: 2, events: [] })).toEqual({
      kind: 'apply',
      to: 2,
      restart: true,
    });
  });
});

describe('decideEventRefusal (invariant 8)', () => {
  const state = { pos: 4, started: true };
  it('is fatal to a peer that would not resend (no limits in its hello)', () => {
    expect(decideEventRefusal(state, { from: 4, to: 6 }, 'x', false)).toEqual({ kind: 'fatal' });
  });
  it('refuses the event of the batch at the checkpoint and waits for its resend', () => {
    expect(decideEventRefusal(state, { from: 4, to: 6 }, 'x', true)).toEqual({
      kind: 'refuse',
      state: { pos: 4, started: true, refused: { from: 4, eventId: 'x' } },
    });
  });
  it('drops what was sent before the refusal and a repeat; refuses another event of the resend', () => {
    const waiting = afterRefusal(state, 4, 'x');
    expect(decideEventRefusal(waiting, { from: 6, to: 8 }, 'y', true)).toEqual({ kind: 'drop' });
    expect(decideEventRefusal(waiting, { from: 4, to: 6 }, 'x', true)).toEqual({ kind: 'drop' });
    expect(decideEventRefusal(waiting, { from: 4, to: 6 }, 'y', true)).toMatchObject({
      kind: 'refuse',
      state: { refused: { from: 4, eventId: 'y' } },
    });
  });
  it('acknowledges again a batch already held, and refuses a gap', () => {
    expect(decideEventRefusal(state, { from: 2, to: 4 }, 'x', true)).toEqual({
      kind: 'ack',
      state: { pos: 4, started: true },
    });
    expect(decideEventRefusal(state, { from: 5, to: 6 }, 'x', true)).toEqual({
      kind: 'gap',
      expected: 4,
    });
  });
});
