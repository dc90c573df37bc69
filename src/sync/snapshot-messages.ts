/**
 * The shapes of joining from a snapshot (protocol.ts invariant 10), checked as strictly as every
 * other message (messages.ts): a hello's `join` request and the `snapshot` answer. A snapshot is
 * installed as it is (core/space-join.ts), so every field of it is checked before anything is
 * taken from it: its numbers, its cursor, its replica ids and the uniqueness of its names.
 *
 * Invariants:
 * 1. A parsed value is a fresh object holding only the fields of its type; a projection's state
 *    is JSON (it came out of JSON.parse) and is kept as it is.
 * 2. `pos` 0 goes with an empty cursor and no event counted, and a cursor with events; every
 *    vector entry is a replica id with a seq of at least 1; no projection or stream is named
 *    twice.
 * 3. A `snapshot` message holds a snapshot, or announces one in parts (`parts` >= 1 and
 *    `length` >= 1, no `snapshot`), or neither; a part's text is never empty.
 */
import type { JsonValue } from '../core/event-map.ts';
import { Cursor, EventId, ReplicaId } from '../core/ids.ts';
import type {
  ProjectionVersion,
  SnapshotState,
  SnapshotStream,
  SpaceSnapshot,
} from '../core/space-snapshot.ts';
import type { JoinRequest, SnapshotMessage, SnapshotPartMessage } from './protocol.ts';

/** Projections a `join` may name (a device runs a few). */
export const MAX_JOIN_PROJECTIONS = 256;
/** The least `join.maxBytes` a side may announce. */
export const MIN_JOIN_BYTES = 1024;
const MAX_NAME_TEXT = 4096;

/** A join or snapshot that does not hold (code PROTOCOL); messages.ts turns it into its error. */
export class SnapshotShapeError extends Error {
  readonly code = 'PROTOCOL' as const;
}

const bad = (message: string) => new SnapshotShapeError(message);

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

function int(value: unknown, what: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw bad(`${what} must be an integer >= ${min}`);
  }
  return value;
}

function name(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_TEXT) {
    throw bad(`${what} must be a non-empty string`);
  }
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw bad(`${what} must be an array`);
  return value;
}

function unique(names: readonly string[], what: string): void {
  if (new Set(names).size !== names.length) throw bad(`${what} names one twice`);
}

function projectionVersion(value: unknown, what: string): ProjectionVersion {
  const o = record(value, what);
  return { name: name(o.name, `${what}.name`), version: int(o.version, `${what}.version`) };
}

/** hello.join (protocol invariant 10). */
export function parseJoin(value: unknown): JoinRequest {
  const o = record(value, 'hello.join');
  const given = list(o.projections, 'hello.join.projections');
  if (given.length > MAX_JOIN_PROJECTIONS) {
    throw bad(`hello.join.projections holds more than ${MAX_JOIN_PROJECTIONS}`);
  }
  const projections = given.map((p, i) => projectionVersion(p, `hello.join.projections[${i}]`));
  unique(
    projections.map((p) => p.name),
    'hello.join.projections',
  );
  const join: JoinRequest = {
    projections,
    maxBytes: int(o.maxBytes, 'hello.join.maxBytes', MIN_JOIN_BYTES),
  };
  if (o.parts !== undefined) {
    if (typeof o.parts !== 'boolean') throw bad('hello.join.parts must be a boolean');
    join.parts = o.parts;
  }
  return join;
}

/** A snapshot's JSON value, as one message or the text of its parts carries it (invariant 2). */
export function parseSnapshot(value: unknown): SpaceSnapshot {
  const o = record(value, 'snapshot.snapshot');
  const pos = int(o.pos, 'snapshot.pos');
  const count = int(o.count, 'snapshot.count');
  const cursor = o.cursor;
  if (cursor !== '' && !Cursor.isValid(cursor)) throw bad('snapshot.cursor must be a cursor');
  // Invariant 2.
  if ((pos === 0) !== (cursor === '') || (count === 0) !== (cursor === '')) {
    throw bad('snapshot.pos, count and cursor disagree on whether it folds any event');
  }
  const projections = list(o.projections, 'snapshot.projections').map((p, i): SnapshotState => {
    const { name, version } = projectionVersion(p, `snapshot.projections[${i}]`);
    const state = (p as { state?: unknown }).state;
    if (state === undefined) throw bad(`snapshot.projections[${i}].state is missing`);
    return { name, version, state: state as JsonValue };
  });
  unique(
    projections.map((p) => p.name),
    'snapshot.projections',
  );
  const streams = list(o.streams, 'snapshot.streams').map((s, i): SnapshotStream => {
    const row = record(s, `snapshot.streams[${i}]`);
    if (typeof row.conflict !== 'boolean') {
      throw bad(`snapshot.streams[${i}].conflict must be a boolean`);
    }
    return {
      stream: name(row.stream, `snapshot.streams[${i}].stream`),
      version: int(row.version, `snapshot.streams[${i}].version`, 1),
      conflict: row.conflict,
    };
  });
  unique(
    streams.map((s) => s.stream),
    'snapshot.streams',
  );
  const vector: Record<string, number> = {};
  for (const [replica, seq] of Object.entries(record(o.vector, 'snapshot.vector'))) {
    if (!ReplicaId.isValid(replica)) throw bad('snapshot.vector must be keyed by replica ids');
    vector[replica] = int(seq, `snapshot.vector.${replica}`, 1);
  }
  if (count > 0 && Object.keys(vector).length === 0) {
    throw bad('snapshot.vector is empty for a snapshot that folds events');
  }
  return { pos, cursor, count, projections, streams, vector };
}

/** A `snapshot-part` message (protocol invariant 10, snapshot-parts.ts). */
export function parseSnapshotPart(o: Record<string, unknown>): SnapshotPartMessage {
  const index = int(o.index, 'snapshot-part.index');
  if (typeof o.text !== 'string' || o.text.length === 0) {
    throw bad('snapshot-part.text must be a non-empty string');
  }
  return { type: 'snapshot-part', index, text: o.text };
}

/** A `snapshot` message (protocol invariant 10). */
export function parseSnapshotMessage(o: Record<string, unknown>): SnapshotMessage {
  const message: SnapshotMessage = { type: 'snapshot' };
  if (o.parts !== undefined || o.length !== undefined) {
    // Invariant 3: the header of a snapshot sent in parts carries no snapshot of its own.
    if (o.snapshot !== undefined) throw bad('snapshot.parts comes without snapshot.snapshot');
    message.parts = int(o.parts, 'snapshot.parts', 1);
    message.length = int(o.length, 'snapshot.length', 1);
  } else if (o.snapshot === undefined) return message;
  else message.snapshot = parseSnapshot(o.snapshot);
  if (o.id !== undefined) {
    if (!EventId.isValid(o.id)) throw bad('snapshot.id must be an event id');
    message.id = o.id;
  }
  return message;
}
