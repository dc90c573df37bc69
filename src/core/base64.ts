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
 * 3. encodeBase64Url gives the same text whichever way it encodes (native toBase64, Node's
 *    Buffer, the table): sealed texts and signatures are compared and hashed as text.
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

export const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Each ASCII code's value in URL_ALPHABET, -1 for a character outside it. */
export const URL_VALUES = new Int16Array(128).fill(-1);
for (let i = 0; i < URL_ALPHABET.length; i++) URL_VALUES[URL_ALPHABET.charCodeAt(i)] = i;

/** Every 12 bits as its two characters: half the concatenations of one character at a time. */
let urlPairs: string[] | undefined;

function pairsOf(): string[] {
  if (urlPairs === undefined) {
    urlPairs = new Array<string>(4096);
    for (let i = 0; i < 4096; i++) urlPairs[i] = URL_ALPHABET[i >> 6]! + URL_ALPHABET[i & 63]!;
  }
  return urlPairs;
}

/** The engine's own encoder where there is one (Chromium 140, Firefox 133, Safari 18.2). */
const nativeToBase64 = (
  Uint8Array.prototype as {
    toBase64?: (this: Uint8Array, o: { alphabet: 'base64url'; omitPadding: boolean }) => string;
  }
).toBase64;
/** Node's Buffer where there is one (Node 20 has no toBase64): it encodes natively too. */
const nodeBuffer = (
  globalThis as {
    Buffer?: { from(b: ArrayBufferLike, at: number, n: number): { toString(e: string): string } };
  }
).Buffer;
/** Below this many bytes the table beats a native call's overhead (a 12-byte IV). */
const NATIVE_FROM = 48;

/**
 * RFC 4648 §5 without padding: `-` and `_` for `+` and `/`. It runs once per sealed event
 * (core/sealing.ts), on texts of a few hundred bytes, and once per signed event read from
 * IndexedDB (core/segments.ts invariant 7): natively where the engine or Node can (the same
 * text: invariant 3), else by table, two characters a step, not through btoa and replacements.
 */
export function encodeBase64Url(bytes: Uint8Array): string {
  if (bytes.length >= NATIVE_FROM) {
    if (nativeToBase64 !== undefined) {
      return nativeToBase64.call(bytes, { alphabet: 'base64url', omitPadding: true });
    }
    if (nodeBuffer !== undefined) {
      return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64url');
    }
  }
  return encodeBase64UrlByTable(bytes);
}

/** encodeBase64Url by table, exported for the tests (Node has neither toBase64 nor a browser). */
export function encodeBase64UrlByTable(bytes: Uint8Array): string {
  const pairs = pairsOf();
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += pairs[n >> 12]! + pairs[n & 4095]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    out += pairs[bytes[i]! << 4]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += pairs[n >> 12]! + URL_ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

const URL_CODES = Uint8Array.from(URL_ALPHABET, (c) => c.charCodeAt(0));
/** Base64 characters are ASCII: one byte each, read as text in one call. */
const latin1 = new TextDecoder('latin1');

/**
 * `bytes` as chunks of `size` bytes, each encoded alone as encodeBase64Url does, concatenated:
 * for a column of equal-sized values (core/segments.ts `sigs`), one string for all of them,
 * which a caller slices (V8 slices without copying), instead of one string built per value.
 */
export function encodeBase64UrlChunks(bytes: Uint8Array, size: number): string {
  const count = Math.floor(bytes.length / size);
  const per = Math.ceil((size * 4) / 3);
  const out = new Uint8Array(count * per);
  let o = 0;
  for (let c = 0; c < count; c++) {
    const end = (c + 1) * size;
    let i = c * size;
    for (; i + 2 < end; i += 3) {
      const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
      out[o++] = URL_CODES[n >> 18]!;
      out[o++] = URL_CODES[(n >> 12) & 63]!;
      out[o++] = URL_CODES[(n >> 6) & 63]!;
      out[o++] = URL_CODES[n & 63]!;
    }
    if (end - i === 1) {
      const n = bytes[i]! << 16;
      out[o++] = URL_CODES[n >> 18]!;
      out[o++] = URL_CODES[(n >> 12) & 63]!;
    } else if (end - i === 2) {
      const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
      out[o++] = URL_CODES[n >> 18]!;
      out[o++] = URL_CODES[(n >> 12) & 63]!;
      out[o++] = URL_CODES[(n >> 6) & 63]!;
    }
  }
  return latin1.decode(out);
}

/** Text made only of URL_ALPHABET's characters (any length: decodeBase64Url also refuses 4n + 1). */
export const BASE64URL_TEXT = /^[A-Za-z0-9_-]*$/;

/** Throws a SyntaxError when `text` is not url-safe base64 without padding. */
export function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const length = text.length;
  if (length % 4 === 1) throw new SyntaxError('not url-safe base64');
  const out = new Uint8Array(Math.floor((length * 3) / 4));
  let o = 0;
  let bits = 0;
  let value = 0;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    const v = code < 128 ? URL_VALUES[code]! : -1;
    if (v < 0) throw new SyntaxError('not url-safe base64');
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 255;
    }
  }
  return out;
}
