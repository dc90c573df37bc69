/**
 * The wire form of a batch of events (protocol 2; protocol 4 adds the meta columns): columns, not
 * one JSON object per event. What the events of a batch share is said once: replica, stream and
 * type names sit in tables, and a run of events that continue each other (same replica, stream
 * and wall time; version, seq and HLC counter each one up) is one row. Ids equal to
 * EventId.canonical(replica, seq), the ids of events appended without one, are left out; `cursor`
 * and `time` follow from hlc, replica and seq. The meta fields of signing and sealing (`$sig`,
 * `$link`, `$key`, `$sealed`) travel as columns of their own (meta-columns.ts). On a batch of one
 * app's appends that leaves about three bytes per event besides its data; a signed one adds its
 * signature and the hash of its link (109 bytes), a sealed one two.
 *
 *   { replicas: [string], streams: [string], types: [string],
 *     runs: [[replica, stream, version, seq, wall, counter, count], ...],  (table indexes first)
 *     typeOf: string,          each event's index into `types`, `typeWidth` base-36 digits
 *     typeWidth: number,
 *     ids?: [[index, id], ...]  the events whose id is not canonical
 *     meta?: [[index, object], ...]  what of each meta the columns below do not carry
 *     shape?, sigs?, links?, linkTexts?, keyTexts?, keyOf?, kids?, kidOf?  (meta-columns.ts)
 *     schema?: [[index, number], ...]  (schema 1 is left out)
 *     data: [JSON, ...] }     one per event, in order
 *
 * Invariants:
 * 1. decodeEventBatch(parse(encodeEventBatch(events))) equals `events` (with their derived
 *    cursor and time), whatever the order of replicas, streams and clocks in the batch; each
 *    meta with its keys in their order (meta-columns.ts invariant 1).
 * 2. decodeEventBatch trusts nothing: every index, count and field is checked against the limits
 *    of validate.ts (EventLimits), and a failure names the event (`events[i].field`) and its id.
 *    A meta column that does not hold together is refused as meta-columns.ts invariant 3 says.
 *    Data and meta are held to what a local append accepts: a number JSON cannot carry (`1e400`,
 *    which JSON.parse makes ±Infinity) is VALIDATION, never stored as `null` (RELIABILITY 36).
 * 3. decodeEventBatch takes a value fresh from JSON.parse: its objects are plain and own
 *    `__proto__` keys are data, so data and meta are kept as they are, not copied (the meta
 *    columns add their fields to the object; a `$sealed`, which comes first, to a spread copy).
 * 4. Encoding stringifies each event's data once; a caller that sized the batch with the same
 *    texts (planBatches) passes them in instead of stringifying twice.
 * 5. Encoding the same event objects in the same order again returns the text made the last
 *    time (the few latest batches are kept), for batches of events whose data text a storage
 *    remembered (rememberDataText: the server's records, never changed once stored): a server's
 *    live tail sends one batch to many peers. Other batches are encoded every time.
 */
import { ValidationError } from '../core/errors.ts';
import type { JsonObject, JsonValue, StoredEvent, StoredEventRecord } from '../core/events.ts';
import { HLC_COUNTER_MAX, HLC_WALL_MAX, hlcCounter, hlcsOfWall, hlcWall } from '../core/hlc.ts';
import { Cursor, EventId, ReplicaId, Seq } from '../core/ids.ts';
import { rememberDigests } from '../core/integrity.ts';
import { assertJsonValue, jsonByteLength, parsedJsonUnfit, utf8Length } from '../core/json.ts';
import {
  DEFAULT_EVENT_LIMITS,
  type EventLimits,
  hasLoneSurrogate,
  WELL_FORMED,
} from '../core/validate.ts';
import { BatchEventError, BatchShapeError, EventTooLargeError } from './batch-errors.ts';
import { type BinaryParts, base64UrlBytes, packSections, sectionSizes } from './binary-frame.ts';
import { impliedTreeIndexes, MetaColumnsReader, MetaColumnsWriter } from './meta-columns.ts';

export { BatchEventError, BatchShapeError, EventTooLargeError } from './batch-errors.ts';

/**
 * Where a storage keeps the data text of an event it wrote (invariant 4): a property of the event
 * object itself, under a symbol and not enumerable, so it goes wherever the object goes and is
 * invisible to JSON, spreads and equality. A WeakMap cost three times as much to fill and slowed
 * every GC once it held the 100,000 events of a catch-up (ephemerons). A frozen event cannot
 * take the property, so its text goes to the WeakMap, which serves frozen events only. Only
 * server storages remember texts; clients never do.
 */
