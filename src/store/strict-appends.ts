/**
 * Appends to strict streams (core/strict.ts): the store marks every event of a stream the app
 * declared strict (StoreOptions.strictStreams) and names the event it was decided after, so that
 * the authority can tell an event that extends the accepted chain from one that does not.
 *
 * Invariants:
 * 1. Every event of an append to a strict stream carries `$strict: true`; the first carries the
 *    id of the stream's event at the version the append expects as `$prev` (none when the stream
 *    is empty), each later one the id of the event before it, which therefore gets an id before
 *    the write when it has none.
 * 2. The version read is the one the append expects: `prev` and the version come from one read,
 *    and the write fails with ConcurrencyError if another writer moved the stream since; an
 *    append that expected 'any' (or nothing) is then prepared again, up to STRICT_ATTEMPTS.
 * 3. An app cannot make an event strict, nor name a `prev`, outside a strict stream: meta holding
 *    `$strict` or `$prev` is refused with VALIDATION (the authority would otherwise hold a stream
 *    strict that the app never declared).
 */
import { ConcurrencyError, ValidationError } from '../core/errors.ts';
import type { ExpectedVersion, JsonObject, NewEvent } from '../core/events.ts';
import { EventId } from '../core/ids.ts';
import { STRICT_META } from '../core/strict.ts';
import type { EventLog } from '../storage/adapter.ts';

/** Preparations tried against another tab writing the same strict stream (invariant 2). */
const STRICT_ATTEMPTS = 5;

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Invariant 3, for an append to a stream that is not strict. */
export function refuseStrictMeta(events: unknown): void {
  const list = Array.isArray(events) ? events : [events];
  list.forEach((event, i) => {
    const meta = isPlainObject(event) ? event.meta : undefined;
    if (!isPlainObject(meta)) return;
    for (const key of [STRICT_META.strict, STRICT_META.prev]) {
      if (Object.hasOwn(meta, key)) {
        throw new ValidationError(
          `events[${i}].meta.${key}`,
          'is set by the store on streams declared strict (StoreOptions.strictStreams) only',
        );
      }
    }
  });
}

/** The id of the stream's event at `version` (the last in the total order when several). */
async function idAtVersion(
  log: EventLog,
  stream: string,
  version: number,
): Promise<string | undefined> {
  if (version === 0) return undefined;
  const last = await log.readByCursor({ stream, reverse: true, limit: 16 });
  return (last.find((r) => r.event.version === version) ?? last[0])?.event.id;
}

/** Invariant 1: the events marked, chained from `prev`. */
function marked(events: readonly unknown[], prev: string | undefined, now: number): unknown[] {
  let before = prev;
  return events.map((event, i) => {
    // A malformed event goes to validation as it is, which names what is wrong with it.
    if (!isPlainObject(event) || (event.meta !== undefined && !isPlainObject(event.meta))) {
      return event;
    }
    const meta: JsonObject = { ...(event.meta ?? {}), [STRICT_META.strict]: true };
    if (before !== undefined) meta[STRICT_META.prev] = before;
    const out: JsonObject = { ...event, meta };
    if (i < events.length - 1 && out.id === undefined) out.id = EventId.make(now);
    before = typeof out.id === 'string' ? out.id : undefined;
    return out;
  });
}

/** The events of one strict stream's part of an append, and the version they expect. */
export async function prepareStrict(
  log: EventLog,
  stream: string,
  events: unknown,
  expected: ExpectedVersion | undefined,
  now: number,
): Promise<{ events: NewEvent<unknown>[]; expectedVersion: ExpectedVersion }> {
  const list = Array.isArray(events) ? events : [events];
  const version = await log.streamVersion(stream);
  const prev = await idAtVersion(log, stream, version);
  return {
    events: marked(list, prev, now) as NewEvent<unknown>[],
    expectedVersion: typeof expected === 'number' || expected === 'none' ? expected : version,
  };
}

/** An append to a strict stream (invariants 1, 2): `write` appends what it is given. */
export async function appendStrict<T>(
  log: EventLog,
  stream: string,
  events: unknown,
  expected: ExpectedVersion | undefined,
  now: () => number,
  write: (events: NewEvent<unknown>[], expectedVersion: ExpectedVersion) => Promise<T>,
): Promise<T> {
  const retry = expected === undefined || expected === 'any';
  for (let attempt = 1; ; attempt++) {
    const prepared = await prepareStrict(log, stream, events, expected, now());
    try {
      return await write(prepared.events, prepared.expectedVersion);
    } catch (error) {
      if (!retry || !(error instanceof ConcurrencyError) || attempt >= STRICT_ATTEMPTS) throw error;
    }
  }
}
