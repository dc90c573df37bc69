/**
 * AES-256-GCM, HMAC-SHA-256 and HKDF synchronously, through Node's native crypto where the runtime has
 * it (core/sealing.ts seals and opens with it). Node's WebCrypto runs every call as a job of its
 * own and answers through a promise: tens of microseconds an event, where a native cipher takes a
 * few. Pages and workers keep WebCrypto (its calls are cheaper there, and it is all they have).
 *
 * Invariants:
 * 1. The same bytes as WebCrypto: AES-GCM with the caller's 12-byte IV, additional data and a
 *    16-byte tag after the ciphertext (WebCrypto's default tagLength, 128); HMAC-SHA-256 of the
 *    UTF-8 of the texts in turn (a lone surrogate as U+FFFD, as TextEncoder does). The sealed
 *    text is url-safe base64 without padding of iv ‖ ciphertext ‖ tag, as encodeBase64Url gives.
 *    HKDF-SHA-256 with an empty salt gives the bits WebCrypto's deriveBits gives.
 * 2. open never throws: a wrong tag, a text shorter than an IV and a tag, or a text that is not
 *    url-safe base64 without padding (exactly what decodeBase64Url refuses: Node's decoder skips
 *    what it does not know, so the text is checked first) give undefined.
 * 3. A CryptoKey is turned into Node's KeyObject once (KeyObject.from reads the key's handle, so
 *    non-extractable keys work too) and kept beside it in a WeakMap: the key's life is the map's.
 * 4. Nothing is imported from `node:` here (process.getBuiltinModule, as core/sha256.ts does):
 *    bundles for the browser carry no Node module, and there `nativeAead` is undefined.
 */
import { BASE64URL_TEXT } from './base64.ts';

export interface NativeAead {
  /** url-safe base64 of iv ‖ AES-256-GCM(key, iv, aad, utf8(text)) ‖ tag (invariant 1). */
  seal(key: CryptoKey, iv: Uint8Array, aad: Uint8Array, text: string): string;
  /** The plaintext of a sealed text, as UTF-8 text; undefined when it does not open (2). */
  open(key: CryptoKey, aad: Uint8Array, sealed: string): string | undefined;
  /** HMAC-SHA-256 under `key` of the UTF-8 of `texts`, one after the other (invariant 1). */
  hmac(key: CryptoKey, texts: readonly string[]): Uint8Array;
  /** HKDF-SHA-256 of `secret` with an empty salt: WebCrypto's deriveBits, without a job. */
  hkdf(secret: Uint8Array, info: string, bytes: number): Uint8Array<ArrayBuffer>;
}

interface NodeBytes extends Uint8Array {
  toString(encoding?: 'base64url' | 'utf8'): string;
}
interface NodeCipher {
  setAAD(aad: Uint8Array): NodeCipher;
  update(data: string, encoding: 'utf8'): NodeBytes;
  final(): NodeBytes;
  getAuthTag(): NodeBytes;
}
interface NodeDecipher {
  setAAD(aad: Uint8Array): NodeDecipher;
  setAuthTag(tag: Uint8Array): NodeDecipher;
  update(data: Uint8Array): NodeBytes;
  final(): NodeBytes;
}
interface NodeHmac {
  update(text: string, encoding: 'utf8'): NodeHmac;
  digest(): NodeBytes;
}
type KeyObject = object;
interface NodeCrypto {
  KeyObject: { from(key: CryptoKey): KeyObject };
  createCipheriv(
    algorithm: 'aes-256-gcm',
    key: KeyObject,
    iv: Uint8Array,
    options: { authTagLength: number },
  ): NodeCipher;
  createDecipheriv(
    algorithm: 'aes-256-gcm',
    key: KeyObject,
    iv: Uint8Array,
    options: { authTagLength: number },
  ): NodeDecipher;
  createHmac(algorithm: 'sha256', key: KeyObject): NodeHmac;
  hkdfSync(
    digest: 'sha256',
    secret: Uint8Array,
    salt: Uint8Array,
    info: string,
    bytes: number,
  ): ArrayBuffer;
}
interface NodeBuffer {
  allocUnsafeSlow(size: number): NodeBytes & {
    toString(encoding: 'base64url', start: number, end: number): string;
  };
  from(text: string, encoding: 'base64url'): NodeBytes;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const GCM = { authTagLength: TAG_BYTES };
const NO_SALT = new Uint8Array(0);
const OUT_MAX = 1024 * 1024;

function builtin<T>(id: string, probe: keyof T): T | undefined {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } })
    .process;
  try {
    const found = runtime?.getBuiltinModule?.(id) as T | undefined;
    return typeof found?.[probe] === 'function' ? found : undefined;
  } catch {
    return undefined;
  }
}

