/**
 * The pure decisions of the sync protocol (see sync/protocol.ts for the messages): where a pull
 * starts, which records of a page go to the peer and in which batches, what an incoming batch
 * is (apply, duplicate, gap), where the receive checkpoint moves, and the flow-control window.
 * No I/O: the session (sync/session.ts) reads what these functions need and does what they say.
 *
 * Invariants (numbers of sync/protocol.ts where they are the protocol's):
 * 1. A batch covers contiguous positions (from, to]; batches of one page are adjacent and in
 *    order, and a record the peer is known to hold may be left out, never a record it lacks.
 * 2. A receive checkpoint only moves forward within a session, to the `to` of a batch that was
 *    applied; a batch that does not start at or before the checkpoint is a gap (protocol 3).
 * 3. A pull resumes at the checkpoint only when epoch, position and id all match the log;
 *    otherwise it restarts from 0 (protocol 4).
 * 4. The flow window always lets one batch through when it is empty (no deadlock on a batch
 *    bigger than the byte budget); otherwise it holds at most maxInFlightBatches batches and
 *    stops adding once maxInFlightBytes are in flight.
 * 5. An ack never removes a batch whose `to` is past the ack.
 * 6. A sender keeps within the smaller of its own limits and the peer's (negotiateLimits); an
 *    event the peer would refuse for its size is left out of its batch (still covered by the
 *    range) and listed in `leftOut`, never dropped unlisted.
 * 7. A per-event refusal rewinds the sender to the refused batch's `from` (the receiver holds up
 *    to there); the batches before it stay in flight. It names a batch in flight and an event
 *    that batch carried, or it is invalid.
 * 8. A receiver that refused an event drops every batch until the resend from the same `from`
 *    (those were sent before the sender knew), and drops a repeat of the refused batch.
 */
import type { LocalRecord, StoredEventRecord } from './events.ts';
import { jsonByteLength, utf8Length } from './json.ts';
import type { ReceivedSpans } from './received-spans.ts';

// Flow control and per-event refusal on the sending side (invariants 4, 5 and 7).
export * from './sync-flow.ts';

/** Same shape as protocol.ts's Checkpoint (core imports nothing outside core). */
export interface SyncCheckpoint {
  epoch: string;
  pos: number;
  id?: string;
}

// ---------------------------------------------------------------------------------------------
// Pull: where the sender starts (invariant 3)

/** What the sender knows of its own log when a pull arrives. */
export interface LogFingerprint {
  epoch: string;
  head: number;
  /** Id of this log's event at the checkpoint's pos (undefined past the head or for pos 0). */
  idAtCheckpoint: string | undefined;
}

export type PullDecision =
  | { kind: 'resume'; from: number }
  | { kind: 'restart'; from: 0; reason: 'epoch' | 'past-head' | 'id-mismatch' };

export function decidePull(
  checkpoint: SyncCheckpoint | undefined,
  mine: LogFingerprint,
): PullDecision {
  if (checkpoint === undefined || checkpoint.pos === 0) {
    // Nothing held yet; an epoch mismatch at pos 0 changes nothing: both start at 0.
    return { kind: 'resume', from: 0 };
  }
  if (checkpoint.epoch !== mine.epoch) return { kind: 'restart', from: 0, reason: 'epoch' };
  if (checkpoint.pos > mine.head) return { kind: 'restart', from: 0, reason: 'past-head' };
  if (checkpoint.id !== mine.idAtCheckpoint) {
    return { kind: 'restart', from: 0, reason: 'id-mismatch' };
  }
  return { kind: 'resume', from: checkpoint.pos };
}

/**
 * The checkpoint worth sending in a pull, given the peer's hello: none when the peer's epoch or
 * head already shows that it is not the log the checkpoint was taken from (saves a round of
 * fingerprint checks; the sender still checks, invariant 3).
 */
export function checkpointForPull(
  saved: SyncCheckpoint | undefined,
  peer: { epoch: string; head: number },
): SyncCheckpoint | undefined {
  if (saved === undefined || saved.pos === 0) return undefined;
  if (saved.epoch !== peer.epoch || saved.pos > peer.head) return undefined;
  return saved;
}

// ---------------------------------------------------------------------------------------------
// Sending: which records, in which batches (invariant 1)

export interface OutgoingPeer {
  /** The peer's replica id and the highest seq of its own events it holds (from its hello). */
  replica: string;
  seq: number;
}

