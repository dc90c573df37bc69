/**
 * Rows of the SQLite server storage's `events` table (sqlite.ts): the body column's form, made
 * and read on the event loop (the statements that write rows are in sqlite-writes.ts).
 */
import type { JsonObject, JsonValue, StoredEventRecord } from '../core/events.ts';
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
