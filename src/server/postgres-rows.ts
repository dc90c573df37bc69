/**
 * Rows of postgresStorage's `events` table: the values an event is stored as, and the event of a
 * row read back; storageError, which every module of postgresStorage words its failures with
 * (here, as this module needs nothing of `pg` at run time); and `within`, their transactions. The
 * invariant numbers refer to the header of postgres.ts.
 *
 * The queried columns (id, replica, seq, stream, cursor) are keyed (invariant 9); `body` holds the
 * JSON of the whole event (invariant 4). The data's JSON text, made when the event is written, is
 * remembered for the batches that forward the event (rememberDataText): the recent records and
 * every live connection reuse it instead of stringifying the data again.
 *
 * Not split as sqliteStorage's body is (data in a text of its own): measured here, a split body
 * saved 0.6 µs an event on ingest (one stringify of the data fewer) and cost as much or more on
 * a catch-up read from the database (two parses and a remembered text per event: reading and
 * encoding 20,000 events took 3-15 % longer), and older servers sharing the database could not
 * read its rows.
 */
import type { PoolClient } from 'pg';
import { SeqConflictError, StorageError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { rememberDataText } from '../sync/event-codec.ts';

/** A failure of `operation` as a StorageError; a StorageError or SeqConflictError is passed on. */
export function storageError(operation: string, error: unknown): StorageError | SeqConflictError {
  // A refused batch (core/copies.ts) keeps its code: the session answers SEQ_CONFLICT.
  if (error instanceof StorageError || error instanceof SeqConflictError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError('STORAGE', `postgres ${operation} failed: ${message}`, { operation });
}

/** The stored form of a string (invariant 9). */
export function key(value: string): string {
  return JSON.stringify(value);
}

export function unkey(stored: string): string {
  return JSON.parse(stored) as string;
}

/** An event turned into the values of its row, all but its position (known under the lock). */
export interface EventRow {
  event: StoredEventRecord;
  /** The id as stored: the dedupe key (invariant 3). */
  id: string;
  replica: string;
  seq: number;
  stream: string;
  cursor: string;
  body: string;
}

/** The row of `event`; remembers the data's text for forwarding. */
export function eventRow(event: StoredEventRecord): EventRow {
  rememberDataText(event, JSON.stringify(event.data) ?? 'null');
  return {
    event,
    id: key(event.id),
    replica: key(event.replica),
    seq: event.seq,
    stream: key(event.stream),
    cursor: key(event.cursor),
    body: JSON.stringify(event),
  };
}

/** The event of a row; JSON.parse keeps `__proto__` keys as plain data. */
export function eventOfRow(row: { body: string }): StoredEventRecord {
  return JSON.parse(row.body) as StoredEventRecord;
}

/** `fn` in a transaction begun by `begin`, rolled back when it throws. */
export async function within<T>(c: PoolClient, begin: string, fn: () => Promise<T>): Promise<T> {
  await c.query(begin);
  try {
    const result = await fn();
    await c.query('COMMIT');
    return result;
  } catch (error) {
    // A failed ROLLBACK leaves the connection broken: run() (postgres.ts) drops it then.
    await c.query('ROLLBACK');
    throw error;
  }
}
