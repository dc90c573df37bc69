/**
 * The options and results of JWT verification (jwt.ts), declared without jose's types and
 * without the DOM's: what `@chronicle-es/store/server`'s declarations show must compile in a Node
 * project that installed neither jose nor the DOM library (the consumer tests check it with
 * `skipLibCheck: false`).
 */
import type { KeyObject, webcrypto } from 'node:crypto';
import type { Scope } from './auth.ts';

/** A verified JWT's payload (RFC 7519 registered claims and any others). */
export interface JwtPayload {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  jti?: string;
  nbf?: number;
  exp?: number;
  iat?: number;
  [claim: string]: unknown;
}

/** What a verified token grants: the space, the subject, the scope, and when it ends. */
export interface VerifiedClaims {
  space: string;
  sub: string;
  scope: Scope[];
  /** Seconds since the epoch; the connection is closed with 4001 then. Optional. */
  exp?: number;
}

export interface JwtAuthOptions {
  /** HS256 shared secret (at least 32 bytes, as RFC 7518 asks of HS256 keys). */
  secret?: string | Uint8Array;
  /** A public key: PEM (SPKI), a public JWK, or a KeyObject / CryptoKey. */
  key?: string | webcrypto.JsonWebKey | KeyObject | webcrypto.CryptoKey;
  /** The provider's JSON Web Key Set, fetched and cached (refetched for an unknown `kid`). */
  jwksUrl?: string | URL;
  /** Accepted `alg` values (invariant 2). */
  algorithms?: string[];
  /** Required `iss`. */
  issuer?: string | string[];
  /** Required `aud` (one of them). */
  audience?: string | string[];
  /** Leeway for exp / nbf / iat, seconds. Default 0. */
  clockToleranceSeconds?: number;
  /** The claim that names the space. Default 'space'. */
  spaceClaim?: string;
  /** The space of tokens without one (an app with one space). Default: such tokens are refused. */
  defaultSpace?: string;
  /** The claim that carries the scope. Default 'scope'. */
  scopeClaim?: string;
  /** Replaces the default mapping from the verified payload to our claims. */
  claims?: (payload: JwtPayload) => VerifiedClaims;
}

export type TokenVerifier = (token: string) => Promise<VerifiedClaims>;
