import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsSha256Text, nativeSha256Text, sha256Text } from '../../src/core/sha256.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** Text with lone surrogates among other code units (UTF-8 makes each U+FFFD). */
const arbText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc
    .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 100 })
    .map((units) => String.fromCharCode(...units)),
);

describe('sha256Text', () => {
  it('is the native hash in Node, and gives the known answer', () => {
    expect(nativeSha256Text).toBeDefined();
    expect(sha256Text).toBe(nativeSha256Text);
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(hex(sha256Text('abc'))).toBe(abc);
    expect(hex(jsSha256Text('abc'))).toBe(abc);
  });

  it('gives the same bytes natively and in JS, lone surrogates included (invariant 1)', () => {
    fc.assert(
      fc.property(arbText, (text) => {
        const native = nativeSha256Text!(text);
        expect(native).toBeInstanceOf(Uint8Array);
        expect(native.length).toBe(32);
        expect(hex(native)).toBe(hex(jsSha256Text(text)));
      }),
      { numRuns: 300 },
    );
  });
});
