/**
 * Translates a ReadQuery into cursor bounds and filters, and pages through the log with it.
 *
 * Invariants:
 * 1. Results are in the total order (reversed when asked), never more than `limit`.
 * 2. `from`/`to` bound the HLC wall time inclusively; they become cursor bounds, so a time range
 *    costs only the events inside it. `types`, `correlationId` and `causationId` filter the pages
 *    read: they cost the events scanned (a stream or a time range bounds those).
 * 3. The `$keyring` stream (an encrypted space's keys and shreds, core/keyring-events.ts) is
 *    read, and delivered to subscribers, only when a query names it: it is not the app's.
 * 4. readWith's pages leave signatures out (storage/adapter.ts CursorQuery.withoutSignatures):
 *    what it reads goes to the app, which gets no integrity meta (store.ts invariant 2), and its
 *    filters read none.
 */
import { COMMAND_META } from '../core/aggregate.ts';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import type { LocalRecord } from '../core/events.ts';
import { encodeHlc } from '../core/hlc.ts';
import { KEYRING_STREAM } from '../core/sealing.ts';
import type { CursorQuery, EventLog } from '../storage/adapter.ts';
import type { ReadQuery, ReceiveQuery, StateAt, SubscribeQuery } from './types.ts';

const PAGE = 500;
const COUNTER_MAX = 36 ** 5 - 1;

function toMs(value: Date | number, path: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new ValidationError(path, 'must be a Date or a finite number of milliseconds');
  }
  return Math.max(0, Math.floor(ms));
}

/** Every cursor whose HLC wall time is >= ms sorts after this string. */
export function cursorBefore(ms: number): string {
  return encodeHlc({ wall: ms, counter: 0 });
}

/** Every cursor whose HLC wall time is <= ms sorts before or at this string. */
export function cursorAtEndOf(ms: number): string {
  return `${encodeHlc({ wall: ms, counter: COUNTER_MAX })}.~`;
}

export interface CompiledQuery {
  lower?: string;
  upper?: string;
  stream?: string;
  types?: ReadonlySet<string>;
  /** meta.$correlationId / meta.$causationId to match (core/aggregate.ts COMMAND_META). */
  correlationId?: string;
  causationId?: string;
  reverse: boolean;
  limit: number;
  fromMs?: number;
  toMs?: number;
}

export function compileQuery(query: ReadQuery = {}): CompiledQuery {
  if (typeof query !== 'object' || query === null) {
    throw new ValidationError('query', 'must be an object');
  }
  const compiled: CompiledQuery = {
    reverse: query.reverse === true,
    limit: Number.POSITIVE_INFINITY,
  };
  if (query.stream !== undefined) {
    if (typeof query.stream !== 'string' || query.stream.length === 0) {
      throw new ValidationError('query.stream', 'must be a non-empty string');
    }
    compiled.stream = query.stream;
  }
  if (query.types !== undefined) {
    if (!Array.isArray(query.types) || query.types.some((t) => typeof t !== 'string')) {
      throw new ValidationError('query.types', 'must be an array of strings');
    }
    compiled.types = new Set(query.types);
  }
  for (const key of ['correlationId', 'causationId'] as const) {
    const value = query[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0) {
      throw new ValidationError(`query.${key}`, 'must be a non-empty string');
    }
    compiled[key] = value;
  }
  if (query.limit !== undefined) {
    if (!Number.isSafeInteger(query.limit) || query.limit < 0) {
      throw new ValidationError('query.limit', 'must be a non-negative integer');
    }
    compiled.limit = query.limit;
  }
  if (query.after !== undefined && typeof query.after !== 'string') {
    throw new ValidationError('query.after', 'must be a cursor from a stored event');
  }
  // In forward order `after` is a lower bound; in reverse an upper one.
  let lower: string | undefined = query.reverse ? undefined : query.after;
  let upper: string | undefined = query.reverse ? query.after : undefined;
  if (query.from !== undefined) {
    compiled.fromMs = toMs(query.from, 'query.from');
    const bound = cursorBefore(compiled.fromMs);
    if (lower === undefined || bound > lower) lower = bound;
  }
  if (query.to !== undefined) {
    compiled.toMs = toMs(query.to, 'query.to');
    const bound = cursorAtEndOf(compiled.toMs);
    if (upper === undefined || bound < upper) upper = bound;
  }
  if (lower !== undefined) compiled.lower = lower;
  if (upper !== undefined) compiled.upper = upper;
  return compiled;
}

/** The filters a page of the log is not already bounded by: types and the command chain. */
function matchesCompiled(record: LocalRecord, q: CompiledQuery): boolean {
  const e = record.event;
  if (q.stream === undefined && e.stream === KEYRING_STREAM) return false;
  if (q.types !== undefined && !q.types.has(e.type)) return false;
  if (q.correlationId !== undefined && e.meta?.[COMMAND_META.correlationId] !== q.correlationId) {
    return false;
  }
  return q.causationId === undefined || e.meta?.[COMMAND_META.causationId] === q.causationId;
}

