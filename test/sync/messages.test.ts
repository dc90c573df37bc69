/** The wire form of events (event-codec.ts): columns that encodeMessage writes, parseMessage checks. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { HLC_COUNTER_MAX } from '../../src/core/hlc.ts';
import { ReplicaId } from '../../src/core/ids.ts';
import { NO_HEAD } from '../../src/core/strict.ts';
import { memoryStorage, openStore } from '../../src/index.ts';
import { decodeEventBatch, encodeEventBatch, wireSize } from '../../src/sync/event-codec.ts';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS, type EventsMessage } from '../../src/sync/protocol.ts';
import { arbReplicaId, replicaA, replicaB, T0 } from '../core/fixtures.ts';
import { type StoredEventFields, storedEvent } from '../fixtures/events.ts';

function stored(
  fields: StoredEventFields & { stream: string; version: number; counter: number },
): StoredEventRecord {
  return storedEvent({ ...fields, type: fields.type ?? 'happened' });
}

// Through JSON once: JSON has no -0 (it arrives as 0), which is JSON's doing, not the codec's.
const arbJson: fc.Arbitrary<JsonValue> = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) => JSON.parse(JSON.stringify(v)) as JsonValue);

const arbEvent: fc.Arbitrary<StoredEventRecord> = fc
  .record({
    replica: fc.oneof(fc.constant(replicaA), fc.constant(replicaB), arbReplicaId),
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    stream: fc.oneof(
      fc.constantFrom('a', 'b', 'ü-stream'),
      fc.string({ minLength: 1, maxLength: 8 }),
    ),
    version: fc.integer({ min: 1, max: 2 ** 40 }),
    wall: fc.integer({ min: 0, max: 2 * T0 }),
    counter: fc.integer({ min: 0, max: HLC_COUNTER_MAX }),
    type: fc.constantFrom('added', 'moved', 'x'.repeat(40)),
    id: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
    data: arbJson,
    meta: fc.option(fc.dictionary(fc.string(), arbJson, { maxKeys: 3 }), { nil: undefined }),
    // Stored events leave schema 1 out (validate.ts).
    schema: fc.option(fc.integer({ min: 2, max: 5 }), { nil: undefined }),
  })
  .map((f) => stored(f));

/** Runs of an app's appends: consecutive seq, version and counter, as one replica writes them. */
function appendRun(replica: ReplicaId, stream: string, n: number, first = 1): StoredEventRecord[] {
  return Array.from({ length: n }, (_, i) =>
    stored({
      replica,
      seq: first + i,
      stream,
      version: first + i,
      wall: T0,
      counter: i,
      type: i % 3 === 0 ? 'added' : 'moved',
      data: { card: `card-${i}`, column: 'todo' },
    }),
  );
}

function roundTrip(events: StoredEventRecord[]): StoredEventRecord[] {
  return decodeEventBatch(JSON.parse(encodeEventBatch(events)));
}

describe('events on the wire (event-codec.ts)', () => {
  it('invariant 1: decode(encode(events)) gives the events back, derived cursor and time included', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { maxLength: 40 }), (events) => {
        expect(roundTrip(events)).toEqual(events);
      }),
      { numRuns: 300 },
    );
  });

  it('says what a run of appends shares once: a few bytes per event besides its data', () => {
    const events = [...appendRun(replicaA, 'board-1', 300), ...appendRun(replicaB, 'board-2', 200)];
    const text = encodeEventBatch(events);
    const dataBytes = events.reduce((n, e) => n + JSON.stringify(e.data).length + 1, 0);
    expect((text.length - dataBytes) / events.length).toBeLessThan(3);
    expect(JSON.parse(text).runs).toHaveLength(2);
    expect(roundTrip(events)).toEqual(events);
  });

  it('keeps ids that are not canonical, meta and schema, and data that looks like envelope fields', () => {
    const events = [
      stored({
        replica: replicaA,
        seq: 1,
        stream: 's',
        version: 1,
        wall: T0,
        counter: 0,
        id: 'mine',
      }),
      stored({
        replica: replicaA,
        seq: 2,
        stream: 's',
        version: 2,
        wall: T0,
        counter: 1,
        data: { time: 5, cursor: 'mine', id: 'x' },
        meta: { cursor: 1 },
        schema: 3,
      }),
    ];
    const wire = JSON.parse(encodeEventBatch(events));
    expect(wire.ids).toEqual([[0, 'mine']]);
    expect(wire.meta).toEqual([[1, { cursor: 1 }]]);
    expect(wire.schema).toEqual([[1, 3]]);
    expect(roundTrip(events)).toEqual(events);
  });

  it('wireSize never underestimates what an event adds to a batch (planBatches relies on it)', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { minLength: 1, maxLength: 30 }), (events) => {
        const text = encodeEventBatch(events);
        const estimate = events.reduce((n, e) => n + wireSize(e, JSON.stringify(e.data)), 0);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(estimate + 128);
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips through a store: what encodeMessage writes, parseMessage rebuilds', async () => {
    const store = await openStore({ name: 'w', storage: memoryStorage() });
    const events = await store.append('s', [
      { type: 't', data: { time: 5, cursor: 'mine', nested: { time: 'x' } } },
      { type: 't', data: null, meta: { cursor: 1 } },
      { type: 'u', data: [1, 2], id: 'given-id' },
    ]);
    const message: EventsMessage = { type: 'events', from: 0, to: 3, toId: events[2]!.id, events };
    const parsed = parseMessage(encodeMessage(message), DEFAULT_SYNC_LIMITS);
    expect(parsed.ok).toBe(true);
    if (parsed.ok && parsed.message.type === 'events') {
      expect(parsed.message.events).toEqual(events);
    }
    await store.close();
  });
});

