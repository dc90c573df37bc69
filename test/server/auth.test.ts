import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SyncError } from '../../src/core/errors.ts';
import { createToken, verifyToken } from '../../src/server/auth.ts';

const secret = 'test-secret';
const now = 1_700_000_000_000;

function failure(fn: () => unknown): { code: string; reason: unknown } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SyncError);
    const e = error as SyncError;
    return { code: e.code, reason: e.details.reason };
  }
  throw new Error('expected a failure');
}

describe('tokens', () => {
  const options = {
    space: 'team',
    sub: 'alice',
    scope: ['read', 'write'] as const,
    expiresInSeconds: 60,
  };

  it('round-trips the claims of a token signed with the secret', () => {
    const token = createToken(secret, { ...options, scope: ['read', 'write'] }, now);
    expect(verifyToken(secret, token, now + 1000)).toEqual({
      space: 'team',
      sub: 'alice',
      scope: ['read', 'write'],
      iat: now / 1000,
      exp: now / 1000 + 60,
    });
  });

  it('refuses a missing token (1, 2)', () => {
    expect(failure(() => verifyToken(secret, undefined, now))).toEqual({
      code: 'UNAUTHORIZED',
      reason: 'missing',
    });
    expect(failure(() => verifyToken(secret, '', now))).toEqual({
      code: 'UNAUTHORIZED',
      reason: 'missing',
    });
  });

  it('refuses malformed tokens without parsing unsigned input (3)', () => {
    for (const bad of ['abc', '.sig', 'a.b.c', 'x'.repeat(5000)]) {
      expect(failure(() => verifyToken(secret, bad, now)).reason).toMatch(/malformed|forged/);
    }
  });

  it('refuses a token signed with another secret, or with changed claims (forged)', () => {
    const token = createToken('other-secret', { ...options, scope: ['read'] }, now);
    expect(failure(() => verifyToken(secret, token, now))).toEqual({
      code: 'UNAUTHORIZED',
      reason: 'forged',
    });
    const good = createToken(secret, { ...options, scope: ['read'] }, now);
    const [, sig] = good.split('.');
    const elevated = Buffer.from(
      JSON.stringify({
        space: 'team',
        sub: 'alice',
        scope: ['read', 'write'],
        iat: now / 1000,
        exp: now / 1000 + 60,
      }),
    ).toString('base64url');
    expect(failure(() => verifyToken(secret, `${elevated}.${sig}`, now)).reason).toBe('forged');
    expect(failure(() => verifyToken(secret, `${good.split('.')[0]}.${sig}x`, now)).reason).toBe(
      'forged',
    );
  });

  it('refuses an expired token', () => {
    const token = createToken(secret, { ...options, scope: ['read'], expiresInSeconds: 10 }, now);
    expect(verifyToken(secret, token, now + 9_000).sub).toBe('alice');
    expect(failure(() => verifyToken(secret, token, now + 10_000))).toEqual({
      code: 'UNAUTHORIZED',
      reason: 'expired',
    });
  });

  it('refuses to make tokens with bad options', () => {
    expect(() => createToken('', { ...options, scope: ['read'] })).toThrow(TypeError);
    expect(() => createToken(secret, { ...options, scope: ['read'], space: '' })).toThrow(
      TypeError,
    );
    expect(() => createToken(secret, { ...options, scope: ['read'], sub: '' })).toThrow(TypeError);
    expect(() => createToken(secret, { ...options, scope: ['admin' as 'read'] })).toThrow(
      TypeError,
    );
    expect(() => createToken(secret, { ...options, scope: ['read'], expiresInSeconds: 0 })).toThrow(
      TypeError,
    );
  });

  it('decodes strictly: the issued string verifies, any stray character or padding is malformed (4)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
        fc.constantFrom('~', '=', ' ', '\n', '\t', '+', '/', '%', 'é', '\u0000'),
        fc.nat(),
        (sub, stray, at) => {
          const token = createToken(secret, { ...options, scope: ['read'], sub }, now);
          expect(verifyToken(secret, token, now).sub).toBe(sub);
          const i = at % (token.length + 1);
          const spelled = token.slice(0, i) + stray + token.slice(i);
          expect(failure(() => verifyToken(secret, spelled, now)).reason).toBe('malformed');
        },
      ),
      { numRuns: 300 },
    );
  });
});
