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
 * 5. An append finding, at the stream's end, an own event beside another replica's at one
 *    version (core/strict.ts invariant 6) has the own ones taken out first (`onFork`: the store
 *    treats them as rejected), then fails with ConcurrencyError: a command decides again on the
 *    accepted state, an append that expected 'any' is prepared again.
 * 4. The version and last id of a stream this store just appended to are remembered
 *    (StrictHeads): the next append to it reads nothing first. A stale memory fails its
 *    expectedVersion and is read again (invariant 2); an append that expected a version of its own
 *    is then refused as any append is.
 */
import { ConcurrencyError, ValidationError } from '../core/errors.ts';
import type { ExpectedVersion, JsonObject, NewEvent } from '../core/events.ts';
import { EventId } from '../core/ids.ts';
import { forkedOwn, STRICT_META, type StrictRejection } from '../core/strict.ts';
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

/**
 * The stream's version and the id of its event at that version (the last in the total order
 * when several), read at once: both reads in flight together. When the stream's end read does not
 * hold that version (another tab wrote between the two reads), both are read again, in order.
 */
async function versionAndPrev(
  log: EventLog,
  stream: string,
): Promise<{ version: number; prev: string | undefined; forked: StrictRejection[] }> {
  const tail = () => log.readByCursor({ stream, reverse: true, limit: 16 });
  const [version, last] = await Promise.all([log.streamVersion(stream), tail()]);
  const forked = forkedOwn(last.map((r) => r.event).reverse(), log.replicaId);
  if (version === 0) return { version, prev: undefined, forked };
  const atVersion = last.find((r) => r.event.version === version);
  if (atVersion !== undefined) return { version, prev: atVersion.event.id, forked };
  const again = await log.streamVersion(stream);
  const later = await tail();
  return {
    version: again,
    prev: (later.find((r) => r.event.version === again) ?? later[0])?.event.id,
    forked: forkedOwn(later.map((r) => r.event).reverse(), log.replicaId),
  };
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

/**
 * The version and last event id of strict streams this store appended to last, so that the next
 * append to one needs no read (invariant 4). A stale entry costs a ConcurrencyError and a read,
 * never a wrong chain: the write checks the version in its transaction. The store forgets them
 * all whenever the log may have changed under it (an ingest, a discard, a re-stamp, another
 * tab's write).
 */
export class StrictHeads {
  private readonly heads = new Map<string, { version: number; prev: string }>();

  get(stream: string): { version: number; prev: string | undefined } | undefined {
    return this.heads.get(stream);
  }

  /** After an append wrote `last` as the stream's newest event. */
  wrote(stream: string, last: { version: number; id: string } | undefined): void {
    if (last === undefined) return;
    if (this.heads.size >= MAX_HEADS && !this.heads.has(stream)) this.heads.clear();
    this.heads.set(stream, { version: last.version, prev: last.id });
  }

  forget(stream?: string): void {
    if (stream === undefined) this.heads.clear();
    else this.heads.delete(stream);
  }
}

/** Streams whose head a store remembers at most. */
const MAX_HEADS = 1000;

/** The events of one strict stream's part of an append, and the version they expect. */
export async function prepareStrict(
  log: EventLog,
  stream: string,
  events: unknown,
  expected: ExpectedVersion | undefined,
  now: number,
  heads?: StrictHeads,
  onFork?: (rejected: StrictRejection[]) => Promise<void>,
): Promise<{ events: NewEvent<unknown>[]; expectedVersion: ExpectedVersion }> {
  const list = Array.isArray(events) ? events : [events];
  const cached = heads?.get(stream);
  const { version, prev, forked } =
    cached === undefined ? await versionAndPrev(log, stream) : { ...cached, forked: [] };
  if (forked !== undefined && forked.length > 0) {
    // Invariant 5: own events the authority rejected are still here, beside the accepted ones;
    // what the caller decided may count both. They leave first, then the caller decides again.
    await onFork?.(forked);
    throw new ConcurrencyError(stream, typeof expected === 'number' ? expected : version, version);
  }
  return {
    events: marked(list, prev, now) as NewEvent<unknown>[],
    expectedVersion: typeof expected === 'number' || expected === 'none' ? expected : version,
  };
}

/** An append to a strict stream (invariants 1, 2, 4): `write` appends what it is given. */
export async function appendStrict<
  T extends { events: readonly { version: number; id: string }[]; lastPos?: number },
>(
  log: EventLog,
  stream: string,
  events: unknown,
  expected: ExpectedVersion | undefined,
  now: () => number,
  write: (events: NewEvent<unknown>[], expectedVersion: ExpectedVersion) => Promise<T>,
  heads?: StrictHeads,
  onFork?: (rejected: StrictRejection[]) => Promise<void>,
): Promise<T> {
  const retry = expected === undefined || expected === 'any';
  for (let attempt = 1; ; attempt++) {
    let prepared: Awaited<ReturnType<typeof prepareStrict>>;
    try {
      prepared = await prepareStrict(log, stream, events, expected, now(), heads, onFork);
    } catch (error) {
      if (!retry || !(error instanceof ConcurrencyError) || attempt >= STRICT_ATTEMPTS) throw error;
      continue;
    }
    try {
      const written = await write(prepared.events, prepared.expectedVersion);
      // A duplicate (nothing written) says nothing of the stream's head.
      if (written.lastPos !== undefined) heads?.wrote(stream, written.events.at(-1));
      else heads?.forget(stream);
      return written;
    } catch (error) {
      heads?.forget(stream);
      if (!retry || !(error instanceof ConcurrencyError) || attempt >= STRICT_ATTEMPTS) throw error;
    }
  }
}
