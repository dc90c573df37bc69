/**
 * The pure decisions of writing to the log: a local append and the ingest of replicated events.
 * A storage adapter reads what these functions need inside its write transaction, calls them,
 * and writes exactly what they return, in that same transaction.
 *
 * Invariants:
 * 1. A batch is written whole or not at all.
 * 2. A replica's seq is dense: each written local event takes the next seq.
 * 3. The HLC never decreases, and every local event's HLC exceeds every HLC the replica has seen.
 * 4. A stream's version on a replica is the largest version it holds in that stream; a local
 *    append takes the next ones.
 * 5. Idempotency is exact: a batch whose ids are all stored with equal payloads writes nothing and
 *    returns the stored events; a differing payload or a mix of stored and new ids is an error;
 *    both are decided before expectedVersion is checked.
 * 6. Ingest is idempotent: an id already stored with the same copy is skipped. Two different
 *    copies of one id, or of one (replica, seq), keep the winner of core/copies.ts whatever the
 *    order they came in: a held loser leaves the log and the winner takes a new position.
 * 7. Local positions grow in the order of writing (receive order); they are dense but for the
 *    holes that losers of invariant 6 leave.
 * 8. A replica that finds two different copies of one of its own (replica, seq) or ids (a
 *    restored backup, a clone) moves to a fresh replica id for its future appends, with its seq
 *    counter at 0: its old id is in use elsewhere, at seqs it may not have seen yet.
 * 9. A held strict event that loses to a copy (core/strict.ts: a restored device's own event at
 *    a slot or id its former self used) never counted, as a rejected one never does: its stream's
 *    version comes down to what the stream still holds (`recount`), as after a discard. Other
 *    streams keep the version a loser gave them (invariant 4 reads "held" as "ever held" there).
 *    Kept, the version named an event the stream no longer held: the command run again on that
 *    stream appended after it, at a version the authority had never accepted below, and the
 *    first accepted version of the stream was missing on every replica (STRICT_RESTORE=1).
 */

import { type LostCopy, replicaOfCursor, resolveCopies } from './copies.ts';
import { type ChronicleError, ConcurrencyError, IdempotencyError } from './errors.ts';
import type { ExpectedVersion, LocalRecord, StoredEventRecord } from './events.ts';
import { decodeHlc, encodeHlc, type HlcState, receive, tick } from './hlc.ts';
import { Cursor, EventId, type ReplicaId, Seq } from './ids.ts';
import { withoutIntegrity } from './integrity.ts';
import { jsonEqual } from './json.ts';
import { isErasure } from './keyring-events.ts';
import { isStrictEvent } from './strict.ts';
import type { TrimmedCopyLoss, TrimmedTrace } from './trimmed-copies.ts';
import type { ValidNewEvent } from './validate.ts';

/** The replica-wide counters that live in storage and change in the write transaction. */
export interface ReplicaCounters {
  /** Last seq this replica gave to one of its own events; 0 before the first. */
  seq: number;
  /** Last local log position; 0 when the log is empty. */
  pos: number;
  clock: HlcState;
}

export interface LocalAppendInput {
  replica: ReplicaId;
  stream: string;
  /** An event without an id gets EventId.canonical(replica, seq) (its seq is assigned here). */
  events: (ValidNewEvent & { id?: EventId })[];
  expectedVersion: ExpectedVersion;
  now: number;
}

export interface LocalAppendReads {
  counters: ReplicaCounters;
  /** Current version of the stream on this replica (0 if it has no events). */
  streamVersion: number;
  /** The stored event for each input id, in input order. */
  existing: (StoredEventRecord | undefined)[];
}

export type LocalAppendPlan =
  | { kind: 'rejected'; error: ChronicleError }
  | { kind: 'duplicate'; events: StoredEventRecord[] }
  | {
      kind: 'write';
      events: { event: StoredEventRecord; pos: number }[];
      counters: ReplicaCounters;
      streamVersion: number;
    };

function samePayload(stored: StoredEventRecord, stream: string, event: ValidNewEvent): boolean {
  return (
    stored.stream === stream &&
    stored.type === event.type &&
    (stored.schema ?? 1) === event.schema &&
    jsonEqual(stored.data, event.data) &&
    jsonEqual(withoutIntegrity(stored.meta) ?? null, event.meta ?? null)
  );
}

export function planLocalAppend(input: LocalAppendInput, reads: LocalAppendReads): LocalAppendPlan {
  const seen = new Set<string>();
  for (const event of input.events) {
    if (event.id === undefined) continue;
    if (seen.has(event.id)) {
      return { kind: 'rejected', error: new IdempotencyError(event.id, 'duplicate-in-batch') };
    }
    seen.add(event.id);
  }
  let storedCount = 0;
  for (let i = 0; i < input.events.length; i++) {
    const stored = reads.existing[i];
    if (stored === undefined) continue;
    storedCount++;
    if (!samePayload(stored, input.stream, input.events[i]!)) {
      return { kind: 'rejected', error: new IdempotencyError(stored.id, 'payload-differs') };
    }
  }
  if (storedCount === input.events.length) {
    return { kind: 'duplicate', events: reads.existing as StoredEventRecord[] };
  }
  if (storedCount > 0) {
    const first = reads.existing.find((e) => e !== undefined)!;
    return { kind: 'rejected', error: new IdempotencyError(first.id, 'mixed-batch') };
  }

  const actual = reads.streamVersion;
  const expected = input.expectedVersion;
  if (expected !== 'any' && (expected === 'none' ? actual !== 0 : expected !== actual)) {
    return { kind: 'rejected', error: new ConcurrencyError(input.stream, expected, actual) };
  }

  let { seq, pos, clock } = reads.counters;
  let version = actual;
  const written: { event: StoredEventRecord; pos: number }[] = [];
  for (const e of input.events) {
    clock = tick(clock, input.now);
    seq += 1;
    pos += 1;
    version += 1;
    const hlc = encodeHlc(clock);
    const eventSeq = Seq.make(seq);
    const record: StoredEventRecord = {
      id: e.id ?? EventId.canonical(input.replica, eventSeq),
      type: e.type,
      data: e.data,
      stream: input.stream,
      version,
      replica: input.replica,
      seq: eventSeq,
      hlc,
      time: clock.wall,
      cursor: Cursor.make(hlc, input.replica, eventSeq),
    };
    if (e.meta !== undefined) record.meta = e.meta;
    if (e.schema !== 1) record.schema = e.schema;
    written.push({ event: record, pos });
  }
  return { kind: 'write', events: written, counters: { seq, pos, clock }, streamVersion: version };
}

