import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.ts';
import type { JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { decodeHlc } from '../../src/core/hlc.ts';
import { validateRemoteEvent } from '../../src/core/remote.ts';
import { DEFAULT_EVENT_LIMITS } from '../../src/core/validate.ts';
import { appendFresh, DAY_MS, newEvent, replicaA, replicaB, T0 } from './fixtures.ts';

/** What a peer sends: a stored event after a trip through JSON. */
function wire(event: StoredEventRecord): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
}

function rejection(value: unknown): ValidationError {
  try {
    validateRemoteEvent(value, 'events[0]');
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('VALIDATION');
    return error as ValidationError;
  }
  throw new Error('expected validateRemoteEvent to throw');
}

const [plain, withMeta, upcastable] = appendFresh(replicaA, 'orders-1', [
  newEvent('e1', { sku: 'a', qty: 2 }),
  newEvent('e2', null, { meta: { user: 'ann', tags: ['x'] } }),
  newEvent('e3', [1, 2, 3], { schema: 2 }),
]) as [StoredEventRecord, StoredEventRecord, StoredEventRecord];

describe('validateRemoteEvent', () => {
  it('accepts events built by planLocalAppend, as they arrive over JSON', () => {
    for (const event of [plain, withMeta, upcastable]) {
      expect(validateRemoteEvent(wire(event), 'events[0]')).toEqual(event);
    }
  });

  it('accepts random local events from any replica, clock and payload', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 100 * DAY_MS }),
        fc.constantFrom(replicaA, replicaB),
        fc.integer({ min: 1, max: 5 }),
        (payloads, offset, replica, schema) => {
          const stored = appendFresh(
            replica,
            'stream',
            payloads.map((data, i) => newEvent(`id-${i}`, data as JsonValue, { schema })),
            { now: T0 + offset },
          );
          for (const event of stored) {
            expect(validateRemoteEvent(wire(event), 'e')).toEqual(wire(event));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects unknown fields, naming them', () => {
    expect(rejection({ ...wire(plain), pos: 3 }).path).toBe('events[0].pos');
    expect(rejection({ ...wire(plain), extra: null }).path).toBe('events[0].extra');
    const withProto = JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(plain).slice(1)}`);
    expect(rejection(withProto).path).toBe('events[0].__proto__');
  });

  it('rejects a cursor that does not match hlc, replica and seq', () => {
    const other = { ...wire(plain), cursor: withMeta.cursor };
    expect(rejection(other).path).toBe('events[0].cursor');
    expect(rejection({ ...wire(plain), replica: replicaB }).path).toBe('events[0].cursor');
    expect(rejection({ ...wire(plain), seq: 2 }).path).toBe('events[0].cursor');
    expect(rejection({ ...wire(plain), cursor: 'garbage' }).path).toBe('events[0].cursor');
  });

  it('derives cursor and time when the wire leaves them out', () => {
    const { cursor: _cursor, time: _time, ...bare } = wire(plain);
    const derived = validateRemoteEvent(bare, 'events[0]');
    expect(derived.cursor).toBe(plain.cursor);
    expect(derived.time).toBe(plain.time);
  });

  it('rejects a time that does not match the HLC wall time', () => {
    expect(decodeHlc(plain.hlc).wall).toBe(plain.time);
    expect(rejection({ ...wire(plain), time: plain.time + 1 }).path).toBe('events[0].time');
    expect(rejection({ ...wire(plain), time: String(plain.time) }).path).toBe('events[0].time');
  });

  it.each(['', 'REPLICA', 'replica.one', 'replica-one', 'r'.repeat(65), 42, null])(
    'rejects the replica id %s',
    (replica) => {
      expect(rejection({ ...wire(plain), replica }).path).toBe('events[0].replica');
    },
  );

  it('rejects a bad id, stream, version, seq or hlc', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ id: undefined }, 'events[0].id'],
      [{ id: '' }, 'events[0].id'],
      [{ stream: '' }, 'events[0].stream'],
      [{ stream: 's'.repeat(513) }, 'events[0].stream'],
      [{ stream: 7 }, 'events[0].stream'],
      [{ version: 0 }, 'events[0].version'],
      [{ version: 1.5 }, 'events[0].version'],
      [{ version: '1' }, 'events[0].version'],
      [{ seq: 0 }, 'events[0].seq'],
      [{ seq: -1 }, 'events[0].seq'],
      [{ hlc: 'yesterday' }, 'events[0].hlc'],
      [{ hlc: T0 }, 'events[0].hlc'],
      [{ type: '' }, 'events[0].type'],
      [{ data: Number.NaN }, 'events[0].data'],
      [{ meta: [] }, 'events[0].meta'],
    ];
    for (const [patch, path] of cases) {
      const event = { ...wire(plain), ...patch };
      if (patch.id === undefined && 'id' in patch) delete event.id;
      expect(rejection(event).path).toBe(path);
    }
    expect(rejection(null).path).toBe('events[0]');
    expect(rejection([wire(plain)]).path).toBe('events[0]');
  });

  it('applies the size limit it is given', () => {
    const limits = { ...DEFAULT_EVENT_LIMITS, maxEventBytes: 8 };
    expect(() => validateRemoteEvent(wire(plain), 'e', limits)).toThrow(ValidationError);
  });

  it('keeps __proto__ keys in data and meta as own data, in a copy of the received value', () => {
    const received = wire(plain);
    received.data = JSON.parse('{"__proto__":{"isAdmin":true},"constructor":1}');
    received.meta = JSON.parse('{"__proto__":{"isAdmin":true}}');
    const record = validateRemoteEvent(received, 'e');
    const data = record.data as Record<string, JsonValue>;
    expect(data).not.toBe(received.data);
    expect(Object.hasOwn(data, '__proto__')).toBe(true);
    expect(Object.hasOwn(data, 'constructor')).toBe(true);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(Object.hasOwn(record.meta!, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('drops a schema of 1, which is the default', () => {
    const record = validateRemoteEvent({ ...wire(plain), schema: 1 }, 'e');
    expect('schema' in record).toBe(false);
    expect(validateRemoteEvent(wire(upcastable), 'e').schema).toBe(2);
  });
});
