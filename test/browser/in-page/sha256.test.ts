/**
 * The JS SHA-256 (core/sha256.ts invariant 3) in the browsers, where it is the one every digest
 * and signing tree takes: the same bytes as the browser's own WebCrypto digest.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsSha256Text, nativeSha256Text, sha256Text } from '../../../src/core/sha256.ts';

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

async function webCryptoHex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))));
}

describe('sha256Text in the browser', () => {
  it('is the JS implementation, and agrees with WebCrypto on every text', async () => {
    expect(nativeSha256Text).toBeUndefined();
    expect(sha256Text).toBe(jsSha256Text);
    expect(hex(sha256Text('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    for (let n = 0; n <= 130; n++) {
      const text = 'é'.repeat(n >> 1) + 'x'.repeat(n);
      expect(hex(sha256Text(text)), String(n)).toBe(await webCryptoHex(text));
    }
    await fc.assert(
      fc.asyncProperty(
        fc
          .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 150 })
          .map((units) => String.fromCharCode(...units)),
        async (text) => {
          expect(hex(sha256Text(text))).toBe(await webCryptoHex(text));
        },
      ),
      { numRuns: 200 },
    );
  });
});
