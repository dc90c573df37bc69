/**
 * Base64 for Yjs updates inside JSON events, without Node's Buffer: this code runs in browsers
 * and workers too. `btoa`/`atob` exist in every browser, in workers and in Node ≥ 16.
 *
 * Invariants:
 * 1. decodeBase64(encodeBase64(bytes)) equals bytes for every Uint8Array.
 * 2. Bytes go through String.fromCharCode in chunks: spreading a large array into one call
 *    overflows the argument limit of some engines (~64k in JavaScriptCore).
 */

const CHUNK = 0x8000;

export function encodeBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Throws (a DOMException from atob) when `text` is not base64. */
export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