const DATA_TEXT = Symbol('chronicle.dataText');
const frozenDataTexts = new WeakMap<StoredEvent, string>();

/**
 * Remembers the JSON text of `event.data`, for a sender that forwards the same event object
 * (invariant 4). Only storages that keep a bounded set of events (the server's recent records)
 * should remember: the text lives as long as the object.
 */
export function rememberDataText(event: StoredEvent, text: string): void {
  if (Object.isExtensible(event)) {
    Object.defineProperty(event, DATA_TEXT, { value: text, writable: true, configurable: true });
  } else {
    frozenDataTexts.set(event, text);
  }
}

/** The data text of the `index`th event of a batch (see encodeEventBatch). */
export type DataTextOf = (event: StoredEvent, index: number) => string;

/** The JSON text of the event's data: remembered, or made now. */
export function dataTextOf(event: StoredEvent): string {
  return (
    (event as { [DATA_TEXT]?: string })[DATA_TEXT] ??
    frozenDataTexts.get(event) ??
    JSON.stringify(event.data) ??
    'null'
  );
}

/**
 * An upper bound of the bytes `event` adds to an encoded batch, given its data text: as if it
 * began a run of its own and brought new replica, stream and type names (a batch of one app's
 * appends takes about three bytes besides the data; planBatches must never underestimate).
 */
export function wireSize(event: StoredEvent, dataText: string): number {
  // Its data, a comma, and its digit in the `shape` of a batch with meta columns (meta-columns.ts):
  // each field that goes to a column takes there no more than it would in `meta`.
  let bytes = utf8Length(dataText) + 5;
  // Names count 3 bytes a UTF-16 unit, their most: an upper bound without scanning them (a name
  // is mostly counted once a batch anyway, in its table).
  bytes += 64 + event.replica.length + 3 * (event.stream.length + event.type.length) + 9;
  if (!EventId.isCanonical(event.id, event.replica, event.seq)) bytes += utf8Length(event.id) + 16;
  if (event.meta !== undefined) bytes += jsonByteLength(event.meta) + 16;
  if (event.schema !== undefined && event.schema !== 1) bytes += 32;
  return bytes;
}

function indexIn(table: Map<string, number>, list: string[], value: string): number {
  let index = table.get(value);
  if (index === undefined) {
    index = list.length;
    list.push(value);
    table.set(value, index);
  }
  return index;
}

/**
 * What a batch leaves out (protocol.ts invariant 13): `impliedLinks`, the hashes of near links
 * and the paths of whole trees.
 */
export interface BatchMode {
  impliedLinks: boolean;
}

const WHOLE: BatchMode = { impliedLinks: false };

/** The latest batches encoded, newest last (invariant 5); one list per mode. */
const recentBatches: { events: readonly StoredEvent[]; value: string }[][] = [[], []];
const RECENT_BATCHES = 4;

const modeIndex = (mode: BatchMode) => (mode.impliedLinks ? 1 : 0);

function remembered(event: StoredEvent | undefined): boolean {
  if (event === undefined) return false;
  return (event as { [DATA_TEXT]?: string })[DATA_TEXT] !== undefined || frozenDataTexts.has(event);
}

