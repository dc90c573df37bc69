/** core/integrity.ts parseLink, parsed by hand, against the grammar it replaced (a regex). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseLink } from '../../src/core/integrity.ts';

/** The grammar of a `$link`: "<seq, base 36, 1-11 digits>.<hash, 22 base64url>.<id, 1-256>". */
function byGrammar(text: string) {
  const m = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})\.(.{1,256})$/s.exec(text);
  if (m === null) return undefined;
  const seq = Number.parseInt(m[1]!, 36);
  return Number.isSafeInteger(seq) && seq >= 1 ? { seq, hash: m[2]!, id: m[3]! } : undefined;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');

describe('parseLink', () => {
  it('takes exactly what the grammar takes, and reads the same parts', () => {
    const seq = fc.oneof(fc.string({ maxLength: 13 }), fc.stringMatching(/^[0-9a-z]{0,12}$/));
    const hash = fc.oneof(
      fc.string({ minLength: 20, maxLength: 24 }),
      fc.array(fc.constantFrom(...B64), { minLength: 21, maxLength: 23 }).map((a) => a.join('')),
    );
    const id = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ minLength: 254, maxLength: 258 }),
      fc.constantFrom('', '\n', 'a\nb', '\ud800'),
    );
    fc.assert(
      fc.property(seq, hash, fc.constantFrom('.', '..', ''), id, (s, h, sep, i) => {
        const text = `${s}.${h}${sep}${i}`;
        expect(parseLink(text)).toEqual(byGrammar(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it('reads a link the signer writes', () => {
    const hash = `${'A'.repeat(21)}_`;
    expect(parseLink(`1z.${hash}.r.7`)).toEqual({ seq: 71, hash, id: 'r.7' });
    expect(parseLink(`0.${hash}.x`)).toBeUndefined();
    expect(parseLink(42)).toBeUndefined();
  });
});
