/** The pure sync decisions (src/core/sync.ts); invariant numbers are that file's. */
import { describe, expect, it } from 'vitest';
import { ReceivedSpans } from '../../src/core/received-spans.ts';
import {
  afterBatch,
  checkpointForPull,
  classifyAck,
  classifyBatch,
  clockCorrection,
  decidePull,
  EMPTY_WINDOW,
  peerHolds,
  planBatches,
  receivedRun,
  windowAllows,
  windowPush,
} from '../../src/core/sync.ts';
import { syncRecord as record } from './fixtures.ts';

describe('decidePull (invariant 3)', () => {
  const mine = { epoch: 'e', head: 10, idAtCheckpoint: 'id5' };
  it('resumes at a checkpoint whose epoch, position and id match', () => {
    expect(decidePull({ epoch: 'e', pos: 5, id: 'id5' }, mine)).toEqual({
      kind: 'resume',
      from: 5,
    });
  });
  it('starts at 0 without a checkpoint', () => {
    expect(decidePull(undefined, mine)).toEqual({ kind: 'resume', from: 0 });
  });
  it.each([
    ['another epoch', { epoch: 'old', pos: 5, id: 'id5' }, 'epoch'],
    ['a position past the head', { epoch: 'e', pos: 11, id: 'id11' }, 'past-head'],
    ['another id at the position', { epoch: 'e', pos: 5, id: 'other' }, 'id-mismatch'],
  ] as const)('restarts from 0 on %s', (_name, checkpoint, reason) => {
    expect(decidePull(checkpoint, mine)).toEqual({ kind: 'restart', from: 0, reason });
  });
  it('sends no checkpoint to a peer whose hello shows another log', () => {
    const saved = { epoch: 'e', pos: 5, id: 'id5' };
    expect(checkpointForPull(saved, { epoch: 'e', head: 7 })).toEqual(saved);
    expect(checkpointForPull(saved, { epoch: 'x', head: 7 })).toBeUndefined();
    expect(checkpointForPull(saved, { epoch: 'e', head: 4 })).toBeUndefined();
  });
});

describe('receivedRun', () => {
  const received = new ReceivedSpans();
  for (const [pos, id] of [
    [3, 'c'],
    [4, 'd'],
    [5, 'e'],
    [7, 'g'],
  ] as const) {
    received.add(pos, id);
  }

  it('covers the run of positions the peer sent, from the send position on, carrying nothing', () => {
    expect(receivedRun(2, received, 100)).toEqual({
      from: 2,
      to: 5,
      toId: 'e',
      events: [],
      bytes: 0,
      replicas: new Set(),
      ownSeq: 0,
      leftOut: [],
    });
    expect(receivedRun(6, received, 100)).toMatchObject({ from: 6, to: 7, toId: 'g' });
  });

  it('stops at maxEvents, and is undefined when the next position is not one the peer sent', () => {
    expect(receivedRun(2, received, 2)).toMatchObject({ from: 2, to: 4, toId: 'd' });
    expect(receivedRun(1, received, 100)).toBeUndefined();
    expect(receivedRun(5, received, 100)).toBeUndefined();
  });
});

describe('planBatches (invariant 1)', () => {
  const limits = { maxBatchEvents: 2, maxMessageBytes: 100_000 };
  it('splits a page into adjacent batches of at most maxBatchEvents', () => {
    const records = [1, 2, 3, 4, 5].map((p) => record(p, 'me', p));
    const batches = planBatches(0, records, { ownReplica: 'me', skip: () => false, limits });
    expect(batches.map((b) => [b.from, b.to, b.events.length])).toEqual([
      [0, 2, 2],
      [2, 4, 2],
      [4, 5, 1],
    ]);
    expect(batches.map((b) => b.ownSeq)).toEqual([2, 4, 5]);
    expect(batches[0]!.toId).toBe('id2');
  });
  it('covers skipped records by range without carrying them', () => {
    const records = [record(1, 'peer', 1), record(2, 'me', 1), record(3, 'peer', 2)];
    const peer = { replica: 'peer', seq: 5 };
    const batches = planBatches(0, records, {
      ownReplica: 'me',
      skip: (r) => peerHolds(r.event, peer),
      limits,
    });
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ from: 0, to: 3, toId: 'id3' });
    expect(batches[0]!.events.map((e) => e.seq)).toEqual([1]);
  });
  it('sizes each carried event once, in the order the batches carry them', () => {
    const records = [1, 2, 3, 4, 5].map((p) => record(p, p % 2 === 0 ? 'peer' : 'me', p));
    const sized: unknown[] = [];
    const batches = planBatches(0, records, {
      ownReplica: 'me',
      skip: (r) => r.event.replica === 'peer',
      limits: { maxBatchEvents: 2, maxMessageBytes: 100_000 },
      sizeOf: (event) => {
        sized.push(event);
        return 10;
      },
    });
    expect(sized).toEqual(batches.flatMap((b) => b.events));
  });
  it('cuts batches by bytes and leaves out, by range only, an event larger than a message (invariant 6)', () => {
    const small = { maxBatchEvents: 100, maxMessageBytes: 1500 };
    const records = [record(1, 'me', 1, 500), record(2, 'me', 2, 500), record(3, 'me', 3, 5000)];
    const batches = planBatches(0, records, { ownReplica: 'me', skip: () => false, limits: small });
    expect(batches.map((b) => [b.from, b.to, b.events.length, b.leftOut.length])).toEqual([
      [0, 1, 1, 0],
      [1, 3, 1, 1],
    ]);
    expect(batches[1]!.leftOut[0]).toMatchObject({ pos: 3, reason: { kind: 'too-large' } });
    expect(batches[1]!.ownSeq).toBe(3);
  });
});

