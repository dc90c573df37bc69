/**
 * Rows of the SQLite server storage's `events` table (sqlite.ts): the body column's form, and
 * the bulk statements an ingest uses (ids looked up and rows inserted many per statement).
 */
import type Database from 'better-sqlite3';
import type { JsonObject, JsonValue, StoredEventRecord } from '../core/events.ts';
import { decodeHlc } from '../core/hlc.ts';
import type { Cursor, EventId, Hlc, ReplicaId, Seq } from '../core/ids.ts';
import { rememberDataText } from '../sync/event-codec.ts';

/**
 * The body column (invariant 4): what the other columns do not hold. The data's JSON text is made
 * once, kept for the batches that forward the event (rememberDataText), and spliced in.
 */
export function storedBody(event: StoredEventRecord): string {
  const rest: BodyFields = { type: event.type, version: event.version, hlc: event.hlc };
  if (event.meta !== undefined) rest.meta = event.meta;
  if (event.schema !== undefined) rest.schema = event.schema;
  const dataText = JSON.stringify(event.data) ?? 'null';
  rememberDataText(event, dataText);
  return `${JSON.stringify(rest).slice(0, -1)},"data":${dataText}}`;
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

/** The event of a row; files written before bodies were split hold the whole event. */
export function eventOfRow(row: StoredRow): StoredEventRecord {
  const body = JSON.parse(row.body) as BodyFields & { id?: string };
  if (body.id !== undefined) return body as unknown as StoredEventRecord;
  const event: StoredEventRecord = {
    id: row.id as EventId,
    type: body.type,
    data: body.data ?? null,
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
