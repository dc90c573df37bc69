/**
 * Blocks: the compressed form of a run of a space's log on the server (issue 18). A background
 * compactor (per storage) moves events older than the hot tail out of their one-row-per-event
 * form into blocks of about BLOCK_EVENTS events, deflated together: a hundred events share their
 * field names, stream and type names, replica ids and clock prefixes, so one block costs about a
 * quarter of their JSON, where a row each costs more than their JSON.
 *
 * Invariants:
 * 1. Lossless: decodeBlock(encodeBlock(records)) gives back every record field for field, in the
 *    order given (which the storages keep ascending by position; positions may have holes).
 * 2. `time` and `cursor` are stored only where some event's do not derive from (hlc, replica,
 *    seq) (core/ids.ts Cursor.make, core/hlc.ts decodeHlc), as core/segments.ts does.
 * 3. The first byte is the format's version; a block of an unknown version is refused with a
 *    StorageError (code STORAGE), never read as something else.
 * 4. A block decodes alone: the dictionary is part of the format (changing it is a new version).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { StorageError } from '../core/errors.ts';
import type { JsonObject, JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import { decodeHlc } from '../core/hlc.ts';
import { Cursor, type EventId, type Hlc, type ReplicaId, type Seq } from '../core/ids.ts';

/** Events per block the compactors aim at: past ~100, deflate gains little and reads inflate more. */
export const BLOCK_EVENTS = 128;

const FORMAT_V1 = 1;

/**
 * Preset dictionary (invariant 4): the column names and the meta keys every signed event holds,
 * so that the first events of a block compress like the rest.
 */
const DICTIONARY = Buffer.from(
  '{"pos":[],"id":[],"type":[],"stream":[],"version":[],"replica":[],"seq":[],"hlc":[],' +
    '"meta":[null,{"$sig":"","$prev":"","$key":"","$causationId":"","$correlationId":""}],' +
    '"schema":[],"data":[{"title":"","id":"","column":"","text":"","by":"","at":""}]}',
);

/** The columns of a block before deflate: one array per field, event i at index i of each. */
interface Columns {
  pos: number[];
  id: string[];
  type: string[];
  stream: string[];
  version: number[];
  replica: string[];
  seq: number[];
  hlc: string[];
  /** Absent when no event has meta; else one per event, null where it has none. */
  meta?: (JsonObject | null)[];
  schema?: (number | null)[];
  /** Present only when some event's cursor or time does not derive (invariant 2). */
  cursor?: string[];
  time?: number[];
  data: JsonValue[];
}

/** The compressed bytes of `records` (invariant 1). */
export function encodeBlock(records: readonly LocalRecord[]): Buffer {
  const columns: Columns = {
    pos: [],
    id: [],
    type: [],
    stream: [],
    version: [],
    replica: [],
    seq: [],
    hlc: [],
    data: [],
  };
  const meta: (JsonObject | null)[] = [];
  const schema: (number | null)[] = [];
  const cursors: string[] = [];
  const times: number[] = [];
  let cursorsDerive = true;
  let timesDerive = true;
  let prevPos = 0;
  for (const { pos, event } of records) {
    // Positions as deltas: mostly 1, which deflate stores in a few bits.
    columns.pos.push(pos - prevPos);
    prevPos = pos;
    columns.id.push(event.id);
    columns.type.push(event.type);
    columns.stream.push(event.stream);
    columns.version.push(event.version);
    columns.replica.push(event.replica);
    columns.seq.push(event.seq);
    columns.hlc.push(event.hlc);
    columns.data.push(event.data);
    meta.push(event.meta ?? null);
    schema.push(event.schema ?? null);
    cursors.push(event.cursor);
    times.push(event.time);
    cursorsDerive &&= event.cursor === Cursor.make(event.hlc, event.replica, event.seq);
    timesDerive &&= event.time === decodeHlc(event.hlc).wall;
  }
  if (!cursorsDerive) columns.cursor = cursors;
  if (!timesDerive) columns.time = times;
  if (meta.some((m) => m !== null)) columns.meta = meta;
  if (schema.some((s) => s !== null)) columns.schema = schema;
  const body = deflateRawSync(JSON.stringify(columns), { dictionary: DICTIONARY });
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = FORMAT_V1;
  body.copy(out, 1);
  return out;
}

/** The records of a block, in the order encoded (invariants 1–3). */
export function decodeBlock(bytes: Uint8Array): LocalRecord[] {
  if (bytes[0] !== FORMAT_V1) {
    throw new StorageError('STORAGE', `an event block of unknown format ${String(bytes[0])}`);
  }
  let columns: Columns;
  try {
    const text = inflateRawSync(bytes.subarray(1), { dictionary: DICTIONARY }).toString('utf8');
    columns = JSON.parse(text) as Columns;
  } catch (error) {
    throw new StorageError('STORAGE', `an event block cannot be read: ${String(error)}`);
  }
  const out: LocalRecord[] = new Array(columns.id.length);
  let pos = 0;
  for (let i = 0; i < columns.id.length; i++) {
    pos += columns.pos[i]!;
    const hlc = columns.hlc[i]! as Hlc;
    const replica = columns.replica[i]! as ReplicaId;
    const seq = columns.seq[i]! as Seq;
    const event: StoredEventRecord = {
      id: columns.id[i]! as EventId,
      type: columns.type[i]!,
      data: columns.data[i]!,
      stream: columns.stream[i]!,
      version: columns.version[i]!,
      replica,
      seq,
      hlc,
      time: columns.time?.[i] ?? decodeHlc(hlc).wall,
      cursor: (columns.cursor?.[i] as Cursor | undefined) ?? Cursor.make(hlc, replica, seq),
    };
    const meta = columns.meta?.[i];
    if (meta !== undefined && meta !== null) event.meta = meta;
    const schema = columns.schema?.[i];
    if (schema !== undefined && schema !== null) event.schema = schema;
    out[i] = { pos, event };
  }
  return out;
}
