/**
 * Standard JWTs (RFC 7519) as access tokens, verified with `jose`, so that tokens from common
 * identity providers work: HS256 with a shared secret, or RS256 / ES256 / EdDSA with a public key
 * or the provider's JWKS URL.
 *
 * Claims, by default (`claims` replaces the mapping):
 * - `sub` → sub (required, 1–256 characters);
 * - `space` (or the claim named by `spaceClaim`) → space; `defaultSpace` when the token has none;
 * - `scope` (or `scopeClaim`): a space-separated string (OAuth 2) or an array of strings; only
 *   `read` and `write` count, other values (`openid`, `profile`…) are ignored;
 * - `exp` required (a connection is closed with 4001 when it passes), `nbf` and `iat` checked
 *   when present, `iss` / `aud` when `issuer` / `audience` are configured.
 *
 * Invariants:
 * 1. jose is an optional peer dependency: it is loaded when a server is created with
 *    `auth: { jwt }`, never by importing the server; missing, it fails that call with the code
 *    MISSING_DEPENDENCY, naming the package to install.
 * 2. The algorithms accepted are fixed by configuration, never by the token's header: HS256 for
 *    a secret; RS256, ES256 and EdDSA for keys unless `algorithms` narrows them. `none` never.
 * 3. Every failure of a token is a SyncError UNAUTHORIZED with `details.reason`: 'malformed',
 *    'forged' (signature, or no key matches), 'expired', 'not-yet-valid', 'algorithm', 'claim'
 *    (issuer, audience, a required or unmappable claim). A JWKS that cannot be fetched is not the
 *    token's fault: 'keys-unavailable' (the server answers 503).
 */
import type { KeyObject } from 'node:crypto';
import type * as JoseModule from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { MissingDependencyError, SyncError } from '../core/errors.ts';
import { MAX_SUBJECT_LENGTH, MAX_TOKEN_LENGTH, type Scope } from './auth.ts';
import type { JwtAuthOptions, TokenVerifier, VerifiedClaims } from './jwt-options.ts';
import { loadJose as loadJosePeer } from './peers.ts';
import { isValidSpaceName } from './storage.ts';

export type { JwtAuthOptions, TokenVerifier, VerifiedClaims } from './jwt-options.ts';

type Jose = typeof JoseModule;

const KEY_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
const SCOPES: readonly Scope[] = ['read', 'write'];

function unauthorized(reason: string, message: string): SyncError {
  return new SyncError('UNAUTHORIZED', message, { reason });
}

/** Loads jose (invariant 1); `load` is a test seam. */
export async function loadJose(
  load: () => Promise<Jose> = async () => loadJosePeer(),
): Promise<Jose> {
  try {
    return await load();
  } catch (error) {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    const missing =
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      typeof message === 'string' &&
      /['"]jose['"]/.test(message);
    if (!missing) throw error;
    throw new MissingDependencyError('jose', 'createSyncServer({ auth: { jwt } })');
  }
}

function scopeOf(value: unknown): Scope[] | undefined {
  const parts = typeof value === 'string' ? value.split(' ') : value;
  if (!Array.isArray(parts) || !parts.every((p) => typeof p === 'string')) return undefined;
  return SCOPES.filter((s) => parts.includes(s));
}

/** The default mapping (header comment), or undefined when a claim is missing or wrong. */
function defaultClaims(payload: JWTPayload, options: JwtAuthOptions): VerifiedClaims | undefined {
  const named = payload[options.spaceClaim ?? 'space'];
  const space = named === undefined ? options.defaultSpace : named;
  const scope = scopeOf(payload[options.scopeClaim ?? 'scope'] ?? []);
  if (!isValidSpaceName(space) || scope === undefined || typeof payload.sub !== 'string') {
    return undefined;
  }
  const claims: VerifiedClaims = { space, sub: payload.sub, scope };
  if (typeof payload.exp === 'number') claims.exp = payload.exp;
  return claims;
}

/** Checks what a mapping returned: the same bounds as createToken's claims. */
export function checkClaims(value: unknown): VerifiedClaims | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const c = value as Record<string, unknown>;
  if (!isValidSpaceName(c.space)) return undefined;
  if (typeof c.sub !== 'string' || c.sub.length === 0 || c.sub.length > MAX_SUBJECT_LENGTH) {
    return undefined;
  }
  if (!Array.isArray(c.scope) || !c.scope.every((s) => SCOPES.includes(s as Scope))) {
    return undefined;
  }
  if (c.exp !== undefined && !Number.isFinite(c.exp)) return undefined;
  const claims: VerifiedClaims = { space: c.space, sub: c.sub, scope: [...new Set(c.scope)] };
  if (typeof c.exp === 'number') claims.exp = c.exp;
  return claims;
}

