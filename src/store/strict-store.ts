/**
 * The store's side of strict streams (core/strict.ts), apart from appends (strict-appends.ts)
 * and what a rejection leads to (strict-rejections.ts): the declaration, the meta of a strict
 * command's events, taking rejected events out with the projections' rebase, and running a
 * command again. store.ts wires it to its own parts.
 *
 * Invariants:
 * 1. Events leave the log through the store's write gate, and every projection is told the
 *    smallest cursor they had before that write counts as finished (projection-runtime.ts 9,
 *    10): no state folds the log before and after the discard mixed.
 * 2. Their seqs are forgone (forgone.ts) before the sync controller hears of the change, so
 *    `pending` never waits for them.
 * 3. An event written under an id the log had before it moved to a fresh one (core/append.ts
 *    invariant 8) is still this replica's: a rejection naming it takes it out (core/strict.ts
 *    invariant 9), or it would stay, tentative for good, once the move came between its push
 *    and the authority's answer. The store learns such ids as its ingest moves, and from the
 *    log's stored identity (a nonce per id it had) when a rejection names one it has not seen
 *    move: after a restart, or a move another handle made (strict-rejections.ts).
 */
import type { AnyAggregate } from '../core/aggregate.ts';
import type { LostCopy } from '../core/copies.ts';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import type {
  JsonObject,
  JsonValue,
  LocalRecord,
  NewEvent,
  StoredEvent,
  StoredEventRecord,
} from '../core/events.ts';
import { beatenByCopies, forkedOwn, isStrictEvent, type StrictRejection } from '../core/strict.ts';
import type { EventLog } from '../storage/adapter.ts';
import { minCursorOf } from '../storage/rewrites.ts';
import type { ChangeFeed } from './change-feed.ts';
import { type CommandHost, executeCommand } from './commands.ts';
import { noteForgone } from './forgone.ts';
import type { ProjectionRuntime } from './projection-runtime.ts';
import { REBASE_META, type Rerun } from './strict-rejections.ts';
import type { ProjectionWatchers } from './watchers.ts';
import type { WriteGate } from './write-gate.ts';

/** StoreOptions.strictStreams: names, or prefixes ending in `*` (core/strict.ts). */
export function validStrictStreams(value: unknown): string[] {
  if (value === undefined) return [];
  if (
    !Array.isArray(value) ||
    value.some((v) => typeof v !== 'string' || v.length === 0 || v === '*')
  ) {
    throw new ValidationError(
      'options.strictStreams',
      "must be an array of stream names or prefixes ending in '*' (not '*' alone)",
    );
  }
  return value as string[];
}

/** The meta a strict-stream command's events carry for a rebase (strict-rejections.ts 3). */
export function strictStamp<E>(
  aggregate: string,
  input: JsonValue,
  rebase: number,
): (events: NewEvent<E>[]) => NewEvent<E>[] {
  return (events) =>
    events.map((event, i) => {
      const meta: JsonObject = { ...(event.meta ?? {}), [REBASE_META.aggregate]: aggregate };
      if (i === 0) meta[REBASE_META.input] = input;
      if (rebase > 0) meta[REBASE_META.rebase] = rebase;
      return { ...event, meta };
    });
}

/** The store's parts that strict streams use. */
export interface StrictStoreParts<E> {
  log: EventLog;
  gate: WriteGate;
  runtimes: ReadonlyMap<string, ProjectionRuntime>;
  watchers: ReadonlyMap<string, ProjectionWatchers>;
  feed: ChangeFeed;
  aggregates: ReadonlyMap<string, AnyAggregate<E>>;
  commandHost(): CommandHost<E>;
  /** Ids this log had before it moved to a fresh one (invariant 3). */
  formerIds: ReadonlySet<string>;
}

/** Rebases every projection from `from` on, and tells the watchers. */
export async function rebaseProjections<E>(
  parts: StrictStoreParts<E>,
  from: string,
): Promise<void> {
  await Promise.all([...parts.runtimes.values()].map((r) => r.restamped(from)));
  for (const w of parts.watchers.values()) w.changed();
}