export interface IngestInput {
  /** This replica: its own events coming back (a restore) move its seq counter past them. */
  replica: ReplicaId;
  /** Validated remote events (see sync/event-codec.ts), in the order they were received. */
  events: StoredEventRecord[];
  now: number;
  maxClockDriftMs: number;
}

export interface IngestReads {
  counters: ReplicaCounters;
  /** The stored record with each input id, in input order. */
  existing: (LocalRecord | undefined)[];
  /** The stored record at each input's (replica, seq), in input order (copies.ts). */
  slots: (LocalRecord | undefined)[];
  /** A partial replica's traces of trimmed events, by id and by slot (trimmed-copies.ts). */
  trimmedById?: (TrimmedTrace | undefined)[];
  trimmedBySlot?: (TrimmedTrace | undefined)[];
  /** Current version of each stream the input touches. */
  streamVersions: Map<string, number>;
}

export interface IngestPlan {
  /** Events new to this replica, with their local positions. */
  write: { event: StoredEventRecord; pos: number }[];
  /** Held records that lost to a copy of this batch: they leave the log (invariant 6). */
  remove: LocalRecord[];
  counters: ReplicaCounters;
  /** New version of each stream that changed. */
  streamVersions: Map<string, number>;
  /**
   * Streams that received an event at a version they already held: a possible concurrent append
   * (a conflict), to be confirmed by conflicts().
   */
  possibleConflicts: Set<string>;
  /** Copies that lost, held or received (core/copies.ts): reported, never dropped silently. */
  lost: LostCopy[];
  /** Traces of trimmed events that lost: the log drops them (core/trimmed-copies.ts). */
  evict: { id: EventId; cursor: Cursor }[];
  lostTrimmed: TrimmedCopyLoss[];
  /**
   * Streams whose version comes down to what they hold once `remove` is gone and `write` is
   * written (invariant 9): those of held strict events that lost.
   */
  recount: Set<string>;
  /** Some remote HLC was more than maxClockDrift ahead of our wall clock. */
  skewed: boolean;
  /**
   * Two different copies of one of this replica's own (replica, seq) or ids met (invariant 8): a
   * backup of this replica was restored, or it was cloned. The adapter gives the replica a fresh
   * id in the same transaction, and `counters.seq` is then the new id's counter (0).
   */
  forked: boolean;
}

export function planIngest(input: IngestInput, reads: IngestReads): IngestPlan {
  let { seq, pos, clock } = reads.counters;
  let skewed = false;
  const resolution = resolveCopies({
    events: input.events,
    heldById: reads.existing,
    heldBySlot: reads.slots,
    ...(reads.trimmedById !== undefined ? { trimmedById: reads.trimmedById } : {}),
    ...(reads.trimmedBySlot !== undefined ? { trimmedBySlot: reads.trimmedBySlot } : {}),
  });
  // Clients never refuse a batch over a collision (no refuseSeqConflicts): nothing wedges.
  if (resolution.kind !== 'resolved') throw new Error('a client ingest cannot be refused');
  const write: { event: StoredEventRecord; pos: number }[] = [];
  const streamVersions = new Map<string, number>();
  const possibleConflicts = new Set<string>();
  const versionOf = (stream: string) =>
    streamVersions.get(stream) ?? reads.streamVersions.get(stream) ?? 0;

  // Own seqs seen move the counter past them, written or lost: a seq is never handed out twice.
  for (const event of input.events) {
    if (event.replica === input.replica && event.seq > seq) seq = event.seq;
  }
  for (const event of resolution.write) {
    pos += 1;
    write.push({ event, pos });
    const received = receive(clock, decodeHlc(event.hlc), input.now, input.maxClockDriftMs);
    clock = received.state;
    skewed ||= received.skewed;
    const current = versionOf(event.stream);
    if (event.version <= current) possibleConflicts.add(event.stream);
    if (event.version > current) streamVersions.set(event.stream, event.version);
  }
  const forked =
    resolution.lost.some(
      (l) => l.event.replica === input.replica && l.keptReplica === input.replica && !isErasure(l),
    ) ||
    resolution.lostTrimmed.some(
      (l) => l.keptReplica === input.replica && replicaOfCursor(l.cursor) === input.replica,
    );
  if (forked) seq = 0;
  const recount = new Set(
    resolution.remove.filter((r) => isStrictEvent(r.event)).map((r) => r.event.stream),
  );
  return {
    write,
    remove: resolution.remove,
    recount,
    forked,
    counters: { seq, pos, clock },
    streamVersions,
    possibleConflicts,
    lost: resolution.lost,
    evict: resolution.evict,
    lostTrimmed: resolution.lostTrimmed,
    skewed,
  };
}
