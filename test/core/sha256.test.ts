import { webcrypto } from 'node:crypto';
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

/** FIPS 180-2's examples (appendix B) and the empty text. */
const KNOWN: [string, string][] = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  ['a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
];

describe('sha256Text', () => {
  it('is the native hash in Node', () => {
    expect(nativeSha256Text).toBeDefined();
    expect(sha256Text).toBe(nativeSha256Text);
  });

  it("gives the standard's answers, natively and in JS", () => {
    for (const [text, digest] of KNOWN) {
      expect(hex(sha256Text(text))).toBe(digest);
      expect(hex(jsSha256Text(text))).toBe(digest);
    }
  });

  it('pads every length across block boundaries as the native hash does', () => {
    // 55/56 and 119/120 bytes are where the length stops fitting in the last block; multi-byte
    // characters make the byte length differ from the text's.
    for (const unit of ['x', 'é', '€', '😀', '\ud800']) {
      for (let n = 0; n <= 140; n++) {
        const text = unit.repeat(n);
        expect(hex(jsSha256Text(text)), `${n} × ${JSON.stringify(unit)}`).toBe(
          hex(nativeSha256Text!(text)),
        );
      }
    }
  });

  it('gives the same bytes natively, in JS and in WebCrypto, lone surrogates included (invariant 1)', async () => {
    await fc.assert(
      fc.asyncProperty(arbText, async (text) => {
        const native = nativeSha256Text!(text);
        expect(native).toBeInstanceOf(Uint8Array);
        expect(native.length).toBe(32);
        const js = jsSha256Text(text);
        expect(hex(js)).toBe(hex(native));
        const subtle = await webcrypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
        expect(hex(new Uint8Array(subtle))).toBe(hex(js));
      }),
      { numRuns: 300 },
    );
  });

  it('returns a digest of its own each call (the JS one hashes in buffers it keeps)', () => {
    const first = jsSha256Text('one');
    const copy = hex(first);
    jsSha256Text('another text, longer than the first one'.repeat(40));
    expect(hex(first)).toBe(copy);
    expect(hex(jsSha256Text('one'))).toBe(copy);
  });
});
