/**
 * The shapes of a peer session (session.ts): its options, what it reports, and its handle.
 */
import type { StoredEventRecord } from '../core/events.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import type { ParsedHistoryPage } from './history-messages.ts';
import type { SyncLog } from './log.ts';
import type {
  HelloMessage,
  HistoryMessage,
  RefusalReason,
  SyncErrorCode,
  SyncLimits,
} from './protocol.ts';
import type { JoinOptions, SnapshotFinder } from './session-join.ts';

/** What answers a `history` request this side sent (protocol 9): a page, or a coded error. */
export type HistoryReply =
  | { req: number; page: ParsedHistoryPage }
  | { req: number; error: { code: string; message: string } };

/**
 * Why a session refuses a peer or a batch (sent to the peer as a fatal `error`). With `eventId`
 * and `reason` it refuses that one event only (protocol invariant 6): to a peer that announced
 * limits the error is not fatal, and the peer resends the batch without it.
 */
export interface SessionRefusal {
  code: SyncErrorCode;
  message: string;
  eventId?: string;
  reason?: RefusalReason;
}

/** An error seen by the session: found here (`local`) or reported by the peer (`peer`). */
export interface SessionError {
  code: string;
  message: string;
  fatal: boolean;
  source: 'local' | 'peer';
  eventId?: string;
  /**
   * Set when this side will not send event `eventId` to this peer: it left it out (`local`,
   * e.g. over the peer's maxEventBytes) or the peer refused it (`peer`). Never silent.
   */
  skipped?: RefusalReason;
  /**
   * Set when the peer refused event `eventId` for the clock (reason `clock-ahead`): this side
   * holds it back for that peer; `limit` is the peer's clock + tolerance when it refused.
   */
  heldForClock?: { wall: number; limit: number };
}

export interface SessionStats {
  /** The peer's hello, once received. */
  peer?: HelloMessage;
  /** What the peer accepts (its hello's limits, or the defaults for an older peer). */
  peerLimits?: SyncLimits;
  /** Position in the peer's log held durably here (this side's receive checkpoint). */
  receivedPos: number;
  /** Where the peer's pull made this side start sending (the peer holds up to here). */
  startPos: number;
  /** Positions of this log sent to the peer / acknowledged by it. */
  sentPos: number;
  ackedPos: number;
  /** Highest seq of this log's own events the peer acknowledged in this session (0: none). */
  ackedOwnSeq: number;
  /** The peer pulled from 0 because its checkpoint did not match this log (it lost data). */
  peerRestarted: boolean;
  /** This side installed the peer's snapshot in this session (protocol 10). */
  joined?: boolean;
  /** Whether the peer pulled (a peer that does not pull is never sent anything). */
  peerPulled: boolean;
  inFlightBatches: number;
  inFlightBytes: number;
  /** This side holds everything the peer had when its catch-up ended. */
  caughtUp: boolean;
  /** Everything up to this log's known head was sent and acknowledged. */
  peerCaughtUp: boolean;
  eventsReceived: number;
  eventsSent: number;
  /** Id of the event the stream to the peer waits before: stamped beyond the peer's clock. */
  heldForClock?: string;
  closed: boolean;
}