describe('classifyBatch (invariant 2)', () => {
  it('applies the batch that starts at the checkpoint and moves it to `to`', () => {
    const d = classifyBatch({ pos: 4, started: true }, { from: 4, to: 8 });
    expect(d).toEqual({ kind: 'apply', to: 8, restart: false });
    expect(afterBatch({ pos: 4, started: true }, d)).toEqual({ pos: 8, started: true });
  });
  it('refuses a batch past the checkpoint as a gap', () => {
    expect(classifyBatch({ pos: 4, started: true }, { from: 6, to: 8 })).toEqual({
      kind: 'gap',
      expected: 4,
    });
    expect(afterBatch({ pos: 4, started: true }, { kind: 'gap', expected: 4 })).toEqual({
      pos: 4,
      started: true,
    });
  });
  it('treats a batch at or below the checkpoint as a duplicate', () => {
    expect(classifyBatch({ pos: 8, started: true }, { from: 4, to: 8 })).toEqual({
      kind: 'duplicate',
    });
  });
  it('applies an overlapping batch (ingest dedupes)', () => {
    expect(classifyBatch({ pos: 6, started: true }, { from: 4, to: 8 })).toMatchObject({
      kind: 'apply',
      to: 8,
    });
  });
  it('takes a first batch from 0 as the sender restarting, and only the first', () => {
    expect(classifyBatch({ pos: 6, started: false }, { from: 0, to: 2 })).toEqual({
      kind: 'apply',
      to: 2,
      restart: true,
    });
    expect(classifyBatch({ pos: 6, started: true }, { from: 0, to: 2 })).toEqual({
      kind: 'duplicate',
    });
  });
});

describe('flow window (invariants 4, 5)', () => {
  const limits = { maxInFlightBatches: 2, maxInFlightBytes: 100 };
  it('always lets one batch through, then stops at the batch or byte limit', () => {
    expect(windowAllows(EMPTY_WINDOW, limits)).toBe(true);
    const big = windowPush(EMPTY_WINDOW, { to: 1, bytes: 500, ownSeq: 0 });
    expect(windowAllows(big, limits)).toBe(false);
    const one = windowPush(EMPTY_WINDOW, { to: 1, bytes: 10, ownSeq: 0 });
    expect(windowAllows(one, limits)).toBe(true);
    expect(windowAllows(one, limits, 95)).toBe(false);
    expect(windowAllows(windowPush(one, { to: 2, bytes: 10, ownSeq: 0 }), limits)).toBe(false);
  });
  it('frees batches up to the ack, never past it', () => {
    let w = windowPush(EMPTY_WINDOW, { to: 2, bytes: 10, ownSeq: 1 });
    w = windowPush(w, { to: 4, bytes: 20, ownSeq: 3 });
    const d = classifyAck(w, { ackedPos: 0, sentPos: 4 }, 2);
    expect(d).toEqual({
      kind: 'advance',
      window: { batches: [{ to: 4, bytes: 20, ownSeq: 3 }], bytes: 20 },
      ackedPos: 2,
      ownSeq: 1,
    });
    expect(classifyAck(EMPTY_WINDOW, { ackedPos: 4, sentPos: 4 }, 3)).toEqual({
      kind: 'duplicate',
    });
    expect(classifyAck(w, { ackedPos: 0, sentPos: 4 }, 9)).toEqual({ kind: 'invalid', sentPos: 4 });
  });
  it('frees an empty batch acknowledged at its own position', () => {
    const w = windowPush(EMPTY_WINDOW, { to: 3, bytes: 0, ownSeq: 0 });
    expect(classifyAck(w, { ackedPos: 3, sentPos: 3 }, 3)).toMatchObject({
      kind: 'advance',
      window: EMPTY_WINDOW,
    });
  });
});

describe('clockCorrection', () => {
  it('ignores differences under the threshold and corrects larger ones', () => {
    expect(clockCorrection(1_000_000 + 30_000, 1_000_000, 0)).toBeUndefined();
    expect(clockCorrection(1_000_000 + 3_600_000, 1_000_000, 0)).toBe(3_600_000);
    expect(clockCorrection(1_000_000, 1_000_000 + 120_000, 500)).toBe(500 - 120_000);
  });
});
