/**
 * The sync wire protocol: every message that crosses a transport, as one discriminated union on
 * `type`. Messages are JSON text (binary frames where both sides agree: invariant 11). The
 * protocol is symmetric: a server is a peer that persists.
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
 * 5. Each side announces its limits in hello; a sender keeps within the smaller of its own and
 *    the peer's (batch events, message bytes, in-flight batches and bytes), and never sends an
 *    event the peer would refuse for its size: it leaves it out (invariant 1) and reports it.
 * 6. A receiver that refuses one event of a batch for a reason tied to that event, to a peer that
 *    announced limits, sends a non-fatal `error` naming it (`eventId`, `refused: { from, reason
 *    }`), stores nothing of the batch and drops the batches after it until one starts at `from`
 *    again. The sender leaves that event out for this peer, reports it, and resends from `from`.
 *    Nothing is skipped silently: every event left out for a peer is reported with its id.
 * 7. Clock tolerance (core/clock-skew.ts): a receiver refuses each event whose HLC wall time is
 *    beyond its own clock + maxClockAheadMs with a non-fatal `error` CLOCK_SKEW naming it, and
 *    stores the rest of the batch; a sender never sends a peer an event beyond the peer's clock
 *    (from its hello) + the peer's maxClockAheadMs: its stream to that peer waits before it.
 * 8. Strict streams (core/strict.ts): a server is the authority of its space's strict streams.
 *    The events of a batch that a strict stream rejects are not stored, the rest of the batch is,
 *    and the server sends `rejected` naming them BEFORE the `ack` that covers them; the ack
 *    means "durably held, or rejected". A client takes `rejected` from a server only.
 * 9. History (docs/storage-growth.md part 3): a side whose hello says `history: true` answers a
 *    `history` request with one `history-page` or one non-fatal `error` carrying the request's
 *    `req`, beside the session (never inside an ingest, never moving a checkpoint). A side sends
 *    `history` only to a peer whose hello said so: a peer older than these messages never gets
 *    one. The page's events are validated like a batch's and are not stored; they lie in the
 *    asked range and stream, in the asked order, at most `limit`; `more` says the range holds
 *    more after the last one.
 * 10. Joining from a snapshot (docs/storage-growth.md part 3, core/space-join.ts): a side whose
 *    hello says `snapshots: true` answers a peer's hello that carries `join` with exactly one
 *    `snapshot` message, before its own `pull` and `rejected`: the newest snapshot of its log
 *    that holds every projection asked at exactly its version, with the id of its event at the
 *    snapshot's `pos`, or no snapshot (none matches, it is larger than `join.maxBytes` or than
 *    the side sends at once, or the connection may not read). Only a side whose log is empty
 *    sends `join`. Having sent it to a peer whose hello says `snapshots: true`, a side sends its
 *    `pull` only after that answer; once it installed the snapshot, its pull's checkpoint is
 *    (the peer's epoch, `pos`, that id), so catch-up starts after `pos`. A peer older than these
 *    fields neither answers nor is waited for: the device replays the whole log.
 *    A snapshot larger than one message (the asker's `join.maxBytes` or what the side sends at
 *    once) goes in parts to a joiner whose `join.parts` is true (sync/snapshot-parts.ts): the
 *    `snapshot` message then carries `parts` and `length` instead of `snapshot`, and exactly
 *    `parts` `snapshot-part` messages follow it, in index order, before anything else of the
 *    side (pings apart); their texts make the snapshot's JSON text, at most `join.maxBytes`.
 *    Parts that do not hold together (out of order, more or fewer than announced, text that
 *    does not parse or check) are refused with a non-fatal SNAPSHOT_INVALID, and the joiner
 *    pulls the whole log: it replays.
 * 11. Binary frames (sync/binary-frame.ts): a side whose connection carries binary messages both
 *    ways says `binary: true` in its hello. A side sends a binary frame only to a peer whose
 *    hello said so, and only an `events` or `history-page` message; everything else, and every
 *    message to any other peer, is text as above. A frame is the same message spelt with its
 *    signatures, link hashes and sealed data as bytes: the receiver rebuilds the text's value
 *    and checks it as a text's. A binary frame from a peer this side did not offer them to is
 *    PROTOCOL. No protocol version is needed: a peer older than the field never gets one.
 * 12. Every event travels with its own signature: no side leaves out a `$sig` that a later
 *    event of the batch covers by its link. (Protocol 5 withdrew those covered signatures: a
 *    store held such events as they came, and once the event that covered them lost to another
 *    copy of its id (core/copies.ts), nothing it held proved them any more, and a peer reached
 *    only through it refused them for ever. Tree signatures with implied paths (13) cost as few
 *    bytes.)
 * 13. Implied links (meta-columns.ts): a side that works out the hash of a near link itself says
 *    `impliedLinks: true` in its hello. Toward such a peer, any side (store or server, both
 *    ways) may leave out the hash of a near link, the 16 bytes of the digest of the event before
 *    it in the batch (core/integrity.ts invariant 1), and marks the batch `impliedLinks: true`:
 *    the receiver hashes that event, which it hashes to verify the batch anyway. An event whose
 *    link named another digest (a hole in an honest chain) then fails its signature: the batch
 *    is refused as `unproven`, and comes again whole, with every hash
 *    and signature, for the rest of the session. Signatures stay: a store's uploads keep every
 *    one, so that the server can prove each event alone (nothing honest is lost to tampering).
 */
