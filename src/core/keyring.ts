/**
 * The keys of an encrypted space (end-to-end: no server ever holds one). A space key is 256 bits
 * of material the app brings (raw bytes, an extractable AES key, or a passphrase through
 * keyFromPassphrase); every key used is derived from it with HKDF-SHA-256, one per purpose, so
 * no key does two jobs:
 *   - `data`  AES-256-GCM, seals event data and meta (core/sealing.ts);
 *   - `nonce` HMAC-SHA-256, the synthetic IV of an event with an app-given id (sealing.ts 3);
 *   - `wrap`  AES-256-GCM, wraps older space keys for a rotation (store/encryption.ts);
 *   - the key id: 72 bits, public, names the key on every event it sealed.
 *
 * Invariants:
 * 1. The key id is a function of the material alone: every replica given the same key names it
 *    the same, and the id reveals nothing of the key (an HKDF output, not a hash of the key).
 * 2. The material is kept (as bytes) only to wrap it under a newer key; nothing here stores it.
 * 3. A Keyring holds any number of keys by id and one current key, the one new events use.
 * 4. Where the runtime has native HKDF (Node) the keys are derived with it: the same bits as
 *    WebCrypto's HKDF, so the same key ids and the same working keys.
 */
import { type NativeAead, nativeAead } from './aes-gcm.ts';
import { decodeBase64Url, encodeBase64Url } from './base64.ts';
import { ValidationError } from './errors.ts';

/** What an app may give as a space key: 32 raw bytes, or an extractable 256-bit AES key. */
export type KeyMaterial = CryptoKey | Uint8Array;

export interface SpaceKey {
  /** Public name of the key: 12 url-safe base64 characters. */
  readonly kid: string;
  readonly data: CryptoKey;
  readonly nonce: CryptoKey;
  readonly wrap: CryptoKey;
  /** The material (invariant 2). */
  readonly raw: Uint8Array<ArrayBuffer>;
}

export const KEY_BYTES = 32;
/** PBKDF2 rounds of keyFromPassphrase: OWASP's 2023 advice for PBKDF2-HMAC-SHA-256. */
export const PASSPHRASE_ITERATIONS = 600_000;

const encoder = new TextEncoder();

function subtle(): SubtleCrypto {
  const api = globalThis.crypto?.subtle;
  if (api === undefined) {
    // Browsers hide WebCrypto outside secure contexts (http:// other than localhost).
    throw new ValidationError(
      'encryption',
      'needs WebCrypto (crypto.subtle), which browsers give only to secure contexts (https or localhost)',
    );
  }
  return api;
}

async function rawOf(material: KeyMaterial, path: string): Promise<Uint8Array<ArrayBuffer>> {
  if (material instanceof Uint8Array) {
    if (material.length !== KEY_BYTES) {
      throw new ValidationError(path, `must be ${KEY_BYTES} bytes, not ${material.length}`);
    }
    return new Uint8Array(material);
  }
  if (typeof CryptoKey !== 'undefined' && material instanceof CryptoKey) {
    if (!material.extractable) {
      throw new ValidationError(
        path,
        'must be extractable: it is wrapped under the next key when keys rotate',
      );
    }
    const raw = new Uint8Array(await subtle().exportKey('raw', material));
    if (raw.length !== KEY_BYTES) {
      throw new ValidationError(path, `must be a 256-bit key, not ${raw.length * 8} bits`);
    }
    return raw;
  }
  throw new ValidationError(path, `must be ${KEY_BYTES} bytes (Uint8Array) or a CryptoKey`);
}

/**
 * Derives the space key's working keys from its material (see the header). `engine`: the native
 * one where there is one (invariant 4), `null` for WebCrypto (the tests hold both to one).
 */
