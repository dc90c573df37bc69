/**
 * Base64 for bytes inside JSON (Yjs updates, sealed events, keys in links), without Node's
 * Buffer: this code runs in browsers and workers too. `btoa`/`atob` exist in every browser, in
 * workers and in Node ≥ 16. The url-safe form (RFC 4648 §5, no padding) goes where the text may
 * end up in a URL: keys in a link's fragment, sealed event data.
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
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** RFC 4648 §5 without padding: `-` and `_` for `+` and `/`. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Throws (a DOMException from atob) when `text` is not url-safe base64. */
export function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  if (/[+/=]/.test(text)) throw new SyntaxError('not url-safe base64');
  return decodeBase64(text.replace(/-/g, '+').replace(/_/g, '/'));
}
