/**
 * Access tokens: `base64url(JSON claims) + "." + base64url(HMAC-SHA256(secret, first part))`.
 * Stateless, so any server holding the secret can check them (several servers on PostgreSQL).
 *
 * Invariants:
 * 1. A token is accepted only if its signature matches, compared in constant time, and it has
 *    not expired; its claims are then trusted as they are (space, sub, scope).
 * 2. Verification never throws anything but a SyncError with code UNAUTHORIZED, whose
 *    `details.reason` says which check failed: 'missing' | 'malformed' | 'forged' | 'expired'.
 * 3. The claims are parsed only after the signature is checked: unsigned input never reaches
 *    JSON.parse.
 * 4. Decoding is strict, so that one token has one spelling: both parts are unpadded base64url
 *    as createToken writes them (no stray character, `=`, whitespace or unused trailing bits;
 *    Buffer.from(…, 'base64url') would skip or ignore them), else 'malformed'. A token string
 *    the server accepts is the very string that was issued.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SyncError } from '../core/errors.ts';
import { isValidSpaceName } from './storage.ts';

export type Scope = 'read' | 'write';

export interface TokenOptions {
  space: string;
  /** The subject: who the token was issued to (a user id). Owns the replicas it writes first. */
  sub: string;
  scope: Scope[];
  expiresInSeconds: number;
}

export interface TokenClaims {
  space: string;
  sub: string;
  scope: Scope[];
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch. */
  exp: number;
}

export type TokenFailure = 'missing' | 'malformed' | 'forged' | 'expired';

/** Tokens are small; anything longer is refused before any hashing (a cheap bound on work). */
export const MAX_TOKEN_LENGTH = 4096;
export const MAX_SUBJECT_LENGTH = 256;

const SCOPES: readonly Scope[] = ['read', 'write'];

function sign(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url');
}

function assertSecret(secret: string): void {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError('a token secret must be a non-empty string');
  }
}

/**
 * Makes a signed token for one space.
 *
 * @example
 * const token = createToken(secret, { space: 'team-42', sub: 'user-7', scope: ['read', 'write'], expiresInSeconds: 3600 });
 * new WebSocket(`${server.url}/?token=${encodeURIComponent(token)}`);
 */
export function createToken(
  secret: string,
  options: TokenOptions,
  nowMs: number = Date.now(),
): string {
  assertSecret(secret);
  if (!isValidSpaceName(options.space)) {
    throw new TypeError('space must be a non-empty string of at most 128 characters');
  }
  if (
    typeof options.sub !== 'string' ||
    options.sub.length === 0 ||
    options.sub.length > MAX_SUBJECT_LENGTH
  ) {
    throw new TypeError(
      `sub must be a non-empty string of at most ${MAX_SUBJECT_LENGTH} characters`,
    );
  }
  if (!Array.isArray(options.scope) || options.scope.some((s) => !SCOPES.includes(s))) {
    throw new TypeError("scope must be a list of 'read' and 'write'");
  }
  if (!Number.isFinite(options.expiresInSeconds) || options.expiresInSeconds <= 0) {
    throw new TypeError('expiresInSeconds must be a positive number');
  }
  const iat = Math.floor(nowMs / 1000);
  const claims: TokenClaims = {
    space: options.space,
    sub: options.sub,
    scope: [...new Set(options.scope)],
    iat,
    exp: iat + Math.ceil(options.expiresInSeconds),
  };
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${body}.${sign(secret, body)}`;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Whether `text` is base64url exactly as Buffer writes it: the alphabet only, no padding, a
 * length that a whole number of bytes gives (not 1 mod 4) and zero unused bits in its last
 * character, so that no two strings decode to the same bytes (invariant 4).
 */
function isStrictBase64url(text: string): boolean {
  return (
    BASE64URL.test(text) &&
    text.length % 4 !== 1 &&
    Buffer.from(text, 'base64url').toString('base64url') === text
  );
}

function unauthorized(reason: TokenFailure, message: string): SyncError {
  return new SyncError('UNAUTHORIZED', message, { reason });
}

function parseClaims(json: string): TokenClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const c = value as Record<string, unknown>;
  if (!isValidSpaceName(c.space)) return undefined;
  if (typeof c.sub !== 'string' || c.sub.length === 0 || c.sub.length > MAX_SUBJECT_LENGTH) {
    return undefined;
  }
  if (!Array.isArray(c.scope) || !c.scope.every((s) => SCOPES.includes(s as Scope)))
    return undefined;
  if (!Number.isSafeInteger(c.iat) || !Number.isSafeInteger(c.exp)) return undefined;
  return {
    space: c.space,
    sub: c.sub,
    scope: c.scope as Scope[],
    iat: c.iat as number,
    exp: c.exp as number,
  };
}

/**
 * Checks a token and returns its claims, or throws a SyncError UNAUTHORIZED (invariant 2).
 * `nowMs` is the wall clock, injectable for tests.
 */
export function verifyToken(
  secret: string,
  token: string | undefined | null,
  nowMs: number = Date.now(),
): TokenClaims {
  assertSecret(secret);
  if (token === undefined || token === null || token === '') {
    throw unauthorized('missing', 'a token is required');
  }
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
    throw unauthorized('malformed', 'the token is malformed');
  }
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) {
    throw unauthorized('malformed', 'the token is malformed');
  }
  const body = token.slice(0, dot);
  const signature = token.slice(dot + 1);
  if (!isStrictBase64url(body) || !isStrictBase64url(signature)) {
    throw unauthorized('malformed', 'the token is malformed');
  }
  // The signature is compared as the text createToken wrote (invariant 4), in constant time;
  // timingSafeEqual needs equal lengths, and the length of a SHA-256 MAC is public anyway.
  const given = Buffer.from(signature, 'latin1');
  const expected = Buffer.from(sign(secret, body), 'latin1');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthorized('forged', 'the token signature is not valid');
  }
  const claims = parseClaims(Buffer.from(body, 'base64url').toString('utf8'));
  if (claims === undefined) throw unauthorized('malformed', 'the token claims are malformed');
  if (claims.exp * 1000 <= nowMs) throw unauthorized('expired', 'the token has expired');
  return claims;
}