import type { StoredEvent } from '../core/events.ts';
import type { TamperReason } from '../core/integrity.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import type { StrictRejection } from '../core/strict.ts';

/**
 * 2: events travel as columns (event-codec.ts). 3: `rejected` (strict streams, invariant 8).
 * 4: the meta fields of signing and sealing (`$sig`, `$link`, `$key`, `$sealed`) travel as
 * columns of the batch (meta-columns.ts), a link to the event before it in the batch as its hash.
 * 5: tree signatures (core/sign-trees.ts): one `$sig` for up to 16 events, each with its `$tree`
 * (meta-columns.ts invariant 7). A peer of version 4 would verify each `$sig` over the event's
 * own digest and refuse every such event as tampered: it is told PROTOCOL_VERSION instead.
 */
export const PROTOCOL_VERSION = 5;

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
  /**
   * What the sender accepts (invariant 5). A peer whose hello has none (older than this field)
   * gets `limitsOfPeer`'s defaults. Announcing limits also says the sender understands
   * per-event refusals (ErrorMessage.refused).
   */
  limits?: SyncLimits;
  /**
   * How far ahead of its clock the sender accepts an event's HLC (ms; core/clock-skew.ts).
   * Absent (an older peer): DEFAULT_MAX_CLOCK_AHEAD_MS.
   */
  maxClockAheadMs?: number;
  /** The sender answers `history` requests (invariant 9). Absent: it does not. */
  history?: boolean;
  /** The sender answers `join` with a `snapshot` message (invariant 10). Absent: it does not. */
  snapshots?: boolean;
  /** The sender's log is empty and it asks to join from a snapshot (invariant 10). */
  join?: JoinRequest;
  /**
   * The sender reads binary frames (invariant 11, sync/binary-frame.ts). Absent: it does not,
   * and is sent text only.
   */
  binary?: boolean;
  /**
   * The sender takes batches whose near links leave their hash out (invariant 13). Absent: every
   * link comes with its hash.
   */
  impliedLinks?: boolean;
}

/** What a fresh device asks of a peer's snapshots (protocol invariant 10). */
export interface JoinRequest {
  /** Every projection the device runs, at its version: a snapshot must hold them all. */
  projections: ProjectionVersion[];
  /**
   * The largest snapshot the device takes (UTF-8 bytes of its JSON): of a `snapshot` message,
   * or of the text of all its parts.
   */
  maxBytes: number;
  /** The device takes a snapshot in parts (`snapshot-part`). Absent: in one message only. */
  parts?: boolean;
}