export interface PeerSessionOptions {
  log: SyncLog;
  /** Sends one message on the connection; may throw once the connection is closed. */
  send(text: string): void;
  /**
   * Sends one binary message. Given, the connection carries binary both ways: the hello says
   * `binary: true`, binary frames are read, and batches go to a peer that said so too as binary
   * frames (protocol invariant 11).
   */
  sendBinary?(bytes: Uint8Array): void;
  /** Asks the owner to close the connection, after a fatal error was sent or received. */
  closeConnection?(code: number, reason: string): void;
  /** Bytes the transport has not written yet: sending pauses while they pass the byte window. */
  bufferedBytes?(): number;
  limits?: Partial<SyncLimits>;
  /** Announced in hello (`server: true`). */
  isServer?: boolean;
  /** Set false to never pull from the peer (e.g. a server holding a read-only token). */
  pull?: boolean;
  /** This side's wall clock, sent in hello. */
  now(): number;
  /** Kept for callers; the session reads maxClockAheadMs. */
  maxClockDriftMs: number;
  /**
   * The clock tolerance (core/clock-skew.ts, default DEFAULT_MAX_CLOCK_AHEAD_MS): an incoming
   * event stamped further ahead of now() is refused alone (CLOCK_SKEW), a peer whose hello time
   * is further away is reported, and it is announced in hello.
   */
  maxClockAheadMs?: number;
  /**
   * Makes this side's own events "shared" before they are sent (core/restamp.ts: only unshared
   * ones may be re-stamped). Absent on a server, which stamps nothing.
   */
  shareGuard?: ShareGuard;
  /** Runs `fn` after `ms` (injectable for virtual time); returns a cancel. Default setTimeout. */
  schedule?(fn: () => void, ms: number): () => void;
  /**
   * Last check of a batch before it is stored (the server: scope, replica ownership). A refusal
   * is sent to the peer as a fatal error; nothing of the batch is stored.
   */
  validateIncoming?(
    events: StoredEventRecord[],
    peerHello: HelloMessage,
    /** UTF-8 size of the message that carried them (no event of it is larger). */
    messageBytes: number,
  ): Promise<SessionRefusal | undefined>;
  /** The peer's hello, before anything is pulled; a refusal ends the session. */
  onPeerHello?(
    hello: HelloMessage,
  ): SessionRefusal | undefined | Promise<SessionRefusal | undefined>;
  /**
   * The server rejected these events of this side's batches (protocol 8, core/strict.ts);
   * awaited before the next message (the ack that covers them) is handled.
   */
  onRejected?(events: StrictRejection[]): Promise<void> | void;
  /**
   * A server's rejections of the peer's events that the peer may not have heard of (its
   * `rejected` message lost with a connection: protocol 8), sent after its hello, before pull.
   */
  rejectionsFor?(hello: HelloMessage): Promise<StrictRejection[]>;
  /**
   * Whether `event` must wait before it is sent to `peer` (a tentative event of a strict stream,
   * to a peer that is not its authority: strict-sync.ts 3). The stream to the peer stops before
   * the first such event until poke() finds it sendable.
   */
  holdBack?(event: StoredEventRecord, peer: HelloMessage): boolean;
  /**
   * This side's log in the total order, for the peer's `history` requests (protocol 9,
   * history-serve.ts); announced in hello. Absent: they get HISTORY_UNAVAILABLE.
   */
  readHistory?(query: CursorQuery): Promise<StoredEventRecord[]>;
  /** The answers to this side's `history` requests. Absent: a `history-page` is a PROTOCOL error. */
  onHistoryReply?(reply: HistoryReply): void;
  /**
   * Join from the peer's snapshot (protocol 10, session-join.ts): set only while this side's log
   * is empty. Sent in hello; the pull waits for the answer of a peer that serves snapshots.
   */
  join?: JoinOptions;
  /** Answers a peer's `join` (protocol 10); announced in hello. Absent: `join` goes unanswered. */
  snapshotFor?: SnapshotFinder;
  /** The largest `snapshot` message this side sends (default: no bound but the asker's). */
  maxSnapshotBytes?: number;
  /** Progress: after each stored batch, ack, catch-up, or close. */
  onStatus?(stats: SessionStats): void;
  onError?(error: SessionError): void;
  /** This side holds everything the peer had when its catch-up ended (may repeat). */
  onCaughtUp?(): void;
}

/** Keeps a send and a re-stamp (clock-keeper.ts) from crossing. */
export interface ShareGuard {
  /** Grows with every re-stamp that moved something. */
  generation(): number;
  /**
   * Records durably that own events up to `seq` are handed to `peer`; false (nothing recorded)
   * when a re-stamp ran since `generation`: what was read before it may be stale.
   */
  share(peer: string, seq: number, generation: number): Promise<boolean>;
  /** `peer` refused our own event of seq `seq` for the clock: it holds none from there on. */
  refusedForClock(peer: string, seq: number): Promise<void>;
  /**
   * Called after each re-stamp pass (and the clock correction before it): the sender's picture
   * of its peer's clock and the HLCs it read may be stale. Returns unsubscribe.
   */
  onClockChange(listener: () => void): () => void;
  /**
   * The correction a server's clock put on this replica's (C4): `now()` less this is the raw
   * wall clock, which the correction does not move. A peer's clock is measured against that
   * (clock-hold.ts invariant 4).
   */
  clockOffset(): number;
}

export interface PeerSession {
  /**
   * Handles one incoming message, text or a binary frame; calls are serialised in order
   * (invariant 1).
   */
  receive(message: string | Uint8Array): Promise<void>;
  /** Ends the session (does not close the connection: its owner does). */
  close(): void;
  stats(): SessionStats;
  /** Tries to send again: what held the stream back (holdBack) may have let go. */
  poke(): void;
  /** Sends a `history` request (protocol 9); false when the session is closed. */
  requestHistory(request: HistoryMessage): boolean;
  /** Resolves once the hello was sent (or the session failed to start). */
  readonly started: Promise<void>;
}
