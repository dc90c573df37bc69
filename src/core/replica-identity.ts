/**
 * A replica's signing identity (core/integrity.ts, invariant 2 there): its Ed25519 key, kept as
 * JSON in its log's meta, and replica ids derived from the public key and a nonce, so that an
 * event's `$key` proves which replica wrote it.
 *
 * Invariants:
 * 1. replicaIdOf is SHA-256 over a domain, the public key and the nonce, in base 32: nobody can
 *    choose a key for a given replica id.
 * 2. Every new replica id of a key takes a new random nonce: two clones of one log never share an
 *    id (forkedReplica), and a log that adopts a key moves to an id of its own only while it has
 *    no own events, which nothing could sign for under the new id (adoptedIdentity).
 */
import { decodeBase64Url, encodeBase64Url } from './base64.ts';
import type { JsonObject, JsonValue } from './events.ts';
import { cryptoRandomBytes, type RandomBytes, ReplicaId } from './ids.ts';
import { sha256Text } from './sha256.ts';

const REPLICA_DOMAIN = 'chronicle/replica/1\u0000';
const REPLICA_ID_LENGTH = 26;
const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';
const ED25519 = { name: 'Ed25519' } as const;

/** A replica's signing identity: its key pair, and the nonce its replica id derives from. */
export interface SigningIdentity {
  replicaId: string;
  privateKey: CryptoKey;
  /** `$key` text: "<public key>.<nonce>". */
  keyText: string;
}

/** What a store keeps to sign again after a restart (JSON, in its log's meta). */
export interface StoredSigningKey {
  /** PKCS #8 private key, base64url. */
  secret: string;
  /** Raw public key, base64url. */
  publicKey: string;
}

/** A log's signing identity (adapter.ts identity): the key, and the nonce of each replica id. */
export interface StoredIdentity extends StoredSigningKey {
  nonces: { [replicaId: string]: string };
}

/**
 * The identity a log takes for a key (adapter.ts adoptIdentity): a log without own events moves
 * to a replica id derived from it; one with own events keeps its id, which nothing can sign for.
 */
export function adoptedIdentity(
  key: StoredSigningKey,
  ownSeq: number,
): { identity: StoredIdentity; replicaId?: ReplicaId } {
  if (ownSeq > 0) return { identity: { ...key, nonces: {} } };
  const { replicaId, nonce } = newReplicaIdentity(key.publicKey);
  return { identity: { ...key, nonces: { [replicaId]: nonce } }, replicaId };
}

/** A forked log's next replica id (core/append.ts invariant 8), derived when it has a key. */
export function forkedReplica(identity: StoredIdentity | undefined): {
  replicaId: ReplicaId;
  identity?: StoredIdentity;
} {
  if (identity === undefined) return { replicaId: ReplicaId.make() };
  const { replicaId, nonce } = newReplicaIdentity(identity.publicKey);
  return {
    replicaId,
    identity: { ...identity, nonces: { ...identity.nonces, [replicaId]: nonce } },
  };
}

export function isStoredIdentity(value: unknown): value is StoredIdentity {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.secret === 'string' &&
    typeof v.publicKey === 'string' &&
    typeof v.nonces === 'object' &&
    v.nonces !== null &&
    !Array.isArray(v.nonces)
  );
}

function base32(bytes: Uint8Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE32[(bytes[i] ?? 0) & 31];
  return out;
}

/** Invariant 2: the replica id of a public key (base64url) and a nonce. */
export function replicaIdOf(publicKey: string, nonce: string): ReplicaId {
  const digest = sha256Text(`${REPLICA_DOMAIN}${publicKey}.${nonce}`);
  return base32(digest, REPLICA_ID_LENGTH) as ReplicaId;
}

/** A fresh replica id for a public key: a new nonce, so that two clones never share one. */
export function newReplicaIdentity(
  publicKey: string,
  random: RandomBytes = cryptoRandomBytes,
): { replicaId: ReplicaId; nonce: string } {
  const nonce = encodeBase64Url(random(12));
  return { replicaId: replicaIdOf(publicKey, nonce), nonce };
}

/** The replica a `$key` text derives, or undefined when it is not of the form. */
export function replicaOfKeyText(keyText: string): ReplicaId | undefined {
  const parts = keyText.split('.');
  if (parts.length !== 2) return undefined;
  const [publicKey, nonce] = parts as [string, string];
  if (!/^[A-Za-z0-9_-]{43}$/.test(publicKey) || !/^[A-Za-z0-9_-]{1,64}$/.test(nonce)) {
    return undefined;
  }
  return replicaIdOf(publicKey, nonce);
}

export async function generateSigningKey(): Promise<StoredSigningKey> {
  const pair = (await crypto.subtle.generateKey(ED25519, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const [pkcs8, raw] = await Promise.all([
    crypto.subtle.exportKey('pkcs8', pair.privateKey),
    crypto.subtle.exportKey('raw', pair.publicKey),
  ]);
  return {
    secret: encodeBase64Url(new Uint8Array(pkcs8)),
    publicKey: encodeBase64Url(new Uint8Array(raw)),
  };
}

export function isStoredSigningKey(
  value: JsonValue | undefined,
): value is JsonObject & StoredSigningKey {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof value.secret === 'string' &&
    typeof value.publicKey === 'string'
  );
}

export async function importSigningKey(stored: StoredSigningKey): Promise<CryptoKey> {
  return crypto.subtle.importKey('pkcs8', decodeBase64Url(stored.secret), ED25519, false, ['sign']);
}