export interface BatchLimits {
  maxBatchEvents: number;
  maxMessageBytes: number;
  /** The peer's limit on an event's data + meta bytes; larger events are left out (invariant 6). */
  maxEventBytes?: number;
}

/**
 * The limits a sender keeps to: the smaller of each of its own and the peer's (invariant 6).
 * Only the keys of `mine` are read.
 */
export function negotiateLimits<L extends { [K in keyof L]: number }>(mine: L, theirs: L): L {
  const out = { ...mine };
  for (const key of Object.keys(mine) as (keyof L)[]) {
    const value = theirs[key];
    if (typeof value === 'number' && value < out[key]) out[key] = value;
  }
  return out;
}

/** Bytes an event may add to a message besides its data and meta: names, ids, run row. */
export const EVENT_WIRE_OVERHEAD_BYTES = 4096;

/**
 * The largest data + meta an event may have to reach a peer, given the limits a sender keeps to
 * with it (negotiated): within the peer's maxEventBytes, and small enough to fit a message.
 */
export function sendableEventBytes(limits: BatchLimits & { maxEventBytes: number }): number {
  const inMessage = limits.maxMessageBytes - BATCH_ENVELOPE_BYTES - EVENT_WIRE_OVERHEAD_BYTES;
  return Math.max(1, Math.min(limits.maxEventBytes, inMessage));
}

/** An event a batch covers but does not carry because the peer would refuse it (invariant 6). */
export interface LeftOutEvent {
  pos: number;
  event: StoredEventRecord;
  reason: { kind: 'too-large'; bytes: number; limit: number };
}

export interface PlannedBatch {
  from: number;
  to: number;
  /** Id of the record at `to` (the receiver's checkpoint fingerprint). */
  toId: string;
  events: StoredEventRecord[];
  /** UTF-8 bytes of the events' JSON, an estimate of the message size. */
  bytes: number;
  /** The replicas of its events: the message names the key of each (EventsMessage.keys). */
  replicas: Set<string>;
  /**
   * Highest seq among this log's own events the batch covers (carried or left out), 0 when there
   * are none: once acknowledged, none of them waits to be sent to this peer any more.
   */
  ownSeq: number;
  /** Events covered but not carried: the peer would refuse them (invariant 6). */
  leftOut: LeftOutEvent[];
}

/** Room left in a message for everything but the events (type, from, to, toId, caughtUp). */
export const BATCH_ENVELOPE_BYTES = 256;
/** Bytes a batch's `keys` may take for one replica (core/integrity.ts `$key` and its id). */
export const KEY_WIRE_BYTES = 128;

/** Whether the peer already holds a record: its own event at or below the seq it announced. */
export function peerHolds(event: StoredEventRecord, peer: OutgoingPeer): boolean {
  return event.replica === peer.replica && event.seq <= peer.seq;
}

/** A batch that covers no positions yet, starting at `from`. */
function emptyBatch(from: number): PlannedBatch {
  return {
    from,
    to: from,
    toId: '',
    events: [],
    bytes: 0,
    replicas: new Set(),
    ownSeq: 0,
    leftOut: [],
  };
}

/**
 * The positions after `from` that the peer itself sent this session, as one batch that carries
 * nothing (like planBatches' for skipped records), so the sender covers them without reading
 * them back: a catch-up's every ingest would otherwise read its own batch again only to skip it.
 * `received` holds such positions with their event ids. Undefined when `from + 1` is not one.
 */
export function receivedRun(
  from: number,
  received: Pick<ReceivedSpans, 'runAfter'>,
  maxEvents: number,
): PlannedBatch | undefined {
  const run = received.runAfter(from, maxEvents);
  if (run === undefined) return undefined;
  return { ...emptyBatch(from), to: run.to, toId: run.toId };
}

/**
 * Splits a page of records (contiguous positions after `from`) into batches that fit the limits.
 * `skip(record)` says the peer holds a record (its own events, or ones it sent this session):
 * such records are covered by a batch's range but not carried. An event larger than the peer's
 * maxEventBytes, or than a message may be, is covered and listed in `leftOut` (invariant 6).
 */
