/**
 * Sizes of JSON texts counted without writing them (core/json.ts jsonByteLength), and the
 * receiver's event sizes from the meta columns (meta-columns.ts invariant 5): exactly what
 * writing the text and counting its UTF-8 bytes gives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonByteLength as jsonBytes, jsonStringBytes } from '../../src/core/json.ts';
import {
  BatchEventError,
  decodeEventBatch,
  EventTooLargeError,
  encodeEventBatch,
} from '../../src/sync/event-codec.ts';
import { arbStep, batchOf } from './meta-batches.ts';

const utf8 = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

describe('jsonByteLength, walked', () => {
  it('equals the UTF-8 length of JSON.stringify for any JSON value, any string', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        expect(jsonBytes(value)).toBe(utf8(value));
        const parsed = JSON.parse(JSON.stringify(value)) as unknown;
        expect(jsonBytes(parsed)).toBe(utf8(parsed));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(jsonStringBytes(text)).toBe(utf8(text));
      }),
      { numRuns: 500 },
    );
    for (const value of [-0, 1e21, 5e-7, '\u2028"\\\u0000', { __proto__: null, a: [] }, [[]]]) {
      expect(jsonBytes(value)).toBe(utf8(value));
    }
  });
});

describe('event sizes from the meta columns (meta-columns.ts invariant 5)', () => {
  it('holds each event of a random mix to maxEventBytes by its exact data + meta size', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 20 }), (steps) => {
        const events = batchOf(steps);
        const sizes = events.map((e) => utf8(e.data) + (e.meta === undefined ? 0 : utf8(e.meta)));
        const most = Math.max(...sizes);
        const wire = () => JSON.parse(encodeEventBatch(events)) as unknown;
        // Sized one by one: the message is said to be larger than the limit.
        const options = (limit: number) => ({ maxEventBytes: limit, messageBytes: 2 ** 30 });
        expect(decodeEventBatch(wire(), options(most))).toEqual(events);
        let refused: unknown;
        try {
          decodeEventBatch(wire(), options(most - 1));
        } catch (error) {
          refused = error;
        }
        expect(refused).toBeInstanceOf(BatchEventError);
        const inner = (refused as BatchEventError).error;
        expect(inner).toBeInstanceOf(EventTooLargeError);
        expect((inner as EventTooLargeError).bytes).toBe(most);
      }),
      { numRuns: 300 },
    );
  });
});
