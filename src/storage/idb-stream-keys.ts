/**
 * The keys of the `stream` index since schema 8 (idb-schema.ts invariant 10): a segment is listed
 * under [stream number, rank of the cursor of its first event of that stream] for each stream it
 * holds, instead of [stream name, cursor]. Firefox keeps every index key twice (in the index and
 * beside the record's value) without compressing it: a 41-character name and a 57-character
 * cursor cost about 100 bytes each time, two numbers about 14.
 *
 * Invariants:
 * 1. cursorRank never decreases as cursors grow (string order): c1 < c2 gives rank(c1) <=
 *    rank(c2), for every string. A cursor of the usual form (core/hlc.ts: 11 wall digits, '-', 5
 *    counter digits) ranks as wall × 2048 + min(counter, 2047), so cursors of one millisecond tie
 *    only past 2047 ticks or across replicas; any other string ranks as the least usual form
 *    above it. Keys of one stream may tie: a reader orders tied segments by their cursors
 *    (idb-reads.ts).
 * 2. A stream's number is given once, by the transaction that first writes a segment listing the
 *    stream, and kept in its `streams` row (StreamRow.no) for ever: every writer of a row keeps
 *    it (withNumber). It is the position of one of the stream's events: positions are never
 *    given twice, so neither are numbers, and giving one reads nothing more than the row.
 * 3. A number read or given is remembered per database handle only once it is committed (a row
 *    read was; one given is after its transaction's `complete`): an aborted transaction's numbers
 *    are given again.
 * 4. Numbers are asked for one call at a time within a transaction (a chain), so two calls never
 *    give the same new number.
 */
import type { Cursor } from '../core/ids.ts';
import { cursorAt, type Segment, streamAt } from '../core/segments.ts';
import { request } from './idb-request.ts';

/**
 * A stream's row in `streams` (idb-schema.ts invariants 9 and 10): its version, conflict flag
 * and, once a segment lists it, its number (invariant 2).
 */
export interface StreamRow {
  stream: string;
  version: number;
  conflicted?: true;
  no?: number;
}

/** A `stream` index key: [stream number, cursor rank]. */
export type StreamIndexKey = [no: number, rank: number];

/**
 * A segment as stored since schema 8: `streamIx` holds its `stream` index keys (absent on a
 * husk, which the index does not list). The name is short because Firefox writes it in every
 * record.
 */
export interface StoredSegment extends Segment {
  streamIx?: StreamIndexKey[];
}

const WALL_DIGITS = 11;
const COUNTER_START = WALL_DIGITS + 1;
const HLC_LENGTH = COUNTER_START + 5;
const COUNTER_SPAN = 2048;
/** Walls at or past 2^42 ms (the year 2109) all rank as RANK_MAX: ranks stay exact below 2^53. */
const WALL_LIMIT = 2 ** 42;
const RANK_MAX = 2 ** 53;

const isDigit = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 122);
const DASH = 45;

/** The rank of an HLC prefix of the usual form (its first 17 characters). */
function usualRank(hlc: string): number {
  const wall = Number.parseInt(hlc.slice(0, WALL_DIGITS), 36);
  if (wall >= WALL_LIMIT) return RANK_MAX;
  const counter = Number.parseInt(hlc.slice(COUNTER_START, HLC_LENGTH), 36);
  return wall * COUNTER_SPAN + Math.min(counter, COUNTER_SPAN - 1);
}

/** The least 17-character HLC of the usual form whose first `from` characters are `prefix`'s. */
function leastFrom(prefix: string, from: number): string {
  let out = prefix.slice(0, from);
  for (let i = from; i < HLC_LENGTH; i++) out += i === WALL_DIGITS ? '-' : '0';
  return out;
}

/**
 * The least usual-form HLC at or above `head` (a string's first 17 characters, not of the usual
 * form), or undefined when every one is below it (invariant 1).
 */
function usualAbove(head: string): string | undefined {
  for (let i = 0; i < HLC_LENGTH; i++) {
    if (i >= head.length) return leastFrom(head, i);
    const c = head.charCodeAt(i);
    if (i === WALL_DIGITS) {
      if (c === DASH) continue;
      return c < DASH ? leastFrom(head, i) : greaterPrefix(head, i);
    }
    if (isDigit(c)) continue;
    if (c < 48) return leastFrom(head, i);
    if (c < 97 && c > 57) return leastFrom(`${head.slice(0, i)}a`, i + 1);
    return greaterPrefix(head, i);
  }
  return head;
}