function nativeOf(node: NodeCrypto, buffer: NodeBuffer): NativeAead {
  const handles = new WeakMap<CryptoKey, KeyObject>();
  // Invariant 3.
  const handle = (key: CryptoKey): KeyObject => {
    let found = handles.get(key);
    if (found === undefined) {
      found = node.KeyObject.from(key);
      handles.set(key, found);
    }
    return found;
  };
  // iv ‖ ciphertext ‖ tag is put together here, then encoded: toString copies out of it.
  let out = buffer.allocUnsafeSlow(4096);
  return {
    seal(key, iv, aad, text) {
      const cipher = node.createCipheriv('aes-256-gcm', handle(key), iv, GCM).setAAD(aad);
      const body = cipher.update(text, 'utf8');
      // GCM is a stream mode: final() adds no byte, it computes the tag.
      cipher.final();
      const length = IV_BYTES + body.length + TAG_BYTES;
      // A text larger than OUT_MAX gets a buffer of its own: the shared one is not kept that big.
      if (length > out.length && length <= OUT_MAX) {
        out = buffer.allocUnsafeSlow(Math.max(length, out.length * 2));
      }
      const into = length <= out.length ? out : buffer.allocUnsafeSlow(length);
      into.set(iv);
      into.set(body, IV_BYTES);
      into.set(cipher.getAuthTag(), IV_BYTES + body.length);
      return into.toString('base64url', 0, length);
    },
    open(key, aad, sealed) {
      if (sealed.length % 4 === 1 || !BASE64URL_TEXT.test(sealed)) return undefined;
      const bytes = buffer.from(sealed, 'base64url');
      if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
      const end = bytes.length - TAG_BYTES;
      try {
        const decipher = node
          .createDecipheriv('aes-256-gcm', handle(key), bytes.subarray(0, IV_BYTES), GCM)
          .setAAD(aad)
          .setAuthTag(bytes.subarray(end));
        const plain = decipher.update(bytes.subarray(IV_BYTES, end));
        // Throws when the tag is wrong: the plaintext above is used only after it.
        decipher.final();
        return plain.toString('utf8');
      } catch {
        return undefined;
      }
    },
    hmac(key, texts) {
      const mac = node.createHmac('sha256', handle(key));
      for (const text of texts) mac.update(text, 'utf8');
      const digest = mac.digest();
      return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
    },
    hkdf(secret, info, bytes) {
      return new Uint8Array(node.hkdfSync('sha256', secret, NO_SALT, info, bytes));
    },
  };
}

function nativeAeadOf(): NativeAead | undefined {
  const node = builtin<NodeCrypto>('node:crypto', 'createCipheriv');
  const buffer = builtin<{ Buffer: NodeBuffer }>('node:buffer', 'Buffer')?.Buffer;
  const complete =
    typeof node?.KeyObject?.from === 'function' && typeof node.hkdfSync === 'function';
  if (node === undefined || buffer === undefined || !complete) {
    return undefined;
  }
  return nativeOf(node, buffer);
}

/** Node's native AES-GCM and HMAC, where the runtime has them (invariant 4). */
export const nativeAead: NativeAead | undefined = nativeAeadOf();