describe('invariant 2: a bad batch is refused with a code, never thrown', () => {
  const good = appendRun(replicaA, 's', 3);
  const wire = () => JSON.parse(encodeEventBatch(good)) as Record<string, unknown>;
  const parse = (events: unknown) =>
    parseMessage(
      JSON.stringify({ type: 'events', from: 0, to: 3, toId: good[2]!.id, events }),
      DEFAULT_SYNC_LIMITS,
    );

  it.each([
    ['an array of event objects (protocol 1)', () => good],
    ['no data', () => ({ ...wire(), data: undefined })],
    ['a run past the events', () => ({ ...wire(), runs: [[0, 0, 1, 1, T0, 0, 4]] })],
    ['runs short of the events', () => ({ ...wire(), runs: [[0, 0, 1, 1, T0, 0, 2]] })],
    ['a replica index out of range', () => ({ ...wire(), runs: [[1, 0, 1, 1, T0, 0, 3]] })],
    ['a short run row', () => ({ ...wire(), runs: [[0, 0, 1, 1, T0, 3]] })],
    ['a type index out of range', () => ({ ...wire(), typeOf: '009' })],
    ['a typeOf of the wrong length', () => ({ ...wire(), typeOf: '01' })],
    [
      'ids out of order',
      () => ({
        ...wire(),
        ids: [
          [2, 'a'],
          [1, 'b'],
        ],
      }),
    ],
    ['an id index past the batch', () => ({ ...wire(), ids: [[3, 'a']] })],
    ['meta that is not an object', () => ({ ...wire(), meta: [[0, [1]]] })],
    ['an id with a lone surrogate', () => ({ ...wire(), ids: [[0, 'id\udc00']] })],
    ['schema 1 spelled out or 0', () => ({ ...wire(), schema: [[0, 0]] })],
  ])('%s → PROTOCOL', (_name, events) => {
    expect(parse(events())).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });

  it.each([
    ['a replica that is not a replica id', () => ({ ...wire(), replicas: ['Not Valid'] })],
    ['an empty stream', () => ({ ...wire(), streams: [''] })],
    ['a stream with a lone surrogate', () => ({ ...wire(), streams: ['s\ud800'] })],
    ['a type longer than 256', () => ({ ...wire(), types: ['x'.repeat(257), 'moved'] })],
    ['seq 0', () => ({ ...wire(), runs: [[0, 0, 1, 0, T0, 0, 3]] })],
    ['version -1', () => ({ ...wire(), runs: [[0, 0, -1, 1, T0, 0, 3]] })],
    [
      'a wall time that does not fit an HLC',
      () => ({ ...wire(), runs: [[0, 0, 1, 1, 36 ** 11, 0, 3]] }),
    ],
    [
      'a counter run that overflows',
      () => ({ ...wire(), runs: [[0, 0, 1, 1, T0, HLC_COUNTER_MAX - 1, 3]] }),
    ],
  ])('%s → VALIDATION', (_name, events) => {
    expect(parse(events())).toMatchObject({ ok: false, code: 'VALIDATION' });
  });

  it('names the event whose data is nested too deep', () => {
    let deep: JsonValue = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    const events = [...good.slice(0, 2), { ...good[2]!, data: deep }];
    const result = parseMessage(
      encodeMessage({ type: 'events', from: 0, to: 3, toId: good[2]!.id, events }),
      DEFAULT_SYNC_LIMITS,
    );
    expect(result).toMatchObject({ ok: false, code: 'VALIDATION', eventId: good[2]!.id });
  });

  it('keeps __proto__ keys of data and meta as plain data', () => {
    const text = encodeMessage({
      type: 'events',
      from: 0,
      to: 1,
      toId: good[0]!.id,
      events: [{ ...good[0]!, data: null, meta: { marker: true } }],
    })
      .replace('"data":[null]', '"data":[{"__proto__":{"polluted":true}}]')
      .replace('{"marker":true}', '{"__proto__":{"isAdmin":true}}');
    const result = parseMessage(text, DEFAULT_SYNC_LIMITS);
    expect(result.ok).toBe(true);
    if (result.ok && result.message.type === 'events') {
      const event = result.message.events[0]!;
      expect(Object.hasOwn(event.data as object, '__proto__')).toBe(true);
      expect(Object.getPrototypeOf(event.data)).toBe(Object.prototype);
      expect(Object.hasOwn(event.meta!, '__proto__')).toBe(true);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});

describe('rejected', () => {
  const rejectedWith = (head: unknown) =>
    parseMessage(
      JSON.stringify({
        type: 'rejected',
        events: [{ id: 'e', replica: 'r', seq: 2, stream: 's', version: 2, reason: 'stale', head }],
      }),
      DEFAULT_SYNC_LIMITS,
    );

  it('reads a head, or NO_HEAD for a stream the authority holds nothing of (core/strict.ts 10)', () => {
    expect(rejectedWith({ version: 3, id: 'h' })).toMatchObject({
      ok: true,
      message: { events: [{ head: { version: 3, id: 'h' } }] },
    });
    expect(rejectedWith(NO_HEAD)).toMatchObject({
      ok: true,
      message: { events: [{ head: NO_HEAD }] },
    });
  });

  it.each([
    ['version 0 with an id', { version: 0, id: 'h' }],
    ['an empty id at a version', { version: 2, id: '' }],
    ['a negative version', { version: -1, id: '' }],
  ])('refuses a head with %s → PROTOCOL', (_name, head) => {
    expect(rejectedWith(head)).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });
});

describe('ReplicaId in tables', () => {
  it('accepts the replica ids the store makes', () => {
    const replica = ReplicaId.make();
    expect(roundTrip(appendRun(replica, 's', 2))[1]!.replica).toBe(replica);
  });
});
