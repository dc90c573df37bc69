/**
 * SHA-256 of a text, synchronously, wherever the code runs. Every event's digest (core/
 * integrity.ts) is one, on the signer, on the server and on every receiver, and so is every node
 * of a signing tree (core/sign-trees.ts): about two a received event.
 *
 * Invariants:
 * 1. Both implementations give the same 32 bytes for the same text, hashed as UTF-8 (a lone
 *    surrogate as U+FFFD, as TextEncoder and Node's `update(text, 'utf8')` both do), and the
 *    standard's (FIPS 180-4) answers: the tests hold each to Node's and to WebCrypto's.
 * 2. In Node (and any runtime that offers `process.getBuiltinModule`), Node's native hash: about
 *    twice as fast as the JS one on an event's canonical text (~2.5 against ~5 µs, the hardware's
 *    SHA instructions against ~0.7 µs a block in JS). Nothing is imported from `node:` here, so
 *    bundles for the browser carry none of it.
 * 3. Pages and workers take the JS one: WebCrypto's digest is asynchronous. It encodes the text
 *    into one buffer kept between calls and compresses it there, and allocates only the 32 bytes
 *    it returns: a library's hash (@noble/hashes, which this replaced) took ~15 µs a call in
 *    Chromium, most of it in TextEncoder and the objects a call makes, not in the rounds.
 *    Nothing in it depends on secret data through memory access (no tables indexed by the
 *    input), and what it hashes is public to the receiver anyway.
 */

interface NativeHash {
  update(text: string, encoding: 'utf8'): NativeHash;
  digest(): Uint8Array;
}
interface NativeCrypto {
  createHash(algorithm: 'sha256'): NativeHash;
  /** One-shot (Node 20.12+): no hash object a call, a third faster on an event's text. */
  hash?(algorithm: 'sha256', text: string, output: 'buffer'): Uint8Array;
}

/** The round constants (FIPS 180-4, 4.2.2), as the int32 the arithmetic below works in. */
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
/** The initial hash value (FIPS 180-4, 5.3.3). */
const INITIAL = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

// Kept between calls (invariant 3): the message schedule, the state, and the padded message.
const schedule = new Int32Array(64);
const state = new Int32Array(8);
let message = new Uint8Array(1024);

/** Writes `text` as UTF-8 at the start of `message` (grown to hold it padded); its length. */
function encodeMessage(text: string): number {
  const n = text.length;
  // Each UTF-16 unit takes at most 3 bytes (a pair, 4 for 2); 72 for the padding.
  if (message.length < n * 3 + 72) message = new Uint8Array(n * 3 + 72);
  const out = message;
  let at = 0;
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[at++] = c;
      continue;
    }
    if (c < 0x800) {
      out[at++] = 0xc0 | (c >> 6);
      out[at++] = 0x80 | (c & 63);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const point = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        out[at++] = 0xf0 | (point >> 18);
        out[at++] = 0x80 | ((point >> 12) & 63);
        out[at++] = 0x80 | ((point >> 6) & 63);
        out[at++] = 0x80 | (point & 63);
        continue;
      }
      c = 0xfffd; // a lone surrogate (invariant 1)
    }
    out[at++] = 0xe0 | (c >> 12);
    out[at++] = 0x80 | ((c >> 6) & 63);
    out[at++] = 0x80 | (c & 63);
  }
  return at;
}

/** FIPS 180-4, 6.2.2: one 64-byte block of `message` at `offset` into `state`. */
function compress(offset: number): void {
  const w = schedule;
  const m = message;
  for (let t = 0, j = offset; t < 16; t++, j += 4) {
    w[t] = (m[j]! << 24) | (m[j + 1]! << 16) | (m[j + 2]! << 8) | m[j + 3]!;
  }
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15]!;
    const y = w[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[t]! + w[t]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** The JS implementation (every runtime; invariant 3). */
export function jsSha256Text(text: string): Uint8Array {
  const length = encodeMessage(text);
  // FIPS 180-4, 5.1.1: a 1 bit, zeros, and the length in bits as 64 bits, to a multiple of 64.
  const padded = ((length + 9 + 63) >> 6) << 6;
  const m = message;
  m[length] = 0x80;
  m.fill(0, length + 1, padded - 8);
  const bits = length * 8;
  const high = Math.floor(bits / 0x1_0000_0000);
  m[padded - 8] = high >>> 24;
  m[padded - 7] = high >>> 16;
  m[padded - 6] = high >>> 8;
  m[padded - 5] = high;
  m[padded - 4] = bits >>> 24;
  m[padded - 3] = bits >>> 16;
  m[padded - 2] = bits >>> 8;
  m[padded - 1] = bits;
  state.set(INITIAL);
  for (let offset = 0; offset < padded; offset += 64) compress(offset);
  const digest = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    digest[i * 4] = v >>> 24;
    digest[i * 4 + 1] = v >>> 16;
    digest[i * 4 + 2] = v >>> 8;
    digest[i * 4 + 3] = v;
  }
  return digest;
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
