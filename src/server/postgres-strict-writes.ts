/**
 * The statements of strict streams (core/strict.ts) in a group's ingest on PostgreSQL
 * (postgres-ingest.ts): their heads, read under the spaces' locks and written with the group, and
 * the rejections each ingest keeps with its write (storage.ts rejectionsOf).
 *
 * Invariants:
 * 1. An empty list takes no statement at all: most groups touch no strict stream.
 * 2. Streams, ids and replicas are stored as keys (postgres-rows.ts key/unkey, postgres.ts
 *    invariant 9); what these functions take and give is named as the app names it, except the
 *    pairs read, which are rows' streams as stored.
 */
import type { PoolClient } from 'pg';
import type { LocalRecord } from '../core/events.ts';
import {
  predecessorsToRead,
  type StrictCandidate,
  type StrictHead,
  type StrictOrigin,
  type StrictRejection,
} from '../core/strict.ts';
import type { BlockDecoder } from './archive-files.ts';
import { sealedCandidates } from './postgres-blocks.ts';
import { heldRows } from './postgres-event-rows.ts';
import { key, unkey } from './postgres-rows.ts';

/** A stream of a space: the space as stored, the stream as its rows store it. */
export interface StoredStream {
  space: string;
  stream: string;
}

/**
 * The strict heads of `pairs` that exist (the stream unkeyed), with the origin of the head's
 * event where a row holds it (core/strict.ts invariant 8; a sealed head has none).
 */
export async function readStrictHeads(
  c: PoolClient,
  s: string,
  pairs: readonly StoredStream[],
): Promise<{ space: string; stream: string; head: StrictHead; origin?: StrictOrigin }[]> {
  if (pairs.length === 0) return [];
  const result = await c.query<{
    space: string;
    stream: string;
    version: string;
    id: string;
    replica: string | null;
    seq: string | null;
  }>(
    `SELECT h.space, h.stream, h.version, h.id, e.replica, e.seq FROM ${s}.strict_heads AS h
     JOIN unnest($1::text[], $2::text[]) AS k(space, stream)
       ON h.space = k.space AND h.stream = k.stream
     LEFT JOIN ${s}.events AS e ON e.space = h.space AND e.id = h.id`,
    [pairs.map((k) => k.space), pairs.map((k) => k.stream)],
  );
  return result.rows.map((row) => ({
    space: row.space,
    stream: unkey(row.stream),
    head: { version: Number(row.version), id: unkey(row.id) },
    ...(row.replica === null || row.seq === null
      ? {}
      : { origin: { replica: unkey(row.replica), seq: Number(row.seq) } }),
  }));
}

/**
 * Adds to `origins` those of the heads no row holds (compaction sealed them into blocks) that
 * the group's events name as `prev` (core/strict.ts invariant 8). `space` as stored.
 */
export async function sealedHeadOrigins(
  c: PoolClient,
  s: string,
  space: string,
  heads: ReadonlyMap<string, StrictHead>,
  origins: Map<string, StrictOrigin>,
  named: ReadonlySet<string | undefined>,
  decode: BlockDecoder,
): Promise<void> {
  const missing = [...heads].filter(([stream, head]) => !origins.has(stream) && named.has(head.id));
  if (missing.length === 0) return;
  const ids = missing.map(([, head]) => ({ id: head.id }));
  const found = await sealedCandidates(c, s, space, { ids, slots: [] }, decode);
  const byId = new Map<string, LocalRecord['event']>(found.map((r) => [r.event.id, r.event]));
  for (const [stream, head] of missing) {
    const event = byId.get(head.id);
    if (event !== undefined) origins.set(stream, { replica: event.replica, seq: event.seq });
  }
}

/**
 * Adds to `byId` the held events (rows, then blocks) that the group's strict events of streams
 * without a head name as `prev` (core/strict.ts invariant 10). `space` as stored.
 */
export async function heldPredecessors(
  c: PoolClient,
  s: string,
  space: string,
  events: readonly StrictCandidate[],
  heads: ReadonlyMap<string, StrictHead>,
  byId: Map<string, LocalRecord>,
  decode: BlockDecoder,
): Promise<void> {
  const ids = predecessorsToRead(events, heads).filter((id) => !byId.has(id));
  if (ids.length === 0) return;
  const rows = await heldRows(
    c,
    s,
    'id = k.a',
    ids.map(() => space),
    ids.map(key),
  );
  for (const { record } of rows) byId.set(record.event.id, record);
  const sealed = ids.filter((id) => !byId.has(id));
  if (sealed.length === 0) return;
  const wanted = new Set(sealed);
  const found = await sealedCandidates(
    c,
    s,
    space,
    { ids: sealed.map((id) => ({ id })), slots: [] },
    decode,
  );
  for (const record of found) if (wanted.has(record.event.id)) byId.set(record.event.id, record);
}

/** Stores the strict heads a group moved, in its transaction. */
export async function writeStrictHeads(
  c: PoolClient,
  s: string,
  moved: readonly { space: string; stream: string; head: StrictHead }[],
): Promise<void> {
  if (moved.length === 0) return;
  await c.query(
    `INSERT INTO ${s}.strict_heads (space, stream, version, id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
     ON CONFLICT (space, stream) DO UPDATE SET version = excluded.version, id = excluded.id`,
    [
      moved.map((r) => r.space),
      moved.map((r) => key(r.stream)),
      moved.map((r) => r.head.version),
      moved.map((r) => key(r.head.id)),
    ],
  );
}

/** Keeps the rejections of written ingests, each under its space and (replica, seq). */
export async function keepRejections(
  c: PoolClient,
  s: string,
  rejections: readonly { space: string; rejection: StrictRejection }[],
): Promise<void> {
  if (rejections.length === 0) return;
  await c.query(
    `INSERT INTO ${s}.strict_rejections (space, replica, seq, body)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
     ON CONFLICT (space, replica, seq) DO UPDATE SET body = excluded.body`,
    [
      rejections.map((r) => r.space),
      rejections.map((r) => key(r.rejection.replica)),
      rejections.map((r) => r.rejection.seq),
      rejections.map((r) => JSON.stringify(r.rejection)),
    ],
  );
}
