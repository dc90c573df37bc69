/**
 * How a space snapshot's body (its states, streams and vector) is stored by both server
 * storages: the JSON text, deflated (raw DEFLATE, node:zlib) when it is large.
 *
 * Invariants:
 * 1. decodeSnapshotBody(encodeSnapshotBody(b)) equals b as JSON values.
 * 2. A body under DEFLATE_FROM bytes is stored as its text: deflating it gains little and costs a
 *    call. `deflated` says which; the flag is stored beside the bytes.
 * 3. Compression runs on libuv's pool (the async zlib calls), not on the event loop the sessions
 *    share.
 */
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw } from 'node:zlib';
import type { SpaceSnapshot } from '../core/space-snapshot.ts';

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/** invariant 2. */
export const DEFLATE_FROM = 1024;

export type SnapshotBody = Pick<SpaceSnapshot, 'projections' | 'streams' | 'vector'>;

export interface EncodedBody {
  bytes: Buffer;
  deflated: boolean;
}

export async function encodeSnapshotBody(body: SnapshotBody): Promise<EncodedBody> {
  const text = Buffer.from(
    JSON.stringify({ projections: body.projections, streams: body.streams, vector: body.vector }),
    'utf8',
  );
  if (text.length < DEFLATE_FROM) return { bytes: text, deflated: false };
  return { bytes: await deflate(text), deflated: true };
}

export async function decodeSnapshotBody(
  bytes: Uint8Array,
  deflated: boolean,
): Promise<SnapshotBody> {
  const text = deflated ? await inflate(bytes) : Buffer.from(bytes);
  return JSON.parse(text.toString('utf8')) as SnapshotBody;
}