export function planBatches(
  from: number,
  records: readonly LocalRecord[],
  options: {
    ownReplica: string;
    skip: (record: LocalRecord) => boolean;
    limits: BatchLimits;
    /**
     * UTF-8 bytes the event adds to a message (the session's encoder knows its wire form), never
     * less than its data + meta. Called once for each event not skipped, in order.
     */
    sizeOf?: (event: StoredEventRecord) => number;
    /**
     * UTF-8 bytes of the event's data + meta JSON; asked only of events that may be too large,
     * right after sizeOf of the same event.
     */
    payloadOf?: (event: StoredEventRecord) => number;
  },
): PlannedBatch[] {
  const sizeOf = options.sizeOf ?? ((e: StoredEventRecord) => utf8Length(JSON.stringify(e)) + 1);
  const payloadOf = options.payloadOf ?? payloadBytes;
  const { limits } = options;
  const budget = Math.max(1, limits.maxMessageBytes - BATCH_ENVELOPE_BYTES);
  const maxEventBytes = limits.maxEventBytes ?? Number.POSITIVE_INFINITY;
  const batches: PlannedBatch[] = [];
  let current: PlannedBatch | undefined;
  for (const record of records) {
    if (current === undefined) current = emptyBatch(from);
    const event = record.event;
    if (!options.skip(record)) {
      const base = sizeOf(event);
      const size = base + (current.replicas.has(event.replica) ? 0 : KEY_WIRE_BYTES);
      // The wire size bounds the payload from above: most events need no second measure.
      const payload = size > maxEventBytes ? payloadOf(event) : 0;
      if (payload > maxEventBytes || size > budget) {
        const reason =
          payload > maxEventBytes
            ? { kind: 'too-large' as const, bytes: payload, limit: maxEventBytes }
            : { kind: 'too-large' as const, bytes: size, limit: budget };
        current.leftOut.push({ pos: record.pos, event, reason });
      } else {
        const full =
          current.events.length >= limits.maxBatchEvents ||
          (current.events.length > 0 && current.bytes + size > budget);
        if (full) {
          batches.push(current);
          current = emptyBatch(current.to);
        }
        current.events.push(event);
        // A fresh batch names this replica's key again (the size above may have counted it as named).
        current.bytes += current.replicas.has(event.replica) ? size : base + KEY_WIRE_BYTES;
        current.replicas.add(event.replica);
      }
    }
    if (event.replica === options.ownReplica && event.seq > current.ownSeq) {
      current.ownSeq = event.seq;
    }
    current.to = record.pos;
    current.toId = event.id;
  }
  if (current !== undefined) batches.push(current);
  return batches;
}

/** UTF-8 bytes of an event's data + meta JSON: what a maxEventBytes limits. */
export function payloadBytes(event: StoredEventRecord): number {
  return jsonByteLength(event.data) + (event.meta === undefined ? 0 : jsonByteLength(event.meta));
}

// ---------------------------------------------------------------------------------------------
// Receiving: what a batch is and where the checkpoint moves (invariant 2)

export interface ReceiveState {
  /** Position in the peer's log held durably. */
  pos: number;
  /** Whether a batch was applied or acknowledged in this session yet. */
  started: boolean;
  /**
   * Set after a per-event refusal: the batch refused, until its resend (invariant 8).
   * `unproven`: refused for implied links or paths that did not verify (sync/protocol.ts 13);
   * the resend is the first batch from `from` that leaves nothing out (leavesOut), whatever it
   * holds.
   */
  refused?: { from: number; eventId: string; unproven?: true };
}

export type BatchDecision =
  /** Store the events, then move the checkpoint to `to`. `restart`: the peer restarted from 0. */
  | { kind: 'apply'; to: number; restart: boolean }
  /** Everything in it is held already (a duplicated frame): acknowledge again, store nothing. */
  | { kind: 'duplicate' }
  /** It starts past the checkpoint: refuse (error GAP), never skip (protocol invariant 3). */
  | { kind: 'gap'; expected: number }
  /** Sent before the sender learnt of a refusal, or a repeat of the refused batch (invariant 8). */
  | { kind: 'discard' };

/**
 * Whether a batch leaves out what its receiver proves from the rest of it: hashes of near links
 * and tree paths (sync/protocol.ts invariant 13). Such a batch that does not verify is refused as
 * unproven, and comes again leaving nothing out.
 */
export function leavesOut(batch: { impliedLinks?: boolean }): boolean {
  return batch.impliedLinks === true;
}