/** Invariant 3: jose's error codes as our reasons. */
function reasonOf(error: unknown): string {
  const { code, claim } = (error ?? {}) as { code?: unknown; claim?: unknown };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return claim === 'nbf' ? 'not-yet-valid' : 'claim';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'forged';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'algorithm';
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return 'keys-unavailable';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWK_INVALID':
      return 'malformed';
    case 'ERR_JOSE_GENERIC':
      // jose's generic error: the JWKS answered with another status than 200.
      return 'keys-unavailable';
    default:
      // fetch() failing (refused, DNS) is a TypeError.
      return error instanceof TypeError ? 'keys-unavailable' : 'malformed';
  }
}

/**
 * A verifier of standard JWTs (see the header). Loads jose and imports the key once.
 *
 * @example
 * createSyncServer({ storage, auth: { jwt: { jwksUrl: 'https://id.example.com/.well-known/jwks.json',
 *   issuer: 'https://id.example.com/', audience: 'sync' } } });
 */
export async function jwtVerifier(
  options: JwtAuthOptions,
  now: () => number,
  jose?: Jose,
): Promise<TokenVerifier> {
  const sources = [options.secret, options.key, options.jwksUrl].filter((s) => s !== undefined);
  if (sources.length !== 1) {
    throw new TypeError('auth.jwt needs exactly one of secret, key or jwksUrl');
  }
  const lib = jose ?? (await loadJose());
  const algorithms =
    options.algorithms ?? (options.secret !== undefined ? ['HS256'] : KEY_ALGORITHMS);
  if (algorithms.length === 0 || algorithms.some((a) => a.toLowerCase() === 'none')) {
    throw new TypeError('auth.jwt.algorithms must name at least one algorithm, never none');
  }
  type Key = Parameters<Jose['jwtVerify']>[1];
  let key: Key;
  if (options.secret !== undefined) {
    const bytes =
      typeof options.secret === 'string'
        ? new TextEncoder().encode(options.secret)
        : options.secret;
    if (bytes.length < 32) throw new TypeError('auth.jwt.secret must be at least 32 bytes');
    key = bytes;
  } else if (options.jwksUrl !== undefined) {
    key = lib.createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 5000 });
  } else if (typeof options.key === 'string') {
    key = await lib.importSPKI(options.key, algorithms[0]!);
  } else if (options.key !== undefined && 'kty' in options.key) {
    key = await lib.importJWK(options.key as JWK, algorithms[0]);
  } else {
    key = options.key as KeyObject | CryptoKey;
  }
  const verifyOptions = {
    algorithms,
    requiredClaims: ['exp', 'sub'],
    clockTolerance: options.clockToleranceSeconds ?? 0,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  return async (token) => {
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized('malformed', 'the token is malformed');
    let payload: JWTPayload;
    try {
      // A key set is a function; a key is not: jose's overloads take them apart.
      const result = await lib.jwtVerify(token, key as Parameters<Jose['jwtVerify']>[1], {
        ...verifyOptions,
        currentDate: new Date(now()),
      });
      payload = result.payload;
    } catch (error) {
      const reason = reasonOf(error);
      throw unauthorized(reason, `the token was refused (${reason})`);
    }
    const mapped =
      options.claims === undefined ? defaultClaims(payload, options) : options.claims(payload);
    const claims = checkClaims(mapped);
    if (claims === undefined) {
      throw unauthorized('claim', 'the token does not name a valid space, subject and scope');
    }
    return claims;
  };
}
