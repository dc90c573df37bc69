/**
 * The sync wire protocol: every message that crosses a transport, as one discriminated union on
 * `type`. Messages are JSON text. The protocol is symmetric: a server is a peer that persists.
 *
 * A session, from either side:
 *   1. send `hello` (who I am, my log's epoch and head, my clock);
 *   2. on the peer's `hello`, send `pull` (where I am in the peer's log, with a fingerprint);
 *   3. answer the peer's `pull` with `events` batches from that position, at most
 *      `maxInFlightBatches` unacknowledged at a time; then keep sending new records live;
 *   4. on `events`, store the batch durably, then send `ack` up to its `to` position.
 *
 * Invariants:
 * 1. A batch covers the contiguous positions (from, to] of the sender's local log; events the
 *    receiver is known to hold (its own, below the seq it announced, and those it sent in this
 *    session) may be left out, so a batch may carry no events at all.
 * 2. `ack { to }` is sent only once every event of every batch up to `to` is durable.
 * 3. A receiver applies batches in order of `from`; a batch whose `from` is not its checkpoint is
 *    a gap and is refused (error GAP), never skipped over.
 * 4. A `pull` whose fingerprint does not match the sender's log (epoch differs, position past the
 *    head, or a different event id at that position) restarts from 0: the peer lost data
 *    (restored from a backup) and dedupe by id makes the resend safe. The receiver recognises
 *    the restart as a first batch with `from` 0 while its checkpoint is past 0.
 */
import type { StoredEvent } from '../core/events.ts';

/** 2: events travel as columns (event-codec.ts). */
export const PROTOCOL_VERSION = 2;

/** "I durably hold your log up to `pos`; the event there had id `id`; your log's epoch was `epoch`." */
export interface Checkpoint {
  epoch: string;
  pos: number;
  /** Id of the event at `pos` in the peer's log; absent when pos is 0. */
  id?: string;
}

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  replica: string;
  /** Random id of the sender's log; a new one means a new log (or one restored elsewhere). */
  epoch: string;
  /** Last position of the sender's local log. */
  head: number;
  /** Highest seq of the sender's own events it holds; lets the peer skip sending them back. */
  seq: number;
  /** Sender's wall clock (ms): a server's lets a client with a wrong clock correct it. */
  time: number;
  /** True when the sender persists and serves many peers (a sync server). */
  server?: boolean;
}

export interface PullMessage {
  type: 'pull';
  /** Absent: I hold nothing of your log yet. */
  checkpoint?: Checkpoint;
}

export interface EventsMessage {
  type: 'events';
  /** Positions (from, to] of the sender's log that this batch covers (invariant 1). */
  from: number;
  to: number;
  /** Id of the sender's event at `to` (for the receiver's checkpoint fingerprint). */
  toId?: string;
  events: StoredEvent[];
  /** Set on the last batch of a catch-up: the receiver is now up to date with the sender. */
  caughtUp?: boolean;
}

export interface AckMessage {
  type: 'ack';
  /** I durably hold your log up to here (invariant 2). */
  to: number;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  /** True when the sender closes the session after this message. */
  fatal?: boolean;
  /** For event-level refusals: the offending event's id. */
  eventId?: string;
}

export interface PingMessage {
  type: 'ping';
  time: number;
}

export interface PongMessage {
  type: 'pong';
  time: number;
}

export type SyncMessage =
  | HelloMessage
  | PullMessage
  | EventsMessage
  | AckMessage
  | ErrorMessage
  | PingMessage
  | PongMessage;

export type SyncMessageType = SyncMessage['type'];

/** Stable codes carried by `error` messages and `SyncStatus.lastError`. */
export type SyncErrorCode =
  | 'PROTOCOL' // malformed or unexpected message
  | 'PROTOCOL_VERSION' // the peer speaks another protocol version
  | 'VALIDATION' // an event failed validation; nothing of its batch was stored
  | 'GAP' // a batch did not start at the receiver's checkpoint
  | 'UNAUTHORIZED' // missing, forged or expired token
  | 'FORBIDDEN' // the token's scope does not allow this (e.g. write with a read-only token)
  | 'ORIGIN_FORBIDDEN' // events claiming a replica that belongs to another subject
  | 'LIMIT_EXCEEDED' // a named limit was passed (see SyncLimits)
  | 'RATE_LIMITED' // too many messages per second
  | 'CLOCK_SKEW' // a peer's clock is more than maxClockDrift away (reported, never refused)
  | 'STORAGE' // the receiver could not store the batch
  | 'INTERNAL';

/** WebSocket close codes used by the server (RFC 6455 section 7.4 plus the 4000 private range). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  unauthorized: 4001,
  forbidden: 4003,
  protocolVersion: 4004,
  rateLimited: 4029,
} as const;

export interface SyncLimits {
  /** Events in one `events` message. */
  maxBatchEvents: number;
  /** Bytes of one message's JSON text. */
  maxMessageBytes: number;
  /** Unacknowledged batches a sender may have in flight. */
  maxInFlightBatches: number;
  /** Unacknowledged bytes a sender may have in flight. */
  maxInFlightBytes: number;
}

export const DEFAULT_SYNC_LIMITS: SyncLimits = {
  maxBatchEvents: 2000,
  maxMessageBytes: 1024 * 1024,
  maxInFlightBatches: 4,
  maxInFlightBytes: 4 * 1024 * 1024,
};
