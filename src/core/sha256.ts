/**
 * SHA-256 of a text, synchronously, wherever the code runs. Every event's digest (core/
 * integrity.ts) is one, on the signer, on the server and on every receiver, so its cost is paid
 * three times per event of a catch-up.
 *
 * Invariants:
 * 1. Both implementations give the same 32 bytes for the same text, hashed as UTF-8 (a lone
 *    surrogate as U+FFFD, as TextEncoder and Node's `update(text, 'utf8')` both do).
 * 2. In Node (and any runtime that offers `process.getBuiltinModule`), Node's native hash: about
 *    three times faster than the JS one on an event's canonical text (~2 against ~6 µs). Pages and
 *    workers take @noble/hashes: WebCrypto's digest is asynchronous. Nothing is imported from
 *    `node:` here, so bundles for the browser carry no Node module.
 */
import { sha256 } from '@noble/hashes/sha2.js';

interface NativeHash {
  update(text: string, encoding: 'utf8'): NativeHash;
  digest(): Uint8Array;
}
interface NativeCrypto {
  createHash(algorithm: 'sha256'): NativeHash;
  /** One-shot (Node 20.12+): no hash object a call, a third faster on an event's text. */
  hash?(algorithm: 'sha256', text: string, output: 'buffer'): Uint8Array;
}

const encoder = new TextEncoder();

/** The JS implementation (every runtime). */
export function jsSha256Text(text: string): Uint8Array {
  return sha256(encoder.encode(text));
}

function nativeCrypto(): NativeCrypto | undefined {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } })
    .process;
  try {
    const found = runtime?.getBuiltinModule?.('node:crypto') as NativeCrypto | undefined;
    return typeof found?.createHash === 'function' ? found : undefined;
  } catch {
    return undefined;
  }
}

const native = nativeCrypto();

/** Node's native implementation, where the runtime has one (invariant 2). */
export const nativeSha256Text: ((text: string) => Uint8Array) | undefined =
  native === undefined
    ? undefined
    : (text) => {
        const bytes =
          native.hash?.('sha256', text, 'buffer') ??
          native.createHash('sha256').update(text, 'utf8').digest();
        // A plain Uint8Array over the same bytes: a Buffer's methods differ (slice shares).
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      };

/** SHA-256 of the UTF-8 bytes of `text` (invariant 1). */
export const sha256Text: (text: string) => Uint8Array = nativeSha256Text ?? jsSha256Text;