export function classifyBatch(
  state: ReceiveState,
  batch: {
    from: number;
    to: number;
    events?: readonly { id: string }[];
    covered?: boolean;
    impliedLinks?: boolean;
  },
): BatchDecision {
  if (state.refused !== undefined) {
    const refused = state.refused;
    if (batch.from !== refused.from) return { kind: 'discard' };
    if (refused.unproven === true) {
      if (leavesOut(batch)) return { kind: 'discard' };
    } else if (batch.events?.some((e) => e.id === refused.eventId)) return { kind: 'discard' };
  }
  // A sender answers a pull from the checkpoint or, when its fingerprint did not match, from 0.
  // Only the first batch of a session can be such a restart: later ones are in order.
  if (!state.started && batch.from === 0 && state.pos > 0) {
    return { kind: 'apply', to: batch.to, restart: true };
  }
  if (batch.to <= state.pos) return { kind: 'duplicate' };
  if (batch.from > state.pos) return { kind: 'gap', expected: state.pos };
  // from <= pos < to: an overlap is safe, ingest dedupes by id.
  return { kind: 'apply', to: batch.to, restart: false };
}

/** The state after a decision was carried out (for 'apply': after the events are durable). */
export function afterBatch(state: ReceiveState, decision: BatchDecision): ReceiveState {
  switch (decision.kind) {
    case 'apply':
      return { pos: decision.to, started: true };
    case 'duplicate':
      return { pos: state.pos, started: true };
    case 'gap':
    case 'discard':
      return state;
    default: {
      const never: never = decision;
      throw new Error(`unknown batch decision ${JSON.stringify(never)}`);
    }
  }
}

/** The state after refusing event `eventId` of the batch starting at `from` (invariant 8). */
export function afterRefusal(
  state: ReceiveState,
  from: number,
  eventId: string,
  unproven = false,
): ReceiveState {
  return { ...state, refused: { from, eventId, ...(unproven && { unproven }) } };
}

export type EventRefusalDecision =
  /** The peer would not resend (it announced no limits, or was never pulled): fail the session. */
  | { kind: 'fatal' }
  /** Sent before the sender learnt of a refusal, or the refused batch again (invariant 8). */
  | { kind: 'drop' }
  | { kind: 'gap'; expected: number }
  /** Everything in it is held already: acknowledge again. */
  | { kind: 'ack'; state: ReceiveState }
  /** Tell the peer; wait for its resend from the batch's `from` (invariant 8). */
  | { kind: 'refuse'; state: ReceiveState };

/** What a receiver does with a batch of which it refuses the one event `eventId`. */
export function decideEventRefusal(
  state: ReceiveState,
  batch: { from: number; to: number; impliedLinks?: boolean },
  eventId: string,
  peerResends: boolean,
  /** Refused as unproven (sync/protocol.ts 13): the peer resends it leaving nothing out. */
  unproven = false,
): EventRefusalDecision {
  if (!peerResends) return { kind: 'fatal' };
  const held = state.refused;
  // The resend of an unproven batch may be refused for the very event it was refused at.
  const resend = held?.unproven === true && !leavesOut(batch) && held.from === batch.from;
  if (held !== undefined && !resend && (held.from !== batch.from || held.eventId === eventId)) {
    return { kind: 'drop' };
  }
  const decision = classifyBatch(state, batch);
  switch (decision.kind) {
    case 'gap':
      return decision;
    case 'duplicate':
      return { kind: 'ack', state: afterBatch(state, decision) };
    case 'discard':
      return { kind: 'drop' };
    case 'apply':
      return { kind: 'refuse', state: afterRefusal(state, batch.from, eventId, unproven) };
    default: {
      const never: never = decision;
      throw new Error(`unknown batch decision ${JSON.stringify(never)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Clock

/** A server clock further than this from ours corrects our clock (see clockCorrection). */
export const DEFAULT_CLOCK_CORRECTION_THRESHOLD_MS = 60_000;

/**
 * The correction to add to the local clock when a server reports its time at handshake, or
 * undefined to leave the clock alone. The rule: only a difference above `thresholdMs` (default
 * one minute) counts, because network latency and ordinary drift make small differences noise,
 * and a clock set a minute or more wrong is the failure worth fixing. `currentOffset` is the
 * correction in force: the result replaces it.
 */
export function clockCorrection(
  serverTime: number,
  correctedNow: number,
  currentOffset: number,
  thresholdMs: number = DEFAULT_CLOCK_CORRECTION_THRESHOLD_MS,
): number | undefined {
  const diff = serverTime - correctedNow;
  if (Math.abs(diff) <= thresholdMs) return undefined;
  return currentOffset + diff;
}
