import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.ts';
import type { JsonValue } from '../../src/core/events.ts';
import {
  assertJsonValue,
  canonicalJson,
  canonicalJsonOmitting,
  cloneJson,
  jsonByteLength,
  jsonDepthExceeds,
  jsonEqual,
  parsedJsonUnfit,
  utf8Length,
  utf8LengthInBrowser,
} from '../../src/core/json.ts';

const arbJson: fc.Arbitrary<JsonValue> = fc
  .jsonValue({ maxDepth: 4, stringUnit: 'binary' })
  .map((v) => v as JsonValue);

/** JSON values over a tiny domain, so that two independent draws are often equal. */
const arbSmallJson: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<JsonValue>(null, true, false, 0, 1, 'a', 'b'),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'c'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

/** The same JSON value with every object's keys in a shuffled (here: reversed) order. */
function reorderKeys(value: JsonValue): JsonValue {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(reorderKeys);
  const out: Record<string, JsonValue> = {};
  for (const key of Object.keys(value).reverse()) {
    Object.defineProperty(out, key, {
      value: reorderKeys(value[key]!),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** JSON text with object keys sorted: two values are equal JSON values iff these are equal. */
function canonical(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`).join(',')}}`;
}

function rejectionOf(value: unknown, path = 'value'): ValidationError {
  try {
    assertJsonValue(value, path);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected assertJsonValue to throw');
}

class Point {
  readonly x: number;
  readonly y: number;

  constructor(x: number, y: number) {
    this.x = x;
    this.y = y;
  }
}

describe('assertJsonValue', () => {
  it('json invariant 1: accepts every JSON value', () => {
    fc.assert(
      fc.property(arbJson, (value) => {
        expect(() => assertJsonValue(value, 'data')).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it('json invariant 1: accepts what JSON.parse returns, including __proto__ keys', () => {
    const parsed: unknown = JSON.parse(
      '{"__proto__":{"polluted":true},"constructor":{"prototype":1}}',
    );
    expect(() => assertJsonValue(parsed, 'data')).not.toThrow();
  });

  it('json invariant 1: accepts objects without a prototype and a value shared in two places', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.a = 1;
    const shared = { x: 1 };
    expect(() =>
      assertJsonValue({ bare, left: shared, right: [shared, shared] }, 'data'),
    ).not.toThrow();
  });

  const cyclic: Record<string, unknown> = { a: {} };
  (cyclic.a as Record<string, unknown>).back = cyclic;
  const cyclicArray: unknown[] = [1];
  cyclicArray.push(cyclicArray);
  const withSymbolKey = { [Symbol('k')]: 1 };
  // biome-ignore lint/suspicious/noSparseArray: an array hole is the point of this case
  const holey = [1, , 3];

  const cases: [string, unknown, string][] = [
    ['undefined', undefined, 'value'],
    ['undefined in a nested property', { a: { b: undefined } }, 'value.a.b'],
    ['an array hole', { items: holey }, 'value.items[1]'],
    ['undefined in an array', [0, [1, undefined]], 'value[1][1]'],
    ['NaN', { n: Number.NaN }, 'value.n'],
    ['Infinity', [Number.POSITIVE_INFINITY], 'value[0]'],
    ['-Infinity', { a: [{ b: Number.NEGATIVE_INFINITY }] }, 'value.a[0].b'],
    ['a function', { f: () => 1 }, 'value.f'],
    ['a symbol', { s: Symbol('s') }, 'value.s'],
    ['a bigint', { big: 10n }, 'value.big'],
    ['a cycle through an object', cyclic, 'value.a.back'],
    ['a cycle through an array', cyclicArray, 'value[1]'],
    ['a Date', { at: new Date(0) }, 'value.at'],
    ['a Map', { m: new Map() }, 'value.m'],
    ['a Set', [new Set()], 'value[0]'],
    ['a class instance', { p: new Point(1, 2) }, 'value.p'],
    ['a typed array', { bytes: new Uint8Array(2) }, 'value.bytes'],
    ['a boxed string', { s: new String('x') }, 'value.s'],
    ['symbol keys', { o: withSymbolKey }, 'value.o'],
  ];

  it.each(cases)('json invariant 1: rejects %s, naming its path', (_name, value, path) => {
    const error = rejectionOf(value);
    expect(error.code).toBe('VALIDATION');
    expect(error.path).toBe(path);
  });

  it('rejects nesting deeper than the limit', () => {
    const nest = (depth: number): JsonValue => (depth === 0 ? 0 : [nest(depth - 1)]);
    expect(() => assertJsonValue(nest(64), 'd')).not.toThrow();
    expect(rejectionOf(nest(65)).reason).toMatch(/deeper than 64/);
    expect(() => assertJsonValue(nest(5), 'd', { maxDepth: 4 })).toThrow(ValidationError);
  });
});

describe('jsonEqual', () => {
  it('json invariant 2: ignores object key order', () => {
    fc.assert(
      fc.property(arbJson, (value) => {
        expect(jsonEqual(value, reorderKeys(value))).toBe(true);
        expect(jsonEqual(reorderKeys(value), value)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('json invariant 2: does not ignore array order', () => {
    fc.assert(
      fc.property(fc.array(arbSmallJson, { minLength: 2, maxLength: 5 }), (items) => {
        const reversed = [...items].reverse();
        const samePerElement = items.every(
          (item, i) => canonical(item) === canonical(reversed[i]!),
        );
        expect(jsonEqual(items, reversed)).toBe(samePerElement);
      }),
      { numRuns: 300 },
    );
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
  });

  it('json invariant 2: agrees with equality of key-sorted JSON text', () => {
    fc.assert(
      fc.property(arbSmallJson, arbSmallJson, (a, b) => {
        expect(jsonEqual(a, b)).toBe(canonical(a) === canonical(b));
      }),
      { numRuns: 1000 },
    );
  });

  it('tells apart values that JavaScript coerces into each other', () => {
    expect(jsonEqual([], {})).toBe(false);
    expect(jsonEqual({}, [])).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual({}, null)).toBe(false);
    expect(jsonEqual(1, '1')).toBe(false);
    expect(jsonEqual({ 0: 'a' }, ['a'])).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2 }, { a: 1, c: 2 })).toBe(false);
  });

  it('compares __proto__ keys as ordinary data', () => {
    const a: unknown = JSON.parse('{"__proto__":{"x":1},"k":2}');
    const b: unknown = JSON.parse('{"k":2,"__proto__":{"x":1}}');
    const c: unknown = JSON.parse('{"k":2,"__proto__":{"x":2}}');
    expect(jsonEqual(a, b)).toBe(true);
    expect(jsonEqual(a, c)).toBe(false);
    expect(jsonEqual(a, { k: 2 })).toBe(false);
  });
});

describe('jsonByteLength', () => {
  it('equals the UTF-8 length of the JSON text, for any strings including astral and lone surrogates', () => {
    fc.assert(
      fc.property(arbJson, (value) => {
        expect(jsonByteLength(value)).toBe(Buffer.byteLength(JSON.stringify(value), 'utf8'));
      }),
      { numRuns: 300 },
    );
    for (const text of ['\ud800', 'a\udfffb', '\ud83d\ude00\ud83d']) {
      expect(jsonByteLength({ text })).toBe(Buffer.byteLength(JSON.stringify({ text }), 'utf8'));
    }
  });

  it('gives what the JSON text gives for values that are not plain JSON, errors included', () => {
    class Point {
      readonly x: number;
      constructor(x: number) {
        this.x = x;
      }
    }
    const odd = [
      new Date(0),
      { at: new Date(0), n: [1, () => 2, Symbol('s')] },
      new Point(1),
      { p: new Point(2) },
      new Map([[1, 2]]),
      { toJSON: () => 'x' },
      [undefined, Number.NaN, -0],
    ];
    for (const value of odd) {
      expect(jsonByteLength(value)).toBe(Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'));
    }
    expect(() => jsonByteLength({ n: 1n })).toThrow(TypeError);
  });

  it('counts 1, 2, 3 and 4 bytes per character as UTF-8 does', () => {
    expect(utf8Length('a')).toBe(1);
    expect(utf8Length('é')).toBe(2);
    expect(utf8Length('€')).toBe(3);
    expect(utf8Length('😀')).toBe(4);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'));
        expect(utf8LengthInBrowser(text)).toBe(Buffer.byteLength(text, 'utf8'));
        const long = text.repeat(Math.ceil(5000 / Math.max(1, text.length)));
        expect(utf8LengthInBrowser(long)).toBe(Buffer.byteLength(long, 'utf8'));
      }),
      { numRuns: 300 },
    );
  });

  it('counts long text (whole messages) natively, to the same result', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), (text) => {
        const long = text.repeat(Math.ceil(5000 / text.length));
        expect(utf8Length(long)).toBe(Buffer.byteLength(long, 'utf8'));
      }),
      { numRuns: 50 },
    );
  });
});

describe('cloneJson', () => {
  it('makes a deep copy equal to the original that shares no objects with it', () => {
    fc.assert(
      fc.property(arbJson, (value) => {
        const copy = cloneJson(value);
        expect(jsonEqual(copy, value)).toBe(true);
        expect(JSON.stringify(copy)).toBe(JSON.stringify(value));
        if (value !== null && typeof value === 'object') expect(copy).not.toBe(value);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps __proto__, constructor and prototype keys as own data without polluting Object.prototype', () => {
    const parsed = JSON.parse(
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"nested":[{"__proto__":{"polluted":true}}]}',
    ) as JsonValue;
    const copy = cloneJson(parsed) as Record<string, JsonValue>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'constructor', 'nested']);
    expect(Object.hasOwn(copy, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).toEqual({ polluted: true });
    expect(Object.hasOwn(copy, 'constructor')).toBe(true);
    const nested = (copy.nested as JsonValue[])[0] as Record<string, JsonValue>;
    expect(Object.hasOwn(nested, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(nested)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
    expect(jsonEqual(copy, parsed)).toBe(true);
  });

  it('measures the bracket depth of a JSON text, ignoring brackets and escaped quotes in strings', () => {
    expect(jsonDepthExceeds('1', 0)).toBe(false);
    expect(jsonDepthExceeds('[]', 0)).toBe(true);
    expect(jsonDepthExceeds('[[1]]', 2)).toBe(false);
    expect(jsonDepthExceeds('[[1]]', 1)).toBe(true);
    expect(jsonDepthExceeds(String.raw`["[[[", {"a\\":"\\\"[["}]`, 2)).toBe(false);
    expect(jsonDepthExceeds(String.raw`["\\", [[1]]]`, 2)).toBe(true);
    expect(jsonDepthExceeds('["unterminated [[[', 1)).toBe(false);
    // The nesting of arrays and objects in the value the text stands for.
    const depthOf = (v: unknown): number =>
      v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0;
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: 8 }), (value, max) => {
        const text = JSON.stringify(value);
        expect(jsonDepthExceeds(text, max)).toBe(depthOf(value) > max);
      }),
      { numRuns: 1000 },
    );
  });

  it('parsedJsonUnfit refuses exactly what assertJsonValue refuses in a parsed text (invariant 1)', () => {
    // Texts with number literals past the double range spliced in: JSON.parse makes them ±Infinity.
    const arbText = fc
      .tuple(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('1e400', '-1e400', '1e-400', '7'))
      .map(([value, literal]) =>
        JSON.stringify(value).replace(/(?<=[[:,])-?\d[\d.eE+-]*/, literal),
      );
    fc.assert(
      fc.property(arbText, fc.integer({ min: 1, max: 6 }), (text, maxDepth) => {
        const value: unknown = JSON.parse(text);
        let refused = false;
        try {
          assertJsonValue(value, 'v', { maxDepth });
        } catch {
          refused = true;
        }
        expect(parsedJsonUnfit(value, maxDepth)).toBe(refused);
      }),
      { numRuns: 1000 },
    );
    expect(parsedJsonUnfit(JSON.parse('{"a":[1,{"b":1e400}]}'), 64)).toBe(true);
    expect(parsedJsonUnfit(JSON.parse('{"a":[1,{"b":1e300}]}'), 64)).toBe(false);
  });
});

describe('canonicalJson', () => {
  it('is the key-sorted JSON text, the same for any key order (digests of stored events hold)', () => {
    fc.assert(
      fc.property(arbJson, (value) => {
        const text = canonicalJson(value);
        expect(text).toBe(canonical(value));
        expect(canonicalJson(reorderKeys(value))).toBe(text);
        expect(jsonEqual(JSON.parse(text), value)).toBe(true);
      }),
      { numRuns: 500 },
    );
    // Strings and keys quoted as JSON.stringify quotes them, escapes and surrogates included.
    for (const text of [
      'a"b',
      'a\\b',
      '\u0000\u001f',
      '\ud800',
      'x\udfff',
      '😀',
      '\u2028',
      '\u007f',
      'é',
    ]) {
      expect(canonicalJson(text)).toBe(JSON.stringify(text));
      expect(canonicalJson({ [text]: text })).toBe(
        `{${JSON.stringify(text)}:${JSON.stringify(text)}}`,
      );
    }
    expect(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }], __proto__x: true })).toBe(
      '{"__proto__x":true,"a":[{"c":"x","d":null}],"b":1}',
    );
  });

  it('orders each object by its own keys when many shapes share the cache of orders', () => {
    // Objects of one key count, first and last key alike, so that they meet in the cache's slots:
    // an order taken from another shape without checking its keys writes the wrong text.
    const shapes: Record<string, number>[] = [];
    for (let i = 0; i < 600; i++) {
      const middle = [`m${i % 7}`, `k${i % 13}`, `z${i % 5}`];
      const keys = ['a', ...(i % 2 === 0 ? middle : middle.reverse()), 'b'];
      const o: Record<string, number> = {};
      for (const [n, key] of keys.entries()) o[key] = n;
      shapes.push(o);
    }
    for (let round = 0; round < 2; round++) {
      for (const o of shapes) expect(canonicalJson(o)).toBe(canonical(o));
    }
    for (const o of shapes) {
      const [first] = Object.keys(o);
      expect(canonicalJsonOmitting(o, first!)).toBe(canonical(omitKey(o, first!)));
      expect(canonicalJsonOmitting(o, 'b')).toBe(canonical(omitKey(o, 'b')));
    }
    expect(canonicalJson([1.5, -0, 1e21, 2 ** 53, -1e-7])).toBe(
      JSON.stringify([1.5, 0, 1e21, 2 ** 53, -1e-7]),
    );
  });
});

function omitKey(o: Record<string, number>, key: string): Record<string, number> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

describe('canonicalJsonOmitting', () => {
  it('is the canonical text of the object without the field, undefined when none is left', () => {
    const arbObject = fc.dictionary(
      fc.oneof(fc.constantFrom('$sig', '$link', '__proto__', 'a'), fc.string()),
      arbJson,
    );
    fc.assert(
      fc.property(arbObject, fc.constantFrom('$sig', 'a', '__proto__'), (object, omit) => {
        const rest = Object.fromEntries(Object.entries(object).filter(([k]) => k !== omit));
        const expected = Object.keys(rest).length === 0 ? undefined : canonicalJson(rest);
        expect(canonicalJsonOmitting(object, omit)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});
