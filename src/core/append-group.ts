/**
 * Group commit, pure: several local appends planned for one write transaction. Each unit is an
 * atomic append to one or more streams (store.append is a unit of one stream, store.appendMany
 * one of several); the units of a group share the transaction but are decided one by one.
 *
 * Invariants:
 * 1. A unit is written whole or not at all: if any of its streams is rejected (expectedVersion,
 *    idempotency), none of its events are written and the unit reports that error.
 * 2. Units are independent: a rejected unit changes nothing the next ones see, and the next
 *    ones are planned as if it had never been asked for.
 * 3. Units are planned in order, each seeing what the ones before it wrote: a stream appended to
 *    twice in a group takes consecutive versions, a custom id written by an earlier unit is
 *    stored for a later one (a duplicate, or an IdempotencyError), and seqs, positions and HLCs
 *    follow the order of the units, so a group writes what the same appends would write one
 *    transaction each, in the same order.
 * 4. One id given in two parts of a unit is an IdempotencyError ('duplicate-in-batch'), as it
 *    is twice in one part.
 * 5. Each stream's part follows core/append.ts planLocalAppend exactly (invariants 1–5 there).
 * 6. A unit naming an id whose event the log trimmed (docs/storage-growth.md: stored, body gone)
 *    is an IdempotencyError ('trimmed'): it is stored, but its payload cannot be compared.
 */
import { type LocalAppendPlan, planLocalAppend, type ReplicaCounters } from './append.ts';
import { type ChronicleError, IdempotencyError } from './errors.ts';
import type { ExpectedVersion, LocalRecord, StoredEventRecord } from './events.ts';
import type { EventId, ReplicaId } from './ids.ts';
import type { ValidNewEvent } from './validate.ts';

/** One stream's part of a unit. */
export interface StreamAppendInput {
  stream: string;
  /** An event without an id gets EventId.canonical(replica, seq). */
  events: (ValidNewEvent & { id?: EventId })[];
  expectedVersion: ExpectedVersion;
}

export interface AppendGroupInput {
  replica: ReplicaId;
  now: number;
  /** Each unit: one or more streams' appends, all or nothing (invariant 1). */
  units: readonly (readonly StreamAppendInput[])[];
}

export interface AppendGroupReads {
  counters: ReplicaCounters;
  /** The stored version of every stream the group names (0 or absent: none). */
  streamVersions: ReadonlyMap<string, number>;
  /** The stored event of every custom id the group names that is stored. */
  existing: ReadonlyMap<string, StoredEventRecord>;
  /** Custom ids the group names whose events the log trimmed (invariant 6). */
  trimmed?: ReadonlySet<string>;
}

/** What one stream's part came to: written, or nothing because every id was stored. */
export type StreamAppendOutcome =
  | { kind: 'written'; records: LocalRecord[] }
  | { kind: 'duplicate'; events: StoredEventRecord[] };

export type AppendUnitOutcome =
  | { kind: 'rejected'; error: ChronicleError }
  | { kind: 'appended'; streams: StreamAppendOutcome[] };

export interface AppendGroupPlan {
  /** One per unit, in order. */
  outcomes: AppendUnitOutcome[];
  /** Every record the accepted units write, in position order. */
  write: LocalRecord[];
  counters: ReplicaCounters;
  /** The new version of each stream written to. */
  streamVersions: Map<string, number>;
}

/** Ids of every event the group names that a caller gave (canonical ids cannot be stored). */
export function customIdsOf(units: AppendGroupInput['units']): string[] {
  const ids = new Set<string>();
  for (const unit of units) {
    for (const part of unit) for (const e of part.events) if (e.id !== undefined) ids.add(e.id);
  }
  return [...ids];
}

/** An id given twice in one unit, across its parts (planLocalAppend checks within a part). */
function repeatedId(unit: readonly StreamAppendInput[]): string | undefined {
  if (unit.length < 2) return undefined;
  const seen = new Set<string>();
  for (const part of unit) {
    const own = new Set<string>();
    for (const e of part.events) {
      if (e.id === undefined || own.has(e.id)) continue;
      if (seen.has(e.id)) return e.id;
      own.add(e.id);
    }
    for (const id of own) seen.add(id);
  }
  return undefined;
}

/** An id of the unit whose event the log trimmed (invariant 6). */
function trimmedId(
  unit: readonly StreamAppendInput[],
  trimmed: ReadonlySet<string> | undefined,
): string | undefined {
  if (trimmed === undefined || trimmed.size === 0) return undefined;
  for (const part of unit) {
    for (const e of part.events) if (e.id !== undefined && trimmed.has(e.id)) return e.id;
  }
  return undefined;
}

/** Every stream the group names, once. */
export function streamsOf(units: AppendGroupInput['units']): string[] {
  const streams = new Set<string>();
  for (const unit of units) for (const part of unit) streams.add(part.stream);
  return [...streams];
}

export function planAppendGroup(input: AppendGroupInput, reads: AppendGroupReads): AppendGroupPlan {
  let counters = reads.counters;
  const versions = new Map<string, number>();
  const written = new Map<string, StoredEventRecord>();
  const write: LocalRecord[] = [];
  const outcomes: AppendUnitOutcome[] = [];
  const versionOf = (stream: string, local: Map<string, number>) =>
    local.get(stream) ?? versions.get(stream) ?? reads.streamVersions.get(stream) ?? 0;
  const storedOf = (id: string, local: Map<string, StoredEventRecord>) =>
    local.get(id) ?? written.get(id) ?? reads.existing.get(id);

  for (const unit of input.units) {
    const repeated = repeatedId(unit);
    if (repeated !== undefined) {
      outcomes.push({
        kind: 'rejected',
        error: new IdempotencyError(repeated, 'duplicate-in-batch'),
      });
      continue;
    }
    const trimmed = trimmedId(unit, reads.trimmed);
    if (trimmed !== undefined) {
      outcomes.push({ kind: 'rejected', error: new IdempotencyError(trimmed, 'trimmed') });
      continue;
    }
    // Tentative until the whole unit is accepted (invariants 1 and 2).
    let unitCounters = counters;
    const unitVersions = new Map<string, number>();
    const unitIds = new Map<string, StoredEventRecord>();
    const unitRecords: LocalRecord[] = [];
    const streams: StreamAppendOutcome[] = [];
    let error: ChronicleError | undefined;
    for (const part of unit) {
      const plan: LocalAppendPlan = planLocalAppend(
        { ...part, replica: input.replica, now: input.now },
        {
          counters: unitCounters,
          streamVersion: versionOf(part.stream, unitVersions),
          existing: part.events.map((e) =>
            e.id === undefined ? undefined : storedOf(e.id, unitIds),
          ),
        },
      );
      if (plan.kind === 'rejected') {
        error = plan.error;
        break;
      }
      if (plan.kind === 'duplicate') {
        streams.push({ kind: 'duplicate', events: plan.events });
        continue;
      }
      unitCounters = plan.counters;
      unitVersions.set(part.stream, plan.streamVersion);
      for (const r of plan.events) {
        unitIds.set(r.event.id, r.event);
        unitRecords.push(r);
      }
      streams.push({ kind: 'written', records: plan.events });
    }
    if (error !== undefined) {
      outcomes.push({ kind: 'rejected', error });
      continue;
    }
    counters = unitCounters;
    for (const [stream, version] of unitVersions) versions.set(stream, version);
    for (const [id, event] of unitIds) written.set(id, event);
    write.push(...unitRecords);
    outcomes.push({ kind: 'appended', streams });
  }
  return { outcomes, write, counters, streamVersions: versions };
}
