/**
 * The SQLite replica's writes (sqlite.ts), each the body of ONE `BEGIN IMMEDIATE` transaction:
 * read what the pure planner needs (core/append-group.ts, core/append.ts, core/integrity.ts),
 * call it, write exactly what it returns. better-sqlite3 is synchronous, so nothing else of
 * this process runs inside a transaction, and IMMEDIATE takes the file's write lock before the
 * first read, so another handle or process cannot slip a write between the reads and the writes
 * (adapter.ts A2: counters, versions and positions are read inside the write transaction).
 *
 * Invariant: every write of log_events moves the state row's `gen` (LogStatements.setCounters
 * or touch), so that a re-stamp planned from reads taken outside its transaction can tell
 * whether the log changed under it (sqlite.ts restamp).
 */
import { planIngest } from '../core/append.ts';
import {
  type AppendUnitOutcome,
  customIdsOf,
  planAppendGroup,
  streamsOf,
} from '../core/append-group.ts';
import type { JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import { compareHlc, decodeHlc } from '../core/hlc.ts';
import type { ReplicaId } from '../core/ids.ts';
import { adoptedIdentity, forkedReplica, type StoredSigningKey } from '../core/replica-identity.ts';
import { clockAfterBase, uncovered } from '../core/space-join.ts';
import { lostTrimmedOf } from '../core/trimmed-copies.ts';
import type {
  AppendGroupRequest,
  DiscardedEvent,
  IngestRequest,
  IngestResult,
  LogBase,
  SnapshotRecord,
  TrimResult,
} from './adapter.ts';
import { hlcOfCursor } from './restamp-reads.ts';
import { minCursorOf } from './rewrites.ts';
import type { LogStatements } from './sqlite-rows.ts';

export interface Written<T> {
  result: T;
  replica: ReplicaId;
  /** The head position after the write, when it changed the log (for the notice). */
  head?: number;
  /** The smallest cursor it took out or moved (adapter.ts onRemoteWrite). */
  rewrittenFrom?: string;
}

export function appendGroupIn(
  st: LogStatements,
  request: AppendGroupRequest,
): Written<AppendUnitOutcome[]> {
  const state = st.state();
  const existing = new Map<string, StoredEventRecord>();
  const trimmed = new Set<string>();
  for (const id of customIdsOf(request.units)) {
    const held = st.byId(id);
    if (held !== undefined) existing.set(id, held.event);
    else if (st.trimmedId(id)) trimmed.add(id);
  }
  const streamVersions = new Map<string, number>();
  for (const stream of streamsOf(request.units)) {
    streamVersions.set(stream, st.streamVersion(stream));
  }
  const plan = planAppendGroup(
    { replica: state.replica, now: request.now, units: request.units },
    { counters: state.counters, streamVersions, existing, trimmed },
  );
  if (plan.write.length === 0) return { result: plan.outcomes, replica: state.replica };
  st.insert(plan.write);
  st.setCounters(plan.counters);
  for (const [stream, version] of plan.streamVersions) st.setStreamVersion(stream, version);
  return { result: plan.outcomes, replica: state.replica, head: plan.counters.pos };
}

export function ingestIn(st: LogStatements, given: IngestRequest): Written<IngestResult> {
  const state = st.state();
  // Covered by an installed base: held (adapter.ts invariant 7).
  const vector = st.getMeta(BASE_VECTOR_META_KEY);
  const covered = uncovered(isVector(vector) ? vector : undefined, given.events);
  const request = { ...given, events: covered };
  const streams = new Map<string, number>();
  for (const e of request.events) streams.set(e.stream, st.streamVersion(e.stream));
  const plan = planIngest(
    { ...request, replica: state.replica },
    {
      counters: state.counters,
      existing: request.events.map((e) => st.byId(e.id)),
      slots: request.events.map((e) => st.bySlot(e.replica, e.seq)),
      // A trimmed event meets its copies by its trace (core/trimmed-copies.ts).
      trimmedById: request.events.map((e) => st.trimmedTraceById(e.id)),
      trimmedBySlot: request.events.map((e) => st.trimmedTraceAt(e.replica, e.seq)),
      streamVersions: streams,
    },
  );
  let replica = state.replica;
  // core/append.ts invariant 8: the old id is in use elsewhere; the counters restart with the new.
  if (plan.forked) {
    const next = forkedReplica(state.identity);
    replica = next.replicaId;
    st.setReplica(replica);
    if (next.identity !== undefined) st.setIdentity(next.identity);
  }
  // Losers leave first: a winner may reuse their id and slot (core/copies.ts).
  st.evictTrimmed(plan.evict);
  st.remove(plan.remove);
  st.insert(plan.write);
  st.setCounters(plan.counters);
  for (const [stream, version] of plan.streamVersions) st.setStreamVersion(stream, version);
  // core/append.ts invariant 9: a strict loser never counted.
  for (const stream of plan.recount) st.setStreamVersion(stream, st.topVersion(stream));
  for (const stream of plan.possibleConflicts) st.flagConflict(stream);
  const result = {
    written: plan.write,
    removed: plan.remove,
    skewed: plan.skewed,
    lost: plan.lost,
    ...lostTrimmedOf(plan),
  };
  return plan.write.length > 0 ? { result, replica, head: plan.counters.pos } : { result, replica };
}

export const HORIZON_META_KEY = 'log.horizon';
/** An installed base's version vector (adapter.ts invariant 7). */
export const BASE_VECTOR_META_KEY = 'log.baseVector';

export function isVector(value: JsonValue | undefined): value is Record<string, number> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * adapter.ts installBase, in the caller's transaction: only on a log that never held an event
 * and has no horizon. `putSnapshot` writes through the same database, so inside it.
 */
export function installBaseIn(
  st: LogStatements,
  base: LogBase,
  putSnapshot: (snapshot: SnapshotRecord) => void,
): Written<boolean> {
  const state = st.state();
  if (state.counters.pos > 0 || st.getMeta(HORIZON_META_KEY) !== undefined) {
    return { result: false, replica: state.replica };
  }
  st.setMeta(HORIZON_META_KEY, base.horizon);
  st.setMeta(BASE_VECTOR_META_KEY, { ...base.vector });
  st.setCounters({
    ...state.counters,
    clock: clockAfterBase(state.counters.clock, base.horizon),
  });
  for (const { stream, version, conflict } of base.streams) {
    st.setStreamVersion(stream, version);
    if (conflict) st.flagConflict(stream);
  }
  for (const snapshot of base.snapshots) putSnapshot(snapshot);
  for (const [key, value] of Object.entries(base.meta)) st.setMeta(key, value);
  return { result: true, replica: state.replica };
}
export const TRIMMED_POS_META_KEY = 'log.trimmedPos';

/** adapter.ts trim: one step, in the caller's transaction; the horizon in log_meta only grows. */
export function trimIn(
  st: LogStatements,
  horizon: string,
  limit: number,
  maxPos: number,
): Written<TrimResult> {
  const state = st.state();
  // SQLite binds integers up to 2^63: an unbounded maxPos is the largest safe one.
  const bound = Math.min(maxPos, Number.MAX_SAFE_INTEGER);
  const trimmed = st.trim(horizon, limit, bound);
  const cursors = trimmed.map((r) => r.cursor);
  const top = Math.max(0, ...trimmed.map((r) => r.pos));
  const before = st.getMeta(TRIMMED_POS_META_KEY);
  if (top > (typeof before === 'number' ? before : 0)) st.setMeta(TRIMMED_POS_META_KEY, top);
  const stored = st.getMeta(HORIZON_META_KEY);
  let next = typeof stored === 'string' ? stored : undefined;
  const last = cursors[cursors.length - 1];
  if (last !== undefined && (next === undefined || last > next)) {
    next = last;
    st.setMeta(HORIZON_META_KEY, next);
  }
  const result = {
    trimmed: cursors.length,
    horizon: next,
    more: st.trimmable(horizon, bound),
  };
  return cursors.length > 0
    ? { result, replica: state.replica, head: state.counters.pos }
    : { result, replica: state.replica };
}

/** adapter.ts discard: own events named by id and seq leave; their streams keep what remains. */
export function discardIn(
  st: LogStatements,
  events: readonly DiscardedEvent[],
): Written<LocalRecord[]> {
  const state = st.state();
  const records: LocalRecord[] = [];
  for (const { id, seq, replica = state.replica } of events) {
    const held = st.byId(id);
    if (held?.event.replica === replica && held.event.seq === seq) records.push(held);
  }
  if (records.length === 0) return { result: [], replica: state.replica };
  st.remove(records);
  st.touch();
  const from = minCursorOf(records)!;
  st.noteRewrite(from);
  // Rejected events never counted: each stream's version is what it still holds.
  for (const stream of new Set(records.map((r) => r.event.stream))) {
    st.setStreamVersion(stream, st.topVersion(stream));
  }
  return {
    result: records,
    replica: state.replica,
    head: state.counters.pos,
    rewrittenFrom: from,
  };
}

/**
 * A re-stamp plan's records written at their positions, and the clock set back to the greatest
 * HLC the log then holds (adapter.ts restamp). The caller checked `gen` first.
 */
export function restampIn(st: LogStatements, changed: readonly LocalRecord[]): string {
  const state = st.state();
  for (const record of changed) st.rewrite(record);
  const [top] = st.readByCursor({ reverse: true, limit: 1 });
  let clock = state.counters.clock;
  if (top !== undefined) {
    const held = decodeHlc(hlcOfCursor(top.event.cursor));
    if (compareHlc(held, clock) < 0) clock = held;
  }
  st.setCounters({ ...state.counters, clock });
  const from = minCursorOf(changed)!;
  st.noteRewrite(from);
  return from;
}

export function adoptIn(st: LogStatements, key: StoredSigningKey): ReplicaId {
  const state = st.state();
  if (state.identity !== undefined) return state.replica;
  const adopted = adoptedIdentity(key, state.counters.seq);
  st.setIdentity(adopted.identity);
  if (adopted.replicaId === undefined) return state.replica;
  st.setReplica(adopted.replicaId);
  return adopted.replicaId;
}

/** adapter.ts replaceOwn: a record is written again only where its id and cursor still are. */
export function replaceOwnIn(st: LogStatements, records: readonly LocalRecord[]): void {
  let changed = false;
  for (const given of records) {
    const held = st.heldAt(given.pos);
    if (held?.id !== given.event.id || held.cursor !== given.event.cursor) continue;
    st.rewrite(given);
    changed = true;
  }
  if (changed) st.touch();
}