/** The least usual-form HLC whose first `i` characters are greater than `head`'s. */
function greaterPrefix(head: string, i: number): string | undefined {
  for (let j = i - 1; j >= 0; j--) {
    if (j === WALL_DIGITS) continue;
    const c = head.charCodeAt(j);
    if (c === 122) continue;
    const next = c === 57 ? 'a' : String.fromCharCode(c + 1);
    return leastFrom(`${head.slice(0, j)}${next}`, j + 1);
  }
  return undefined;
}

/** Whether `s` starts with an HLC of the usual form. */
function startsUsual(s: string): boolean {
  if (s.length < HLC_LENGTH || s.charCodeAt(WALL_DIGITS) !== DASH) return false;
  for (let i = 0; i < HLC_LENGTH; i++) {
    if (i !== WALL_DIGITS && !isDigit(s.charCodeAt(i))) return false;
  }
  return true;
}

/** A number that sorts as `cursor` does, ties allowed (invariant 1). */
export function cursorRank(cursor: string): number {
  if (startsUsual(cursor)) return usualRank(cursor);
  const above = usualAbove(cursor.slice(0, HLC_LENGTH));
  return above === undefined ? RANK_MAX : usualRank(above);
}

/**
 * Each stream of a segment holding events, with the cursor of its first event there, worked out
 * from its events: since schema 8 a stored segment's `streamKeys` name its streams only
 * (storedStreamKeys).
 */
export function streamFirsts(s: Segment): [string, string][] {
  if (s.n === 0) return [];
  if (s.streamOf === undefined && typeof s.stream === 'string') return [[s.stream, s.first]];
  const out = new Map<string, string>();
  for (let i = 0; i < s.n; i++) {
    const name = streamAt(s, i);
    if (!out.has(name)) out.set(name, cursorAt(s, i));
  }
  return [...out];
}

/** The cursor of the first event of `stream` in `s` (as streamFirsts, for one stream). */
export function firstOfStream(s: Segment, stream: string): string | undefined {
  if (s.streamOf === undefined && typeof s.stream === 'string') {
    return s.stream === stream ? s.first : undefined;
  }
  for (let i = 0; i < s.n; i++) if (streamAt(s, i) === stream) return cursorAt(s, i);
  return undefined;
}

/**
 * What a stored segment keeps of `streamKeys` (idb-schema.ts invariant 10): nothing for a segment
 * of one stream (`stream` names it), else each name alone, at its place (`streamOf` points
 * there: core/segments.ts streamAt reads only the name). The cursors are its events', and the
 * index keys are `streamIx`; core/segments.ts streamFirst must not be asked of such a segment.
 */
export function storedStreamKeys(s: Segment): Segment['streamKeys'] {
  if (s.streamOf === undefined || s.streamKeys === undefined) return undefined;
  return s.streamKeys.map(([name]) => [name] as unknown as [string, Cursor]);
}

/**
 * A segment as schema 8 stores it (idb-schema.ts invariant 10), from its compact form (or an older
 * stored one): with its `stream` index keys, `streamKeys` without cursors (storedStreamKeys), and
 * `streamOf` as bytes when every place fits in one (a segment holds at most 128 streams); a
 * Uint8Array reads as the array did (core/segments.ts streamAt indexes it), and Firefox's
 * structured clone writes each number of an array in 16 bytes.
 */
export function storedForm(segment: Segment, numbers: ReadonlyMap<string, number>): StoredSegment {
  const out: StoredSegment = { ...segment };
  delete out.streamIx;
  if (segment.n === 0) return out;
  out.streamIx = streamIndexKeys(segment, numbers);
  const streamKeys = storedStreamKeys(segment);
  if (streamKeys === undefined) delete out.streamKeys;
  else out.streamKeys = streamKeys;
  if (Array.isArray(segment.streamOf) && (segment.streamKeys?.length ?? 0) <= 256) {
    out.streamOf = Uint8Array.from(segment.streamOf) as unknown as number[];
  }
  return out;
}

/** The position of the first event of each stream of a segment holding events. */
export function streamPositions(s: Segment): Map<string, number> {
  const out = new Map<string, number>();
  if (s.n === 0) return out;
  if (s.streamOf === undefined && typeof s.stream === 'string') return out.set(s.stream, s.pos);
  for (let i = 0; i < s.n; i++) {
    const name = streamAt(s, i);
    if (!out.has(name)) out.set(name, s.pos + i);
  }
  return out;
}

/** The `stream` index keys of a segment, from its streams' numbers (invariant 2). */
export function streamIndexKeys(
  s: Segment,
  numbers: ReadonlyMap<string, number>,
): StreamIndexKey[] {
  return streamFirsts(s).map(([name, first]) => {
    const no = numbers.get(name);
    if (no === undefined) throw new Error(`no number for stream ${name}`);
    return [no, cursorRank(first)];
  });
}

/** Numbers committed per database handle (invariant 3). */
const committed = new WeakMap<IDBDatabase, Map<string, number>>();

