/**
 * Rows of the SQLite server storage's `events` table (sqlite.ts): the body column's form, and
 * the bulk statements an ingest uses (ids looked up and rows inserted many per statement).
 */
import type Database from 'better-sqlite3';
import { slotOf } from '../core/copies.ts';
import { SeqConflictError, StorageError } from '../core/errors.ts';
import type { JsonObject, JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import { decodeHlc } from '../core/hlc.ts';
import type { Cursor, EventId, Hlc, ReplicaId, Seq } from '../core/ids.ts';
import { rememberDataText } from '../sync/event-codec.ts';

/**
 * The body column (invariant 4): what the other columns do not hold, as `<JSON of type, version,
 * hlc, meta?, schema?>` + "\n" + `<JSON of data>`. A raw line feed never occurs in JSON.stringify's
 * output, so the first one splits the two; the data's text is made once, kept for the batches
 * that forward the event (rememberDataText), written and read back without stringifying again.
 */
export function storedBody(event: StoredEventRecord): string {
  // The head is written by hand: a template costs a fifth of JSON.stringify on an object. An HLC
  // is validated base-36 text and a version an integer, so neither needs escaping.
  let head = `{"type":${JSON.stringify(event.type)},"version":${event.version},"hlc":"${event.hlc}"`;
  if (event.meta !== undefined) head += `,"meta":${JSON.stringify(event.meta)}`;
  if (event.schema !== undefined) head += `,"schema":${event.schema}`;
  const dataText = JSON.stringify(event.data) ?? 'null';
  rememberDataText(event, dataText);
  return `${head}}\n${dataText}`;
}

interface BodyFields {
  type: string;
  version: number;
  hlc: string;
  meta?: JsonObject;
  schema?: number;
  data?: JsonValue;
}

export interface StoredRow {
  pos: number;
  id: string;
  replica: string;
  seq: number;
  stream: string;
  cursor: string;
  body: string;
}

/**
 * The event of a row, its data text remembered for forwarding (no stringify again). Rows of older
 * files hold one JSON body: the whole event, or the fields above with `data` among them.
 */
export function eventOfRow(row: StoredRow): StoredEventRecord {
  const split = row.body.indexOf('\n');
  const dataText = split < 0 ? undefined : row.body.slice(split + 1);
  const body = JSON.parse(split < 0 ? row.body : row.body.slice(0, split)) as BodyFields & {
    replica?: string;
  };
  if (body.replica !== undefined) return body as unknown as StoredEventRecord;
  const event: StoredEventRecord = {
    id: row.id as EventId,
    type: body.type,
    data: dataText === undefined ? (body.data ?? null) : (JSON.parse(dataText) as JsonValue),
    stream: row.stream,
    version: body.version,
    replica: row.replica as ReplicaId,
    seq: row.seq as Seq,
    hlc: body.hlc as Hlc,
    time: decodeHlc(body.hlc).wall,
    cursor: row.cursor as Cursor,
  };
  if (body.meta !== undefined) event.meta = body.meta;
  if (body.schema !== undefined) event.schema = body.schema;
  if (dataText !== undefined) rememberDataText(event, dataText);
  return event;
}

/** Ids per lookup and rows per insert statement: many rows per statement, few statements. */
const ID_CHUNK = 64;
const ROW_CHUNK = 32;
const EVENT_COLUMNS = 8;
const statementCache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

function cached(db: Database.Database, sql: string): Database.Statement {
  let byText = statementCache.get(db);
  if (byText === undefined) {
    byText = new Map();
    statementCache.set(db, byText);
  }
  let statement = byText.get(sql);
  if (statement === undefined) {
    statement = db.prepare(sql);
    byText.set(sql, statement);
  }
  return statement;
}

/** The ids among `events` that the space holds, looked up ID_CHUNK at a time. */
export function storedIds(
  db: Database.Database,
  space: string,
  events: readonly { id: string }[],
): Set<string> {
  const found = new Set<string>();
  for (let i = 0; i < events.length; i += ID_CHUNK) {
    const ids = events.slice(i, i + ID_CHUNK).map((e) => e.id);
    const marks = ids.map(() => '?').join(',');
    const select = cached(db, `SELECT id FROM events WHERE space = ? AND id IN (${marks})`);
    for (const id of select.pluck().all(space, ...ids)) found.add(id as string);
  }
  return found;
}

const ROW_COLUMNS = 'pos, id, replica, seq, stream, cursor, body';

/** The held records with the ids of `events`, by id (core/copies.ts), ID_CHUNK ids a statement. */
export function heldById(
  db: Database.Database,
  space: string,
  events: readonly { id: string }[],
): Map<string, LocalRecord> {
  const found = new Map<string, LocalRecord>();
  for (let i = 0; i < events.length; i += ID_CHUNK) {
    const ids = events.slice(i, i + ID_CHUNK).map((e) => e.id);
    const marks = ids.map(() => '?').join(',');
    const select = cached(
      db,
      `SELECT ${ROW_COLUMNS} FROM events WHERE space = ? AND id IN (${marks})`,
    );
    for (const row of select.all(space, ...ids) as StoredRow[]) {
      found.set(row.id, { pos: row.pos, event: eventOfRow(row) });
    }
  }
  return found;
}

/**
 * The held records at the (replica, seq) of `events`, by slot (core/copies.ts slotOf); where a
 * file written before the slot index holds a slot twice, the copy first in the total order.
 */
export function heldBySlot(
  db: Database.Database,
  space: string,
  events: readonly StoredEventRecord[],
): Map<string, LocalRecord> {
  const found = new Map<string, LocalRecord>();
  for (let i = 0; i < events.length; i += ID_CHUNK) {
    const part = events.slice(i, i + ID_CHUNK);
    const marks = part.map(() => '(?, ?)').join(',');
    const select = cached(
      db,
      `SELECT ${ROW_COLUMNS} FROM events WHERE space = ? AND (replica, seq) IN (VALUES ${marks})`,
    );
    const params = part.flatMap((e) => [e.replica, e.seq]);
    for (const row of select.all(space, ...params) as StoredRow[]) {
      const record = { pos: row.pos, event: eventOfRow(row) };
      const slot = slotOf(record.event);
      const held = found.get(slot);
      if (held === undefined || record.event.cursor < held.event.cursor) found.set(slot, record);
    }
  }
  return found;
}

/** Inserts rows of EVENT_COLUMNS values each, ROW_CHUNK rows per statement. */
export function insertRows(db: Database.Database, values: readonly unknown[]): void {
  const rowText = `(${Array(EVENT_COLUMNS).fill('?').join(',')})`;
  const chunk = ROW_CHUNK * EVENT_COLUMNS;
  for (let i = 0; i < values.length; i += chunk) {
    const part = values.slice(i, i + chunk);
    const rows = Array(part.length / EVENT_COLUMNS)
      .fill(rowText)
      .join(',');
    cached(
      db,
      `INSERT INTO events (space, pos, id, replica, seq, stream, cursor, body) VALUES ${rows}`,
    ).run(...part);
  }
}

/** A failure of `operation` as a StorageError; a StorageError or SeqConflictError is passed on. */
export function storageError(operation: string, error: unknown): StorageError | SeqConflictError {
  if (error instanceof StorageError || error instanceof SeqConflictError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError('STORAGE', `sqlite ${operation} failed: ${message}`, { operation });
}