/** Takes this replica's rejected events out of the log (invariants 1–3). */
export async function discardRejected<E>(
  parts: StrictStoreParts<E>,
  rejections: readonly StrictRejection[],
): Promise<LocalRecord[]> {
  const { log } = parts;
  const me = log.replicaId;
  const own = rejections
    .filter((r) => r.replica === me || parts.formerIds.has(r.replica))
    .map((r) => ({ id: r.id, seq: r.seq, replica: r.replica }));
  if (own.length === 0) return [];
  let from: string | undefined;
  const removed = await parts.gate.write(async () => {
    const out = await log.discard(own);
    from = minCursorOf(out);
    if (from !== undefined)
      for (const runtime of parts.runtimes.values()) runtime.noteRestamp(from);
    return out;
  });
  if (from === undefined) return removed;
  await rebaseProjections(parts, from);
  await noteForgone(log, me, { written: [], removed, skewed: false, lost: [] });
  parts.feed.announceHead();
  return removed;
}

/** Runs a rejected command again on the stream as it is now (strict-rejections.ts 3). */
export function rerunCommand<E>(
  parts: StrictStoreParts<E>,
  rerun: Rerun,
): Promise<StoredEvent<E>[]> {
  const aggregate = parts.aggregates.get(rerun.aggregate);
  if (aggregate === undefined) {
    return Promise.reject(
      new NotFoundError(`no aggregate is named "${rerun.aggregate}"`, {
        aggregate: rerun.aggregate,
      }),
    );
  }
  return executeCommand<E>(
    parts.commandHost(),
    aggregate,
    rerun.stream,
    rerun.command,
    rerun.input,
    {},
    {
      chain: { chain: rerun.chain, named: rerun.named },
      stamp: strictStamp(aggregate.name, rerun.input, rerun.rebase),
    },
  );
}

/**
 * After an ingest: for each stream where it wrote another replica's strict event, the own
 * events beside an accepted one at its version (core/strict.ts forkedOwn), handed to `reject`.
 */
export async function settleForks<E>(
  parts: StrictStoreParts<E>,
  written: readonly LocalRecord[],
  reject: (rejected: StrictRejection[]) => Promise<void>,
): Promise<void> {
  const { log } = parts;
  const me = log.replicaId;
  const streams = new Set<string>();
  for (const r of written)
    if (r.event.replica !== me && isStrictEvent(r.event)) streams.add(r.event.stream);
  const forked: StrictRejection[] = [];
  for (const stream of streams) {
    const tail = await log.readByCursor({ stream, reverse: true, limit: 16 });
    forked.push(...forkedOwn(tail.map((r) => r.event).reverse(), me));
  }
  if (forked.length > 0) await reject(forked);
}

/**
 * After an ingest: strict events from elsewhere that lost to own ones by the copies' rule were
 * accepted (core/strict.ts invariant 9): the own ones are handed to `reject`, and the accepted
 * ones returned, to be ingested again now that their ids and slots are free. `me` is the log's
 * replica id when the ingest began: an own slot met there moved the log to a fresh one.
 */
export async function settleCopies<E>(
  parts: StrictStoreParts<E>,
  lost: readonly LostCopy[],
  me: string,
  reject: (rejected: StrictRejection[]) => Promise<void>,
): Promise<StoredEventRecord[]> {
  const { log } = parts;
  const beaten = lost.filter((l) => !l.held && isStrictEvent(l.event));
  if (beaten.length === 0) return [];
  // A former id too: a restored device holds its former self's first run of a command whose
  // accepted re-run comes back under that id at another seq (core/strict.ts invariant 9). The
  // ids a log had are in its stored identity (one nonce each), across restarts and restores.
  const ids = new Set([me, ...parts.formerIds]);
  if (beaten.some((l) => !ids.has(l.keptReplica))) {
    for (const id of Object.keys((await log.identity())?.nonces ?? {})) ids.add(id);
  }
  const own = (replica: string) => ids.has(replica);
  const candidates = beaten.filter((l) => own(l.keptReplica));
  if (candidates.length === 0) return [];
  const held = await log.getByIds(candidates.map((l) => l.keptId));
  const { rejected, accepted } = beatenByCopies(candidates, held, own);
  if (rejected.length > 0) await reject(rejected);
  return accepted;
}
