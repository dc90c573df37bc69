/**
 * The PostgreSQL storage's 32-bit hash of an id or a stream name (postgres-blocks.ts invariant
 * 13, postgres-history.ts): apart, so that the blocks and the history reads share it without
 * importing each other.
 */
import { createHash } from 'node:crypto';

/** The first 32 bits of the SHA-1 of `id`, as a signed int4. */
export function idHash(id: string): number {
  return createHash('sha1').update(id).digest().readInt32BE(0);
}
