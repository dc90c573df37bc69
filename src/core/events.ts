/**
 * The event shapes every layer shares.
 *
 * Invariants:
 * 1. `id` is globally unique; the log is a grow-only set keyed by it.
 * 2. `(replica, seq)` names the event's origin; `seq` is dense per replica, starting at 1.
 * 3. `cursor` = order key of (hlc, replica, seq); every replica sorts its log by it.
 * 4. `version` is the event's position in its stream on the origin replica, starting at 1.
 */
import type { Cursor, EventId, Hlc, ReplicaId, Seq } from './ids.ts';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What the application appends. */
export interface NewEvent<E = unknown> {
  type: string;
  data: E;
  meta?: JsonObject;
  /** Supply your own id to make retries idempotent; generated otherwise. */
  id?: string;
  /** Schema version of `data`, default 1; upcasters lift old schemas on read. */
  schema?: number;
}

/** An event as stored and replicated. */
export interface StoredEvent<E = unknown> {
  id: string;
  type: string;
  data: E;
  meta?: JsonObject;
  schema?: number;
  stream: string;
  version: number;
  replica: string;
  seq: number;
  hlc: string;
  /** Milliseconds since the epoch: the wall time of the event's HLC on its origin. */
  time: number;
  cursor: string;
}

/** The branded view of a StoredEvent, used inside the library. */
export interface StoredEventRecord extends StoredEvent<JsonValue> {
  id: EventId;
  replica: ReplicaId;
  seq: Seq;
  hlc: Hlc;
  cursor: Cursor;
}

export type ExpectedVersion = number | 'any' | 'none';

/** A stored event plus its position in this replica's receive-order log (never sent on the wire). */
export interface LocalRecord {
  event: StoredEventRecord;
  /** Dense, 1-based position in this replica's local log (receive order). */
  pos: number;
}
