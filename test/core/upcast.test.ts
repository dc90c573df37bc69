import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.ts';
import type { StoredEvent } from '../../src/core/events.ts';
import { makeUpcast, type Upcaster } from '../../src/core/upcast.ts';
import { appendFresh, newEvent, replicaA } from './fixtures.ts';

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

// v1 { name }  →  v2 { first, last }  →  v3 { person: { first, last } }
const v1to2: Upcaster = {
  type: 'user-registered',
  fromSchema: 1,
  up: (data) => {
    const [first = '', last = ''] = String((data as { name: string }).name).split(' ');
    return { first, last };
  },
};
const v2to3: Upcaster = {
  type: 'user-registered',
  fromSchema: 2,
  up: (data) => ({ person: data }),
};

const [v1, v2, v3, other] = appendFresh(replicaA, 'users', [
  newEvent('u1', { name: 'Ada Lovelace' }, { type: 'user-registered' }),
  newEvent('u2', { first: 'Alan', last: 'Turing' }, { type: 'user-registered', schema: 2 }),
  newEvent(
    'u3',
    { person: { first: 'Grace', last: 'Hopper' } },
    { type: 'user-registered', schema: 3 },
  ),
  newEvent('o1', { name: 'Not A User' }, { type: 'order-placed' }),
]).map((e): StoredEvent => deepFreeze(e)) as [StoredEvent, StoredEvent, StoredEvent, StoredEvent];

describe('makeUpcast', () => {
  const upcast = makeUpcast([v2to3, v1to2]); // registration order does not matter

  it('upcast invariant 1: lifts a v1 event through v2 to v3 and reports schema 3', () => {
    expect(v1.schema).toBeUndefined();
    const lifted = upcast(v1);
    expect(lifted.data).toEqual({ person: { first: 'Ada', last: 'Lovelace' } });
    expect(lifted.schema).toBe(3);
    const { data: _d, schema: _s, ...rest } = lifted;
    const { data: _d1, schema: _s1, ...original } = v1;
    expect(rest).toEqual(original);
  });

  it('upcast invariant 1: starts a v2 event at the v2 upcaster', () => {
    const lifted = upcast(v2);
    expect(lifted.data).toEqual({ person: { first: 'Alan', last: 'Turing' } });
    expect(lifted.schema).toBe(3);
  });

  it('upcast invariant 1: hands back a current event, and events of other types, unchanged', () => {
    expect(upcast(v3)).toBe(v3);
    expect(upcast(other)).toBe(other);
  });

  it('upcast invariant 2: never changes the stored copy (frozen here, so a write would throw)', () => {
    const before = structuredClone(v1);
    upcast(v1);
    upcast(v1);
    expect(v1).toEqual(before);
  });

  it('passes each upcaster the event as lifted so far', () => {
    const seen: (number | undefined)[] = [];
    const spy = (fromSchema: number): Upcaster => ({
      type: 'user-registered',
      fromSchema,
      up: (data, event) => {
        seen.push(event.schema);
        expect(event.data).toBe(data);
        return data;
      },
    });
    makeUpcast([spy(1), spy(2)])(v1);
    expect(seen).toEqual([undefined, 2]);
  });

  it('upcast invariant 1: stops at the first gap in the chain', () => {
    const gap = makeUpcast([
      v1to2,
      { type: 'user-registered', fromSchema: 3, up: () => 'unreachable' },
    ]);
    expect(gap(v1)).toMatchObject({ schema: 2, data: { first: 'Ada', last: 'Lovelace' } });
  });

  it('upcast invariant 1: a chain of n upcasters lifts schema s to n + 1 for every s <= n', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 14 }), (n, s) => {
        const chain: Upcaster[] = Array.from({ length: n }, (_, i) => ({
          type: 't',
          fromSchema: i + 1,
          up: (data) => [...(data as number[]), i + 1],
        }));
        const event: StoredEvent = { ...v1, type: 't', data: [], schema: s };
        const lifted = makeUpcast(chain)(event);
        expect(lifted.schema).toBe(Math.max(s, n + 1));
        expect(lifted.data).toEqual(
          Array.from({ length: Math.max(0, n + 1 - s) }, (_, i) => s + i),
        );
        expect(event.data).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('is the identity when there are no upcasters', () => {
    expect(makeUpcast([])(v1)).toBe(v1);
  });

  it('rejects a second upcaster for the same type and schema, naming it', () => {
    try {
      makeUpcast([v1to2, v2to3, { ...v1to2, up: (d) => d }]);
      expect.unreachable('makeUpcast should reject a duplicate');
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION', path: 'upcasters[2]' });
    }
    // the same schema for another type is fine
    expect(() => makeUpcast([v1to2, { ...v1to2, type: 'order-placed' }])).not.toThrow();
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects fromSchema %s', (fromSchema) => {
    expect(() => makeUpcast([{ ...v1to2, fromSchema }])).toThrow(ValidationError);
  });

  it('rejects an upcaster without a type', () => {
    const noType = { fromSchema: 1, up: (d: unknown) => d } as unknown as Upcaster;
    expect(() => makeUpcast([noType])).toThrow(ValidationError);
  });
});