export async function spaceKey(
  material: KeyMaterial,
  path = 'encryption.key',
  engine: NativeAead | null = nativeAead ?? null,
): Promise<SpaceKey> {
  const raw = await rawOf(material, path);
  const api = subtle();
  if (engine !== null) return nativeSpaceKey(engine, api, raw);
  const base = await api.importKey('raw', raw, 'HKDF', false, ['deriveKey', 'deriveBits']);
  const hkdf = (info: string) => ({
    name: 'HKDF',
    hash: 'SHA-256',
    salt: new Uint8Array(0),
    info: encoder.encode(`chronicle/${info}`),
  });
  const aes = { name: 'AES-GCM', length: 256 };
  const [idBits, data, nonce, wrap] = await Promise.all([
    api.deriveBits(hkdf('key-id'), base, 72),
    api.deriveKey(hkdf('data'), base, aes, false, ['encrypt', 'decrypt']),
    api.deriveKey(hkdf('nonce'), base, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
    api.deriveKey(hkdf('wrap'), base, aes, false, ['encrypt', 'decrypt']),
  ]);
  return { kid: encodeBase64Url(new Uint8Array(idBits)), data, nonce, wrap, raw };
}

/**
 * spaceKey where the runtime has native HKDF (Node, core/aes-gcm.ts): the same bits derived at
 * once, then imported (invariant 4). Node's WebCrypto runs each derivation as a job, a
 * millisecond a key, and every stream has its own key (store/stream-keys.ts).
 */
async function nativeSpaceKey(
  native: NativeAead,
  api: SubtleCrypto,
  raw: Uint8Array<ArrayBuffer>,
): Promise<SpaceKey> {
  const bits = (info: string, bytes: number) => native.hkdf(raw, `chronicle/${info}`, bytes);
  const aes = { name: 'AES-GCM', length: 256 };
  const [data, nonce, wrap] = await Promise.all([
    api.importKey('raw', bits('data', 32), aes, false, ['encrypt', 'decrypt']),
    // An HMAC key WebCrypto derives without a length is one block of its hash: 512 bits.
    api.importKey('raw', bits('nonce', 64), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
    api.importKey('raw', bits('wrap', 32), aes, false, ['encrypt', 'decrypt']),
  ]);
  return { kid: encodeBase64Url(bits('key-id', 9)), data, nonce, wrap, raw };
}

/**
 * Space keys by id, and the one new events are sealed with (invariant 3). A store without
 * encryption has an empty keyring: it seals nothing and opens nothing, and still tells sealed
 * events apart.
 */
export class Keyring {
  private readonly keys = new Map<string, SpaceKey>();
  readonly current: SpaceKey | undefined;

  constructor(current?: SpaceKey, others: readonly SpaceKey[] = []) {
    this.current = current;
    for (const key of current === undefined ? others : [current, ...others]) {
      this.keys.set(key.kid, key);
    }
  }

  get(kid: string): SpaceKey | undefined {
    return this.keys.get(kid);
  }

  has(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** Adds a key; false when it was known. */
  add(key: SpaceKey): boolean {
    if (this.keys.has(key.kid)) return false;
    this.keys.set(key.kid, key);
    return true;
  }

  /** Forgets a key (a shredded stream's): false when it was not here. */
  remove(kid: string): boolean {
    return this.keys.delete(kid);
  }

  kids(): string[] {
    return [...this.keys.keys()];
  }
}

/**
 * The HMAC key that makes stream pseudonyms (core/sealing.ts invariant 5) from a names secret:
 * a secret of its own, never rotated, since one name must keep one pseudonym for the life of
 * the space.
 */
export async function namesKey(
  material: KeyMaterial,
  path = 'encryption.names',
): Promise<CryptoKey> {
  const raw = await rawOf(material, path);
  const api = subtle();
  const base = await api.importKey('raw', raw, 'HKDF', false, ['deriveKey']);
  return api.deriveKey(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: new Uint8Array(0),
      info: encoder.encode('chronicle/names'),
    },
    base,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
}

/** 32 random bytes: a new space key. */
export function generateEncryptionKey(): Uint8Array<ArrayBuffer> {
  return globalThis.crypto.getRandomValues(new Uint8Array(KEY_BYTES));
}

/** A key as text for a link's `#fragment` (never sent to a server) or a QR code. */
export function encodeEncryptionKey(key: Uint8Array): string {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new ValidationError('key', `must be ${KEY_BYTES} bytes`);
  }
  return encodeBase64Url(key);
}

/** The inverse of encodeEncryptionKey; a ValidationError for anything else. */
export function decodeEncryptionKey(text: string): Uint8Array<ArrayBuffer> {
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = decodeBase64Url(text);
  } catch {
    throw new ValidationError('key', 'is not url-safe base64');
  }
  if (key.length !== KEY_BYTES) throw new ValidationError('key', `must be ${KEY_BYTES} bytes`);
  return key;
}

/**
 * A space key from a passphrase (PBKDF2-HMAC-SHA-256, WebCrypto: no library). The salt must be
 * the same on every device of the space and should differ between spaces: the space's name is a
 * fair choice. Slow on purpose (~0.3 s on a laptop at the default rounds): call it once.
 */
export async function keyFromPassphrase(
  passphrase: string,
  options: { salt: string; iterations?: number },
): Promise<Uint8Array<ArrayBuffer>> {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new ValidationError('passphrase', 'must be a non-empty string');
  }
  if (typeof options?.salt !== 'string' || options.salt.length === 0) {
    throw new ValidationError('salt', 'must be a non-empty string (the space name, say)');
  }
  const iterations = options.iterations ?? PASSPHRASE_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new ValidationError('iterations', 'must be a positive integer');
  }
  const api = subtle();
  const base = await api.importKey('raw', encoder.encode(passphrase), 'PBKDF2', false, [
    'deriveBits',
  ]);
  const bits = await api.deriveBits(
    {
      name: 'PBKDF2',
      hash: 'SHA-256',
      salt: encoder.encode(`chronicle/passphrase/${options.salt}`),
      iterations,
    },
    base,
    KEY_BYTES * 8,
  );
  return new Uint8Array(bits);
}
