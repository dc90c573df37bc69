/**
 * Base64 (core/base64.ts): both forms give back the bytes (invariant 1), and the url-safe form
 * is RFC 4648 §5 without padding, as Node's `base64url` writes it, whichever way it is encoded
 * (invariant 3).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeBase64,
  decodeBase64Url,
  encodeBase64,
  encodeBase64Url,
  encodeBase64UrlByTable,
  encodeBase64UrlChunks,
} from '../../src/core/base64.ts';

describe('base64', () => {
  it('writes url-safe base64 as RFC 4648 §5 without padding, and reads it back (1)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = encodeBase64Url(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64url'));
        expect(decodeBase64Url(text)).toEqual(bytes);
      }),
    );
  });

  it('writes the same text natively as by table, views at any offset included (3)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const from = a % (bytes.length + 1);
        const view = bytes.subarray(from, from + (b % (bytes.length - from + 1)));
        const text = encodeBase64Url(view);
        expect(text).toBe(encodeBase64UrlByTable(view));
        expect(text).toBe(Buffer.from(view).toString('base64url'));
      }),
    );
  });

  it('writes standard base64 and reads it back (1)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = encodeBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(decodeBase64(text)).toEqual(bytes);
      }),
    );
  });

  it('writes equal chunks each as encodeBase64Url does, one after the other', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.uint8Array({ maxLength: 300 }),
        (size, bytes) => {
          const whole = bytes.subarray(0, bytes.length - (bytes.length % size));
          let expected = '';
          for (let i = 0; i < whole.length; i += size) {
            expected += encodeBase64Url(whole.subarray(i, i + size));
          }
          expect(encodeBase64UrlChunks(whole, size)).toBe(expected);
        },
      ),
    );
  });
});