function sameEvents(a: readonly StoredEvent[], b: readonly StoredEvent[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The JSON text of a batch. `dataText(event)` may hand over the event's data already
 * stringified (invariant 4); the same events encoded again give the same text (invariant 5).
 */
export function encodeEventBatch(
  events: readonly StoredEvent[],
  dataText: DataTextOf = dataTextOf,
  mode: BatchMode = WHOLE,
): string {
  return recalled(recentBatches[modeIndex(mode)]!, events, () =>
    encodeBatch(events, dataText, undefined, mode.impliedLinks),
  );
}

/** What `encode` gives for `events`, kept among `recent` when their data texts are (invariant 5). */
function recalled<T>(
  recent: { events: readonly StoredEvent[]; value: T }[],
  events: readonly StoredEvent[],
  encode: () => T,
): T {
  if (!remembered(events[0])) return encode();
  for (let i = recent.length - 1; i >= 0; i--) {
    const one = recent[i]!;
    if (sameEvents(one.events, events)) return one.value;
  }
  const value = encode();
  if (recent.length === RECENT_BATCHES) recent.shift();
  recent.push({ events: events.slice(), value });
  return value;
}

/** A batch for a binary frame: its JSON text (with `bin`) and its byte sections. */
export interface BinaryBatch {
  text: string;
  /** Absent when nothing goes as bytes: `text` is then the batch's protocol 4 text, as is. */
  sections?: Uint8Array;
}

/** The latest binary batches encoded, newest last (invariant 5); one list per mode. */
const recentBinary: { events: readonly StoredEvent[]; value: BinaryBatch | undefined }[][] = [
  [],
  [],
];

/**
 * The batch as a binary frame carries it (binary-frame.ts), or undefined when one of its texts
 * cannot go as bytes without loss (binary-frame.ts invariant 1): then it goes as text.
 */
export function encodeEventBatchBinary(
  events: readonly StoredEvent[],
  dataText: DataTextOf = dataTextOf,
  mode: BatchMode = WHOLE,
): BinaryBatch | undefined {
  return recalled(recentBinary[modeIndex(mode)]!, events, () => {
    const parts: BinaryParts = { sigs: [], links: '', blobs: [], textOnly: false };
    const text = encodeBatch(events, dataText, parts, mode.impliedLinks);
    if (!carriesBytes(parts)) return { text };
    const sections = packSections(parts);
    return sections === undefined ? undefined : { text, sections };
  });
}

function carriesBytes(parts: BinaryParts): boolean {
  return parts.sigs.length > 0 || parts.links !== '' || parts.blobs.length > 0;
}

function encodeBatch(
  events: readonly StoredEvent[],
  dataText: DataTextOf,
  /** For a binary frame: collects what goes as bytes. */
  parts?: BinaryParts,
  /** Near links leave their hash out (protocol.ts invariant 13). */
  impliedLinks = false,
): string {
  const replicas: string[] = [];
  const streams: string[] = [];
  const types: string[] = [];
  const replicaIndex = new Map<string, number>();
  const streamIndex = new Map<string, number>();
  const typeIndex = new Map<string, number>();
  const runs: number[][] = [];
  const typeOf: number[] = [];
  const ids: [number, string][] = [];
  const meta: [number, JsonObject][] = [];
  const schema: [number, number][] = [];
  const texts: string[] = [];
  const metaColumns = new MetaColumnsWriter(impliedLinks);
  const impliedTrees = impliedLinks ? impliedTreeIndexes(events) : undefined;
  // The open run: [replica, stream, version, seq, wall, counter, count], and its names.
  let run: number[] | undefined;
  let runReplica = '';
  let runStream = '';
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const wall = hlcWall(e.hlc);
    const counter = hlcCounter(e.hlc);
    const n = run?.[6] ?? 0;
    const continues =
      run !== undefined &&
      e.replica === runReplica &&
      e.stream === runStream &&
      e.version === run[2]! + n &&
      e.seq === run[3]! + n &&
      wall === run[4] &&
      counter === run[5]! + n;
    if (continues) run![6] = n + 1;
    else {
      run = [
        indexIn(replicaIndex, replicas, e.replica),
        indexIn(streamIndex, streams, e.stream),
        e.version,
        e.seq,
        wall,
        counter,
        1,
      ];
      runReplica = e.replica;
      runStream = e.stream;
      runs.push(run);
    }
    typeOf.push(indexIn(typeIndex, types, e.type));
    if (!EventId.isCanonical(e.id, e.replica, e.seq)) ids.push([i, e.id]);
    const rest = metaColumns.add(e, impliedTrees?.has(i) === true);
    if (rest !== undefined) meta.push([i, rest]);
    if (e.schema !== undefined && e.schema !== 1) schema.push([i, e.schema]);
    if (parts !== undefined && metaColumns.sealedLast) {
      // Its slot says how many bytes of the sealed section are its data.
      if (typeof e.data === 'string') {
        parts.blobs.push(e.data);
        texts.push(String(base64UrlBytes(e.data.length)));
        continue;
      }
      parts.textOnly = true;
    }
    texts.push(dataText(e, i));
  }
  const typeWidth = Math.max(1, Math.ceil(Math.log(Math.max(types.length, 1)) / Math.log(36)));
  let typeText = '';
  for (const t of typeOf) typeText += t.toString(36).padStart(typeWidth, '0');
  const head: Record<string, unknown> = { replicas, streams, types, runs, typeOf: typeText };
  head.typeWidth = typeWidth;
  if (ids.length > 0) head.ids = ids;
  if (meta.length > 0) head.meta = meta;
  metaColumns.write(head, parts);
  if (schema.length > 0) head.schema = schema;
  // Nothing as bytes: no `bin`, and the text is protocol 4's (a plain batch is encoded once).
  if (parts !== undefined && carriesBytes(parts)) head.bin = sectionSizes(parts);
  const headText = JSON.stringify(head);
  return `${headText.slice(0, -1)},"data":[${texts.join(',')}]}`;
}

// ---- decoding (invariants 2, 3) --------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

function table(
  batch: Record<string, unknown>,
  key: string,
  valid: (value: unknown) => string | undefined,
): string[] {
  const list = batch[key];
  if (!Array.isArray(list)) throw new BatchShapeError(`events.${key} must be an array`);
  for (let i = 0; i < list.length; i++) {
    const problem = valid(list[i]);
    if (problem !== undefined) throw new ValidationError(`events.${key}[${i}]`, problem);
  }
  return list as string[];
}

/** What is wrong with a stream or type name, if anything. */
function nameProblem(maxLength: number): (value: unknown) => string | undefined {
  return (value) =>
    typeof value !== 'string' || value.length === 0
      ? 'must be a non-empty string'
      : value.length > maxLength
        ? `longer than ${maxLength} characters`
        : hasLoneSurrogate(value)
          ? WELL_FORMED
          : undefined;
}

/** `[[index, value], ...]` with indexes increasing and below `count`, as a Map. */
function sparse<T>(
  batch: Record<string, unknown>,
  key: string,
  count: number,
  valid: (value: unknown, index: number) => value is T,
): Map<number, T> {
  const out = new Map<number, T>();
  const list = batch[key];
  if (list === undefined) return out;
  if (!Array.isArray(list)) throw new BatchShapeError(`events.${key} must be an array`);
  let previous = -1;
  for (const entry of list) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new BatchShapeError(`events.${key} entries must be [index, value]`);
    }
    const [index, value] = entry as [unknown, unknown];
    if (!isCount(index, previous + 1, count - 1)) {
      throw new BatchShapeError(`events.${key} indexes must increase and name events of the batch`);
    }
    previous = index;
    if (!valid(value, index)) throw new BatchShapeError(`events.${key}[${index}] is not valid`);
    out.set(index, value);
  }
  return out;
}

