/**
 * The server's `auth` option, turned into one function from a request's token to the claims of
 * its connection: createToken's tokens (`{ secret }`), standard JWTs (`{ jwt }`, jwt.ts), an
 * app's own check (`{ verifyToken }`), or none (`false`, development only).
 *
 * Invariants:
 * 1. A token is refused with a SyncError UNAUTHORIZED whose `details.reason` says why; whatever
 *    an app's verifyToken throws, or returns that is not a valid space, subject and scope, is a
 *    refusal ('refused' / 'claim'), never a crash and never an accepted connection.
 * 2. A missing token is refused before any verifier runs ('missing').
 */
import { SyncError } from '../core/errors.ts';
import { verifyToken as verifyHmacToken } from './auth.ts';
import type { ConnectionClaims } from './connection.ts';
import { checkClaims, jwtVerifier } from './jwt.ts';
import type { JwtAuthOptions, VerifiedClaims } from './jwt-options.ts';

/** The space every connection uses when auth is disabled. */
export const DEFAULT_SPACE = 'default';

/** An app's own token check: claims for a good token; throw (or reject) to refuse it. */
export type AppTokenVerifier = (token: string) => VerifiedClaims | Promise<VerifiedClaims>;

export type AuthOptions =
  /** Tokens made by createToken with this secret. */
  | { secret: string }
  /** Standard JWTs: HS256, or RS256 / ES256 / EdDSA from a key or a JWKS URL (jwt.ts). */
  | { jwt: JwtAuthOptions }
  /** The app checks tokens itself (invariant 1). */
  | { verifyToken: AppTokenVerifier }
  /** No authentication: one default space, full scope (development only). */
  | false;

export type Authenticator = (token: string | undefined) => Promise<ConnectionClaims>;

function refused(reason: string, message: string): SyncError {
  return new SyncError('UNAUTHORIZED', message, { reason });
}

/** Builds the authenticator of `auth`; throws a TypeError for a bad configuration. */
export async function makeAuthenticator(
  auth: AuthOptions,
  now: () => number,
): Promise<Authenticator> {
  if (auth === false) {
    return async () => ({ space: DEFAULT_SPACE, sub: 'anonymous', scope: ['read', 'write'] });
  }
  if (typeof auth !== 'object' || auth === null) {
    throw new TypeError('auth must be { secret }, { jwt }, { verifyToken } or false');
  }
  if ('jwt' in auth) {
    const verify = await jwtVerifier(auth.jwt, now);
    return async (token) => {
      if (token === undefined || token === '') throw refused('missing', 'a token is required');
      return verify(token);
    };
  }
  if ('verifyToken' in auth) {
    const hook = auth.verifyToken;
    if (typeof hook !== 'function') throw new TypeError('auth.verifyToken must be a function');
    return async (token) => {
      if (token === undefined || token === '') throw refused('missing', 'a token is required');
      let value: unknown;
      try {
        value = await hook(token);
      } catch (error) {
        if (error instanceof SyncError && error.code === 'UNAUTHORIZED') throw error;
        throw refused('refused', 'the token was refused');
      }
      const claims = checkClaims(value);
      if (claims === undefined) {
        throw refused('claim', 'the token does not name a valid space, subject and scope');
      }
      return claims;
    };
  }
  const secret = (auth as { secret?: unknown }).secret;
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError('auth.secret must be a non-empty string (or pass auth: false)');
  }
  return async (token) => verifyHmacToken(secret, token, now());
}
