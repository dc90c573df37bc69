import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.ts';
import type { JsonValue } from '../../src/core/events.ts';
import { cloneJson } from '../../src/core/json.ts';
import {
  DEFAULT_EVENT_LIMITS,
  validateAppend,
  validateExpectedVersion,
  validateNewEvent,
  validateStream,
} from '../../src/core/validate.ts';

/** The ValidationError that `fn` throws; fails the test if it throws nothing or something else. */
function validationErrorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    const v = error as ValidationError;
    expect(v.code).toBe('VALIDATION');
    expect(v.details).toEqual({ path: v.path, reason: v.reason });
    return v;
  }
  throw new Error('expected a ValidationError');
}

const ok = { type: 'ok', data: { fine: true } };

class Money {
  readonly cents: number;

  constructor(cents: number) {
    this.cents = cents;
  }
}

describe('validateAppend: values that are not JSON', () => {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  // biome-ignore lint/suspicious/noSparseArray: an array hole is the point of this case
  const holey = [1, , 3];

  const excluded: [string, unknown][] = [
    ['undefined', undefined],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['a function', () => 0],
    ['a symbol', Symbol('x')],
    ['a bigint', 1n],
    ['a cycle', cyclic],
    ['a Date', new Date(0)],
    ['a Map', new Map([[1, 2]])],
    ['a class instance', new Money(100)],
  ];

  it.each(excluded)(
    'rejects %s inside an array in data, naming events[1].data.items[0]',
    (_n, bad) => {
      const error = validationErrorOf(() =>
        validateAppend('orders-1', [ok, { type: 'added', data: { items: [bad] } }], 'any'),
      );
      // a cycle is found one level down, where the object is met again
      expect(error.path).toBe(
        bad === cyclic ? 'events[1].data.items[0].self' : 'events[1].data.items[0]',
      );
    },
  );

  it.each(excluded)('rejects %s in a nested meta property', (_n, bad) => {
    const error = validationErrorOf(() =>
      validateAppend('s', [{ type: 't', data: null, meta: { trace: { span: bad } } }], 'any'),
    );
    expect(error.path).toBe(
      bad === cyclic ? 'events[0].meta.trace.span.self' : 'events[0].meta.trace.span',
    );
  });

  it.each(excluded)('rejects %s as the whole data of a single event', (_n, bad) => {
    const error = validationErrorOf(() => validateAppend('s', { type: 't', data: bad }, 'any'));
    expect(error.path).toBe(bad === cyclic ? 'event.data.self' : 'event.data');
  });

  it('rejects undefined in a nested property and an array hole, naming the path', () => {
    expect(
      validationErrorOf(() =>
        validateAppend('s', [ok, ok, { type: 't', data: { a: { b: undefined } } }], 'any'),
      ).path,
    ).toBe('events[2].data.a.b');
    expect(
      validationErrorOf(() => validateAppend('s', [{ type: 't', data: { items: holey } }], 'any'))
        .path,
    ).toBe('events[0].data.items[1]');
  });

  it('rejects a bad value wherever it is nested, naming its exact path', () => {
    const arbSegment = fc.oneof(
      fc.constantFrom('a', 'items', 'x_1').map((key) => ({ key })),
      fc.integer({ min: 0, max: 3 }).map((index) => ({ index })),
    );
    fc.assert(
      fc.property(
        fc.array(arbSegment, { maxLength: 8 }),
        fc.constantFrom<unknown>(undefined, Number.NaN, () => 0, 2n, new Date(0), new Map()),
        fc.integer({ min: 0, max: 3 }),
        (segments, bad, position) => {
          // build the value from the inside out; array siblings before the bad one are valid
          let value: unknown = bad;
          for (const segment of [...segments].reverse()) {
            value =
              'key' in segment
                ? { ok: 1, [segment.key]: value }
                : [...Array.from({ length: segment.index }, () => 'fine'), value];
          }
          const events = [
            ...Array.from({ length: position }, () => ok),
            { type: 't', data: value },
          ];
          const expected = `events[${position}].data${segments
            .map((s) => ('key' in s ? `.${s.key}` : `[${s.index}]`))
            .join('')}`;
          expect(validationErrorOf(() => validateAppend('s', events, 'any')).path).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects data nested deeper than maxDepth', () => {
    let deep: JsonValue = 0;
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(
      validationErrorOf(() => validateAppend('s', { type: 't', data: deep }, 'any')).reason,
    ).toMatch(/deeper/);
  });
});

describe('validateAppend: fields', () => {
  it('accepts a type of 256 characters and rejects an empty, missing, non-string or longer one', () => {
    expect(
      validateAppend('s', { type: 't'.repeat(256), data: 1 }, 'any').events[0]?.type,
    ).toHaveLength(256);
    for (const type of ['', 't'.repeat(257), 7, undefined, null]) {
      const error = validationErrorOf(() => validateAppend('s', [ok, { type, data: 1 }], 'any'));
      expect(error.path).toBe('events[1].type');
    }
  });

  it('accepts a stream of 512 characters and rejects an empty, non-string or longer one', () => {
    expect(validateAppend('s'.repeat(512), ok, 'any').stream).toHaveLength(512);
    expect(validateStream('orders-1')).toBe('orders-1');
    for (const stream of ['', 's'.repeat(513), 1, null, undefined, ['s']]) {
      expect(validationErrorOf(() => validateAppend(stream, ok, 'any')).path).toBe('stream');
    }
  });

  it('refuses ids, streams and types with a lone surrogate (storage keys are UTF-8), accepts emoji', () => {
    expect(validateStream('cart-😀')).toBe('cart-😀');
    for (const lone of ['a\ud800', '\udc00b', 'x\ud800\ud800y']) {
      expect(validationErrorOf(() => validateStream(lone)).reason).toContain('well-formed');
      expect(
        validationErrorOf(() => validateAppend('s', { type: lone, data: 1 }, 'any')).path,
      ).toBe('event.type');
      expect(
        validationErrorOf(() => validateAppend('s', { type: 't', data: 1, id: lone }, 'any')).path,
      ).toBe('event.id');
    }
    expect(
      validateAppend('s', { type: 't', data: { text: 'a\ud800' } }, 'any').events,
    ).toHaveLength(1);
  });

  it('rejects an event over maxEventBytes, counting data and meta in UTF-8 bytes', () => {
    const max = DEFAULT_EVENT_LIMITS.maxEventBytes;
    expect(max).toBe(512 * 1024);
    // JSON text of a string is the string plus two quotes
    const atLimit = { type: 't', data: 'x'.repeat(max - 2) };
    expect(() => validateAppend('s', [atLimit], 'any')).not.toThrow();
    const over = { type: 't', data: 'x'.repeat(max - 1) };
    const error = validationErrorOf(() => validateAppend('s', [ok, over], 'any'));
    expect(error.path).toBe('events[1]');
    expect(error.reason).toMatch(/over the limit/);
    // meta counts too
    const withMeta = { type: 't', data: 'x'.repeat(max - 20), meta: { pad: 'y'.repeat(20) } };
    expect(validationErrorOf(() => validateAppend('s', [withMeta], 'any')).path).toBe('events[0]');
  });

  it('takes maxEventBytes from the limits it is given', () => {
    const limits = { ...DEFAULT_EVENT_LIMITS, maxEventBytes: 10 };
    expect(() => validateAppend('s', { type: 't', data: '12345678' }, 'any', limits)).not.toThrow();
    expect(
      validationErrorOf(() => validateAppend('s', { type: 't', data: '123456789' }, 'any', limits))
        .path,
    ).toBe('event');
    // '€' is one character and three bytes: "€€€" is 11 bytes of JSON
    expect(() => validateAppend('s', { type: 't', data: '€€€' }, 'any', limits)).toThrow(
      ValidationError,
    );
  });

  it('rejects an empty batch and a batch over maxBatchEvents', () => {
    expect(validationErrorOf(() => validateAppend('s', [], 'any')).path).toBe('events');
    const limits = { ...DEFAULT_EVENT_LIMITS, maxBatchEvents: 3 };
    expect(() => validateAppend('s', [ok, ok, ok], 'any', limits)).not.toThrow();
    expect(validationErrorOf(() => validateAppend('s', [ok, ok, ok, ok], 'any', limits)).path).toBe(
      'events',
    );
  });

  it('accepts undefined, any, none and non-negative integers as expectedVersion', () => {
    expect(validateExpectedVersion(undefined)).toBe('any');
    expect(validateExpectedVersion('any')).toBe('any');
    expect(validateExpectedVersion('none')).toBe('none');
    expect(validateExpectedVersion(0)).toBe(0);
    expect(validateAppend('s', ok, 42).expectedVersion).toBe(42);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', 'latest', null, true, {}])(
    'rejects expectedVersion %s',
    (expectedVersion) => {
      expect(validationErrorOf(() => validateAppend('s', ok, expectedVersion)).path).toBe(
        'expectedVersion',
      );
    },
  );

  it('rejects a bad id, schema, missing data and a meta that is not an object', () => {
    const cases: [unknown, string][] = [
      [{ type: 't', data: 1, id: '' }, 'events[0].id'],
      [{ type: 't', data: 1, id: 'i'.repeat(129) }, 'events[0].id'],
      [{ type: 't', data: 1, id: 12 }, 'events[0].id'],
      [{ type: 't', data: 1, schema: 0 }, 'events[0].schema'],
      [{ type: 't', data: 1, schema: 1.5 }, 'events[0].schema'],
      [{ type: 't', data: 1, schema: '2' }, 'events[0].schema'],
      [{ type: 't' }, 'events[0].data'],
      [{ type: 't', data: 1, meta: [] }, 'events[0].meta'],
      [{ type: 't', data: 1, meta: 'm' }, 'events[0].meta'],
      [{ type: 't', data: 1, meta: null }, 'events[0].meta'],
      [{ type: 't', data: 1, meta: new Date(0) }, 'events[0].meta'],
      [null, 'events[0]'],
      ['event', 'events[0]'],
      [[ok], 'events[0]'],
    ];
    for (const [event, path] of cases) {
      expect(validationErrorOf(() => validateAppend('s', [event], 'any')).path).toBe(path);
    }
  });

  it('defaults schema to 1 and keeps id, meta and null data', () => {
    expect(validateNewEvent({ type: 't', data: null }, 'event')).toEqual({
      type: 't',
      data: null,
      schema: 1,
    });
    expect(
      validateNewEvent({ type: 't', data: [1], id: 'e1', meta: { by: 'me' }, schema: 3 }, 'event'),
    ).toEqual({ type: 't', data: [1], id: 'e1', meta: { by: 'me' }, schema: 3 });
  });
});

describe('validateAppend: __proto__ and constructor keys', () => {
  it('accepts them as plain data, and cloneJson keeps them as own properties without pollution', () => {
    const event: unknown = JSON.parse(
      '{"type":"t","data":{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}}},"meta":{"__proto__":{"x":1}}}',
    );
    const { events } = validateAppend('s', [event], 'any');
    const data = events[0]!.data as Record<string, JsonValue>;
    expect(Object.hasOwn(data, '__proto__')).toBe(true);
    expect(Object.hasOwn(data, 'constructor')).toBe(true);
    const copy = cloneJson(data);
    expect(Object.keys(copy)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).toEqual({ isAdmin: true });
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    const meta = cloneJson(events[0]!.meta!);
    expect(Object.hasOwn(meta, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