/** What a receiver accepts by default: names as an append does, events up to 1 MiB. */
const RECEIVE_LIMITS: EventLimits = { ...DEFAULT_EVENT_LIMITS, maxEventBytes: 1024 * 1024 };

export interface DecodeOptions {
  /**
   * The UTF-8 size of the whole message, when the caller knows it: a message no larger than
   * maxEventBytes cannot hold an event over the limit, so events are not sized one by one.
   */
  messageBytes?: number;
  /** The receiver's limit on one event's data + meta bytes. Default 1 MiB (RECEIVE_LIMITS). */
  maxEventBytes?: number;
  /** The batch says its near links may leave their hash out (protocol.ts invariant 13). */
  impliedLinks?: boolean;
}

/** Events of a wire batch, checked (invariant 2); throws ValidationError or BatchShapeError. */
export function decodeEventBatch(value: unknown, options: DecodeOptions = {}): StoredEventRecord[] {
  const limits =
    options.maxEventBytes === undefined
      ? RECEIVE_LIMITS
      : { ...RECEIVE_LIMITS, maxEventBytes: options.maxEventBytes };
  if (!isRecord(value)) throw new BatchShapeError('events must be an object');
  const data = value.data;
  if (!Array.isArray(data)) throw new BatchShapeError('events.data must be an array');
  const count = data.length;
  const replicas = table(value, 'replicas', (r) =>
    ReplicaId.isValid(r) ? undefined : 'must be a replica id',
  );
  const streams = table(value, 'streams', nameProblem(limits.maxStreamLength));
  const types = table(value, 'types', nameProblem(limits.maxTypeLength));
  const width = value.typeWidth;
  if (!isCount(width, 1, 4)) throw new BatchShapeError('events.typeWidth must be 1 to 4');
  const typeOf = value.typeOf;
  if (typeof typeOf !== 'string' || typeOf.length !== count * width) {
    throw new BatchShapeError('events.typeOf must hold one type index per event');
  }
  const runs = value.runs;
  if (!Array.isArray(runs)) throw new BatchShapeError('events.runs must be an array');
  const ids = sparse(
    value,
    'ids',
    count,
    (id): id is string =>
      typeof id === 'string' &&
      id.length > 0 &&
      id.length <= limits.maxIdLength &&
      !hasLoneSurrogate(id),
  );
  const meta = sparse(value, 'meta', count, (m): m is JsonObject => isRecord(m));
  const metaColumns = MetaColumnsReader.of(value, count, options.impliedLinks === true);
  const schema = sparse(value, 'schema', count, (s): s is number => isCount(s, 2));
  const sizeUnchecked =
    options.messageBytes === undefined || options.messageBytes > limits.maxEventBytes;

  const out: StoredEventRecord[] = [];
  for (const row of runs) {
    if (!Array.isArray(row) || row.length !== 7) {
      throw new BatchShapeError(
        'events.runs rows must be [replica, stream, version, seq, wall, counter, count]',
      );
    }
    const [r, s, version, seq, wall, counter, n] = row as unknown[];
    const path = `events[${out.length}]`;
    if (!isCount(r, 0, replicas.length - 1) || !isCount(s, 0, streams.length - 1)) {
      throw new BatchShapeError(`${path}: replica or stream index out of range`);
    }
    if (!isCount(n, 1, count - out.length)) {
      throw new BatchShapeError('events.runs counts must add up to the events in the batch');
    }
    const fault = (field: string, reason: string) =>
      new BatchEventError(new ValidationError(`${path}.${field}`, reason), ids.get(out.length));
    if (!isCount(version, 1, Number.MAX_SAFE_INTEGER - n)) {
      throw fault('version', 'must be a positive integer');
    }
    if (!isCount(seq, 1, Number.MAX_SAFE_INTEGER - n)) {
      throw fault('seq', 'must be a positive integer');
    }
    if (!isCount(wall, 0, HLC_WALL_MAX) || !isCount(counter, 0, HLC_COUNTER_MAX - n + 1)) {
      throw fault('hlc', 'must be an HLC timestamp');
    }
    const replica = replicas[r] as ReplicaId;
    const stream = streams[s]!;
    const hlcAt = hlcsOfWall(wall, counter);
    for (let k = 0; k < n; k++) {
      const i = out.length;
      const eventSeq = Seq.make(seq + k);
      const hlc = hlcAt(k);
      const t = width === 1 ? typeOf.charCodeAt(i) : -1;
      const typeNumber =
        t >= 48 && t <= 57
          ? t - 48
          : t >= 97 && t <= 122
            ? t - 87
            : Number.parseInt(typeOf.slice(i * width, (i + 1) * width), 36);
      const type = types[typeNumber];
      if (type === undefined) throw new BatchShapeError(`events[${i}]: type index out of range`);
      const record: StoredEventRecord = {
        id: (ids.get(i) ?? EventId.canonical(replica, eventSeq)) as EventId,
        type,
        data: data[i] as JsonValue,
        stream,
        version: version + k,
        replica,
        seq: eventSeq,
        hlc,
        time: wall,
        cursor: Cursor.make(hlc, replica, eventSeq),
      };
      const m = meta.get(i);
      try {
        // The meta's size from its columns where they give it (meta-columns.ts invariant 5).
        let metaBytes = 0;
        if (metaColumns !== undefined) metaBytes = metaColumns.rebuild(i, record, m, sizeUnchecked);
        else if (m !== undefined) {
          record.meta = m;
          if (sizeUnchecked) metaBytes = jsonByteLength(m);
        }
        const sc = schema.get(i);
        if (sc !== undefined) record.schema = sc;
        checkPayload(record, `events[${i}]`, limits, sizeUnchecked, metaBytes);
      } catch (error) {
        throw error instanceof ValidationError ? new BatchEventError(error, record.id) : error;
      }
      out.push(record);
    }
  }
  if (out.length !== count) {
    throw new BatchShapeError('events.runs counts must add up to the events in the batch');
  }
  metaColumns?.finish();
  if (metaColumns !== undefined && metaColumns.digests.length > 0) {
    rememberDigests(out, metaColumns.digests);
  }
  return out;
}

function checkPayload(
  e: StoredEventRecord,
  path: string,
  limits: EventLimits,
  size: boolean,
  /** The UTF-8 size of the meta's JSON text, when `size`. */
  metaBytes: number,
): void {
  // One walk of each value, paths only for a value that fails (then assertJsonValue names the
  // field and the reason: too deep, or a number JSON cannot carry).
  if (parsedJsonUnfit(e.data, limits.maxDepth)) unfit(e.data, `${path}.data`, limits.maxDepth);
  if (e.meta !== undefined && parsedJsonUnfit(e.meta, limits.maxDepth)) {
    unfit(e.meta, `${path}.meta`, limits.maxDepth);
  }
  if (!size) return;
  const bytes = jsonByteLength(e.data) + metaBytes;
  if (bytes > limits.maxEventBytes) throw new EventTooLargeError(path, bytes, limits.maxEventBytes);
}

/** Throws the ValidationError of a value parsedJsonUnfit refused, naming where and why. */
function unfit(value: unknown, path: string, maxDepth: number): never {
  assertJsonValue(value, path, { maxDepth });
  throw new ValidationError(path, 'is not a JSON value');
}