/** The answer to a hello's `join` (invariant 10): a snapshot, or none (replay the log). */
export interface SnapshotMessage {
  type: 'snapshot';
  snapshot?: SpaceSnapshot;
  /** Id of the sender's event at `snapshot.pos` (for the pull's checkpoint); absent at pos 0. */
  id?: string;
  /** The snapshot follows in this many `snapshot-part` messages (then `snapshot` is absent). */
  parts?: number;
  /** The length of the snapshot's JSON text those parts carry (UTF-16 code units). */
  length?: number;
}

/** One part of a snapshot sent in parts (invariant 10, sync/snapshot-parts.ts). */
export interface SnapshotPartMessage {
  type: 'snapshot-part';
  /** 0 for the first part after the `snapshot` message, then 1, 2, ... */
  index: number;
  /** A piece of the snapshot's JSON text (never empty). */
  text: string;
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
  /** The near links of the batch may leave their hash out: the receiver works it out (13). */
  impliedLinks?: boolean;
  /**
   * The `$key` of each replica of the batch that the sender knows (core/integrity.ts): each
   * derives its replica id, so any peer may pass keys on, and a receiver that never got a
   * replica's first event (it lost a copy collision) can still verify the rest.
   */
  keys?: { [replica: string]: string };
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
  /** Set on a per-event refusal (non-fatal; invariant 6): the batch and the reason. */
  refused?: EventRefusal;
  /** Set on the answer to a `history` request (invariant 9): that request's `req`. */
  req?: number;
}

/**
 * "Send me the events of your log in the total order" (invariant 9): the meaning of a replica's
 * readByCursor (storage/adapter.ts CursorQuery). Needs the read scope on a server.
 */
export interface HistoryMessage {
  type: 'history';
  /** Chosen by the asker, echoed by the answer. */
  req: number;
  /** Exclusive bound (in reverse: the upper one). */
  after?: string;
  /** Inclusive bound (in reverse: the lower one). */
  until?: string;
  stream?: string;
  reverse?: boolean;
  /** At most this many events; the answering side may send fewer (its limits), saying `more`. */
  limit: number;
}

/** The answer to `history` (invariant 9). */
export interface HistoryPageMessage {
  type: 'history-page';
  req: number;
  events: StoredEvent[];
  /** The range holds more events after the last one sent. */
  more: boolean;
  /**
   * The `$key` of each replica of the page that the server knows (as EventsMessage.keys): the
   * asker verifies every signature of a page before it uses any of it.
   */
  keys?: { [replica: string]: string };
}

/**
 * Why a receiver refuses one event of a batch for a reason tied to that event. Extend the union
 * with a new `kind` for a new reason; a peer that does not know a kind parses it as `other`.
 */
export type RefusalReason =
  /** Its data + meta are larger than the receiver's maxEventBytes (code LIMIT_EXCEEDED). */
  | { kind: 'too-large'; bytes: number; limit: number }
  /** It fails the receiver's checks (code VALIDATION); `field` is the path that failed. */
  | { kind: 'invalid'; field: string }
  /**
   * Its HLC wall time is beyond the receiver's clock + its maxClockAheadMs (code CLOCK_SKEW):
   * `wall` the event's, `limit` the latest the receiver accepted when it refused (its clock plus
   * tolerance). The sender holds the event back rather than leave it out (invariant 7).
   */
  | { kind: 'clock-ahead'; wall: number; limit: number }
  /**
   * The sender's token may not write events of `replica` that the receiver does not hold yet
   * (code ORIGIN_FORBIDDEN: a server, where another subject owns the replica). The sender leaves
   * every event of that replica out for this peer until the session ends; its owner sends them.
   */
  | { kind: 'not-owner'; replica: string }
  /**
   * Its signature or key does not hold, or it is unsigned where signatures are required (code
   * TAMPERED, core/integrity.ts): `why` says which check failed. The sender leaves that event
   * out for this peer, like one too large; the replica's later events verify on their own.
   */
  | { kind: 'tampered'; replica: string; seq: number; why: TamperReason }
  /**
   * A batch marked `impliedLinks` did not verify (invariant 13, code TAMPERED): the sender sends
   * it again with every hash and path, which names what was wrong. Nothing is left out for this.
   */
  | { kind: 'unproven' }
  /** A reason this side does not know (sent by a newer peer). */
  | { kind: 'other'; name: string };

