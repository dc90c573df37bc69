/**
 * The SQLite server storage's 47-bit hash of an id or a stream name (sqlite-blocks.ts invariant 3,
 * sqlite-history.ts): apart, so that the blocks and the history reads share it without
 * importing each other.
 */

/** Two 32-bit multiplicative hashes, 15 + 32 bits: an integer SQLite keeps in 6 bytes. */
export function idHash(id: string): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  b ^= b >>> 15;
  b = Math.imul(b, 0x2c1b3c6d);
  b ^= b >>> 12;
  return (a >>> 17) * 2 ** 32 + (b >>> 0);
}