/** Pages through the log in total order with the compiled query (invariants 1 and 4). */
export async function readWith(
  log: Pick<EventLog, 'readByCursor'>,
  q: CompiledQuery,
): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  if (q.limit === 0) return out;
  // Forward: after = lower (exclusive), until = upper (inclusive).
  // Reverse: after = upper (exclusive), until = lower (inclusive): reverse reads start at `after`.
  let after = q.reverse ? q.upper : q.lower;
  const until = q.reverse ? q.lower : q.upper;
  // A reverse read's upper bound from `to` is inclusive while `after` is exclusive: the `.~`
  // suffix sorts after every real cursor of that millisecond, so exclusive works for it.
  // Every record matches without filters: a page of what is still wanted is enough (and, on a
  // partial replica, a short reverse page stays above the horizon: store/history-reads.ts 1).
  const unfiltered =
    q.types === undefined && q.correlationId === undefined && q.causationId === undefined;
  for (;;) {
    const want = unfiltered ? Math.min(PAGE, q.limit - out.length) : PAGE;
    const request: CursorQuery = { limit: want, reverse: q.reverse, withoutSignatures: true };
    if (after !== undefined) request.after = after;
    if (until !== undefined) request.until = until;
    if (q.stream !== undefined) request.stream = q.stream;
    const page = await log.readByCursor(request);
    for (const record of page) {
      if (q.reverse && q.lower !== undefined && record.event.cursor <= q.lower) return out;
      if (matchesCompiled(record, q)) {
        out.push(record);
        if (out.length >= q.limit) return out;
      }
    }
    if (page.length < want) return out;
    after = page[page.length - 1]!.event.cursor;
  }
}

/** Whether a live event matches a subscription's filters. */
export function matchesLive(record: LocalRecord, q: SubscribeQuery | undefined): boolean {
  const e = record.event;
  if (e.stream === KEYRING_STREAM) return q?.stream === KEYRING_STREAM;
  if (q === undefined) return true;
  if (q.stream !== undefined && e.stream !== q.stream) return false;
  if (q.types !== undefined && !q.types.includes(e.type)) return false;
  if (q.from !== undefined && e.time < (q.from instanceof Date ? q.from.getTime() : q.from)) {
    return false;
  }
  if (q.to !== undefined && e.time > (q.to instanceof Date ? q.to.getTime() : q.to)) return false;
  return true;
}

/** Events per page of a readSince. */
const RECEIVE_PAGE = 500;

function compileReceive(position: unknown, query: ReceiveQuery = {}) {
  if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) {
    throw new ValidationError('position', 'must be a non-negative integer');
  }
  if (typeof query !== 'object' || query === null) {
    throw new ValidationError('query', 'must be an object');
  }
  // The same checks as read(): stream, types, limit.
  const compiled = compileQuery({
    ...(query.stream === undefined ? {} : { stream: query.stream }),
    ...(query.types === undefined ? {} : { types: query.types }),
    ...(query.limit === undefined ? {} : { limit: query.limit }),
  });
  return { position, ...compiled };
}

/**
 * readSince (store.ts invariant 5): the matching records above `position` in receive order,
 * where to continue (every position up to it was examined), and the head when the read began.
 */
export async function readSinceWith(
  log: EventLog,
  position: number,
  query?: ReceiveQuery,
): Promise<{ records: LocalRecord[]; position: number; head: number }> {
  const q = compileReceive(position, query);
  const head = await log.headPos();
  const records: LocalRecord[] = [];
  let reached = Math.min(q.position, head);
  if (q.limit === 0) return { records, position: reached, head };
  for (;;) {
    const page = await log.readByPos(reached, RECEIVE_PAGE);
    for (const record of page) {
      reached = record.pos;
      const e = record.event;
      if (q.stream !== undefined && e.stream !== q.stream) continue;
      if (q.types !== undefined && !q.types.has(e.type)) continue;
      records.push(record);
      if (records.length >= q.limit) return { records, position: reached, head };
    }
    // A short page reached the head.
    if (page.length < RECEIVE_PAGE) return { records, position: reached, head };
  }
}

/** Records per page when a trimmed event is looked up in the history (stateBound). */
const TRIMMED_LOOKUP_PAGE = 500;

/**
 * The cursor of a trimmed event: the history below the log's horizon, newest first, a page at a
 * time (history-reads.ts reader). The history protocol has no lookup by id, so this pages; it
 * fails like any read past the horizon when the server cannot answer.
 */
async function trimmedCursor(
  reader: Pick<EventLog, 'readByCursor'>,
  horizon: string,
  id: string,
): Promise<string | undefined> {
  // Reverse reads are [until, after): just above the horizon includes it.
  let after = `${horizon}\u0000`;
  for (;;) {
    const page = await reader.readByCursor({ reverse: true, after, limit: TRIMMED_LOOKUP_PAGE });
    const hit = page.find((r) => r.event.id === id);
    if (hit !== undefined) return hit.event.cursor;
    const last = page[page.length - 1];
    if (page.length < TRIMMED_LOOKUP_PAGE || last === undefined) return undefined;
    after = last.event.cursor;
  }
}

/**
 * The last cursor a state at `at` folds (time travel: a time, or up to an event). `reader` reads
 * across a partial replica's horizon: an event named by id may be trimmed here.
 */
export async function stateBound(
  log: EventLog,
  at: StateAt,
  reader: Pick<EventLog, 'readByCursor'> = log,
): Promise<string> {
  if (at instanceof Date || typeof at === 'number') {
    const ms = at instanceof Date ? at.getTime() : at;
    if (!Number.isFinite(ms)) throw new ValidationError('at', 'must be a valid time');
    return cursorAtEndOf(Math.max(0, Math.floor(ms)));
  }
  if (typeof at === 'object' && at !== null && typeof at.eventId === 'string') {
    const [record] = await log.getByIds([at.eventId]);
    if (record !== undefined) return record.event.cursor;
    const horizon = await log.horizon?.();
    const cursor =
      horizon === undefined ? undefined : await trimmedCursor(reader, horizon, at.eventId);
    if (cursor === undefined) {
      throw new NotFoundError(`no event has id "${at.eventId}"`, { eventId: at.eventId });
    }
    return cursor;
  }
  throw new ValidationError('at', 'must be a Date, a time in ms or { eventId }');
}