/**
 * Per transaction: the numbers it read or gave, the rows it read without one (readStreams notes
 * them: no need to read them again), and the chain of its calls (invariant 4).
 */
interface TxNumbers {
  numbers: Map<string, number>;
  unnumbered: Map<string, StreamRow | undefined>;
  chain: Promise<unknown>;
}
const inTransaction = new WeakMap<IDBTransaction, TxNumbers>();

function known(db: IDBDatabase): Map<string, number> {
  let map = committed.get(db);
  if (map === undefined) {
    map = new Map();
    committed.set(db, map);
  }
  return map;
}

function stateOf(tx: IDBTransaction): TxNumbers {
  let state = inTransaction.get(tx);
  if (state === undefined) {
    const created: TxNumbers = {
      numbers: new Map(),
      unnumbered: new Map(),
      chain: Promise.resolve(),
    };
    state = created;
    inTransaction.set(tx, created);
    tx.addEventListener('complete', () => {
      const map = known(tx.db);
      for (const [name, no] of created.numbers) map.set(name, no);
    });
  }
  return state;
}

/** A stream's number as the handle remembers it (invariant 3), without a read. */
export const rememberedNumber = (db: IDBDatabase, stream: string): number | undefined =>
  committed.get(db)?.get(stream);

/**
 * A stream's number, for a read: remembered, or read from its row in `streams` (which the
 * transaction must cover). Undefined when it has none: no segment lists the stream.
 */
export async function readStreamNumber(
  tx: IDBTransaction,
  stream: string,
): Promise<number | undefined> {
  const remembered = rememberedNumber(tx.db, stream);
  if (remembered !== undefined) return remembered;
  const row = (await request(tx.objectStore('streams').get(stream))) as StreamRow | undefined;
  // A row read in a readwrite transaction may be its own, not yet committed (invariant 3).
  if (row?.no !== undefined && tx.mode === 'readonly') known(tx.db).set(stream, row.no);
  return row?.no;
}

/** Notes the rows a readwrite transaction read (idb-streams.ts readStreams): no second read. */
export function noteRows(
  tx: IDBTransaction,
  names: readonly string[],
  rows: readonly (StreamRow | undefined)[],
): void {
  const state = stateOf(tx);
  names.forEach((name, i) => {
    const row = rows[i];
    if (row?.no !== undefined) state.numbers.set(name, row.no);
    else if (!state.numbers.has(name)) state.unnumbered.set(name, row);
  });
}

/**
 * The number of each stream of `firstPos` (a position of one of its events in the segments about
 * to be written) within a readwrite transaction over `streams`: a stream without one is given
 * that position, and its row is written with it (invariant 2).
 */
export function streamNumbers(
  tx: IDBTransaction,
  firstPos: ReadonlyMap<string, number>,
): Promise<Map<string, number>> {
  const state = stateOf(tx);
  const next = state.chain.then(() => numbersInOrder(tx, state, firstPos));
  state.chain = next.catch(() => undefined);
  return next;
}

async function numbersInOrder(
  tx: IDBTransaction,
  state: TxNumbers,
  firstPos: ReadonlyMap<string, number>,
): Promise<Map<string, number>> {
  const { numbers, unnumbered } = state;
  const remembered = committed.get(tx.db);
  const toRead = [...firstPos.keys()].filter((name) => {
    if (numbers.has(name) || unnumbered.has(name)) return false;
    const no = remembered?.get(name);
    if (no !== undefined) numbers.set(name, no);
    return no === undefined;
  });
  if (toRead.length > 0) {
    const streams = tx.objectStore('streams');
    noteRows(
      tx,
      toRead,
      (await Promise.all(toRead.map((name) => request(streams.get(name))))) as (
        | StreamRow
        | undefined
      )[],
    );
  }
  const streams = tx.objectStore('streams');
  for (const [name, pos] of firstPos) {
    if (numbers.has(name)) continue;
    // Positions are never given twice (adapter.ts invariant 3): nor is the number.
    const row = unnumbered.get(name);
    unnumbered.delete(name);
    numbers.set(name, pos);
    streams.put({ ...(row ?? { stream: name, version: 0 }), no: pos } satisfies StreamRow);
  }
  return numbers;
}

/**
 * A row about to be written with the stream's number kept (invariant 2): the one `previous` (the
 * row read before) holds, or the one this transaction gave meanwhile.
 */
export function withNumber(
  tx: IDBTransaction,
  row: StreamRow,
  previous: StreamRow | undefined,
): StreamRow {
  const no = inTransaction.get(tx)?.numbers.get(row.stream) ?? previous?.no;
  return no === undefined ? row : { ...row, no };
}
