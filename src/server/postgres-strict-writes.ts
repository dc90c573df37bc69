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
import type { StrictHead, StrictRejection } from '../core/strict.ts';
import { key, unkey } from './postgres-rows.ts';

/** A stream of a space: the space as stored, the stream as its rows store it. */
export interface StoredStream {
  space: string;
  stream: string;
}

/** The strict heads of `pairs` that exist (the stream unkeyed). */
export async function readStrictHeads(
  c: PoolClient,
  s: string,
  pairs: readonly StoredStream[],
): Promise<{ space: string; stream: string; head: StrictHead }[]> {
  if (pairs.length === 0) return [];
  const result = await c.query<{ space: string; stream: string; version: string; id: string }>(
    `SELECT h.space, h.stream, h.version, h.id FROM ${s}.strict_heads AS h
     JOIN unnest($1::text[], $2::text[]) AS k(space, stream)
       ON h.space = k.space AND h.stream = k.stream`,
    [pairs.map((k) => k.space), pairs.map((k) => k.stream)],
  );
  return result.rows.map((row) => ({
    space: row.space,
    stream: unkey(row.stream),
    head: { version: Number(row.version), id: unkey(row.id) },
  }));
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