/** A per-event refusal: "I refuse event `eventId` of your batch that starts at `from`". */
export interface EventRefusal {
  /** `from` of the refused batch: the receiver still holds up to here and expects a resend. */
  from: number;
  reason: RefusalReason;
}

/** Invariant 8: "these events of your batches were rejected by their strict stream". */
export interface RejectedMessage {
  type: 'rejected';
  events: StrictRejection[];
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
  | RejectedMessage
  | PingMessage
  | PongMessage
  | HistoryMessage
  | HistoryPageMessage
  | SnapshotMessage
  | SnapshotPartMessage;

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
  | 'CLOCK_SKEW' // an event stamped beyond the receiver's clock + maxClockAheadMs (refused alone), or a peer's clock that far off (reported)
  | 'STORAGE' // the receiver could not store the batch
  | 'SEQ_CONFLICT' // an event reuses a (replica, seq) held under another id; nothing of its batch was stored (server), or one copy was kept (report)
  | 'ID_CONFLICT' // two copies of one event id differ; every replica keeps the one first in the total order (report, never fatal)
  | 'TAMPERED' // an event whose signature or chain does not hold, or unsigned where signatures are required (refused alone, never stored)
  | 'HISTORY_UNAVAILABLE' // a `history` request this side cannot answer (its storage serves no history); never fatal
  | 'SNAPSHOT_INVALID' // a snapshot sent in parts that does not hold together; the joiner replays the log instead (never fatal)
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

/** What one side accepts; announced in hello (invariant 5). */
export interface SyncLimits {
  /** Events in one `events` message. */
  maxBatchEvents: number;
  /** Bytes of one message's JSON text. */
  maxMessageBytes: number;
  /** UTF-8 bytes of the JSON of one event's data + meta. */
  maxEventBytes: number;
  /** Unacknowledged batches a sender may have in flight. */
  maxInFlightBatches: number;
  /** Unacknowledged bytes a sender may have in flight. */
  maxInFlightBytes: number;
}

/** The event size a sync server accepts by default (ServerLimits.maxEventBytes). */
export const DEFAULT_SERVER_EVENT_BYTES = 512 * 1024;

/**
 * A client's defaults. maxEventBytes is what a client receives: 1 MiB, the most an older
 * replica could append; a client appends at most DEFAULT_SERVER_EVENT_BYTES by default.
 */
export const DEFAULT_SYNC_LIMITS: SyncLimits = {
  maxBatchEvents: 2000,
  maxMessageBytes: 1024 * 1024,
  maxEventBytes: 1024 * 1024,
  maxInFlightBatches: 4,
  maxInFlightBytes: 4 * 1024 * 1024,
};

/** The smallest value a peer may announce for each limit; less is refused (PROTOCOL). */
export const MIN_SYNC_LIMITS: SyncLimits = {
  maxBatchEvents: 1,
  maxMessageBytes: 1024,
  maxEventBytes: 1,
  maxInFlightBatches: 1,
  maxInFlightBytes: 1024,
};

export const SYNC_LIMIT_NAMES = Object.keys(DEFAULT_SYNC_LIMITS) as (keyof SyncLimits)[];

/**
 * The limits a peer accepts: those of its hello, or for a peer older than hello.limits the
 * defaults of its kind (a server refused events over DEFAULT_SERVER_EVENT_BYTES).
 */
export function limitsOfPeer(hello: Pick<HelloMessage, 'limits' | 'server'>): SyncLimits {
  if (hello.limits !== undefined) return hello.limits;
  return hello.server === true
    ? { ...DEFAULT_SYNC_LIMITS, maxEventBytes: DEFAULT_SERVER_EVENT_BYTES }
    : { ...DEFAULT_SYNC_LIMITS };
}
