/**
 * Types shared by the store and the sync layer (no behaviour): a Transport and the sync status.
 */
import type { TamperReason } from './integrity.ts';

/** Why a transport connection ended. `code` is a WebSocket close code where there is one. */
export interface TransportCloseInfo {
  code?: number;
  reason: string;
  /** Set when the close was caused by a failure rather than asked for. */
  error?: { code: string; message: string };
}

/**
 * A message channel between two replicas, carrying JSON text messages (see sync/protocol.ts), and
 * binary ones where both ends can.
 *
 * - `open()` starts a connection and resolves once messages can be sent; it rejects if the
 *   connection cannot be made. It may be called again after a close: that is a reconnect.
 * - `send(text)` queues a message; it throws if the transport is not open.
 * - Listeners registered with `onMessage` / `onClose` stay registered across reconnects.
 * - `close()` ends the current connection; `onClose` listeners run once per connection.
 * - `bufferedBytes()`, where known, is what was sent but not yet written to the network.
 * - Binary frames (optional, both members or neither): `sendBinary(bytes)` sends one message as
 *   bytes, and `onBinary` listeners get each binary message received. A transport that has them
 *   carries binary both ways; a session over it says so in its hello and sends binary frames
 *   (sync/binary-frame.ts) only to a peer whose hello says so too. A transport without them
 *   carries text only, as before; nothing else changes for it.
 *
 * Every transport passes test/sync/transport-conformance.ts.
 */
export interface Transport {
  readonly kind: string;
  open(): Promise<void>;
  send(text: string): void;
  onMessage(listener: (text: string) => void): () => void;
  onClose(listener: (info: TransportCloseInfo) => void): () => void;
  close(code?: number, reason?: string): void;
  bufferedBytes?(): number;
  /** Sends one binary message; throws if the transport is not open. */
  sendBinary?(bytes: Uint8Array): void;
  /** Listens to binary messages (each a view the listener may keep). */
  onBinary?(listener: (bytes: Uint8Array) => void): () => void;
}

export type SyncState = 'offline' | 'connecting' | 'syncing' | 'idle';

export interface SyncStatus {
  state: SyncState;
  /**
   * This replica's events not yet acknowledged by the peer. An event the peer refused, or would
   * refuse (see `refused`), is not pending: it will never be acknowledged; it is listed there.
   */
  pending: number;
  lastSyncedAt?: number;
  /**
   * `eventId` names the event when the error is about one event (e.g. one a peer refused, or a
   * copy that lost: SEQ_CONFLICT, ID_CONFLICT).
   */
  lastError?: { code: string; message: string; eventId?: string };
  /**
   * Events this replica will not send to a peer because the peer refused them or would (too
   * large for it), the most recent REFUSED_KEPT (100), kept across restarts. Absent when none.
   */
  refused?: RefusedEvent[];
  /**
   * This replica's own events in strict streams that the authority (the sync server) has not
   * accepted yet (core/strict.ts): shown, counted in `pending`, and sent to no other peer until
   * it does. Absent when none.
   */
  tentative?: number;
  /**
   * Appends the authority of a strict stream rejected, the most recent REJECTED_KEPT (100), kept
   * across restarts: their events left this replica's log. Absent when none.
   */
  rejected?: RejectedAppend[];
  /** Each connection made with `sync.connect`, in the order made (absent when there is none). */
  connections?: ConnectionStatus[];
  /**
   * An encrypted store holds events no key of it opens (code UNREADABLE): how many it met since
   * it opened, and the ids of the keys they name. They are kept and synced, not folded; they fold
   * once a key for them is given (StoreOptions.encryption) or arrives (a rotation). Absent when
   * none.
   */
  unreadable?: { events: number; keys: string[] };
  /**
   * Tamper evidence (code TAMPERED, core/integrity.ts): events this replica refused because a
   * signature or key did not hold, events that arrived after an event chained to them
   * (`reordered`), and, while it lasts, each gap in another replica's chain (`missing-link`: the
   * event before `eventId` never arrived). The most recent 100, kept across restarts. Absent
   * when none.
   */
  tampered?: TamperedEvent[];
}

/** One finding of SyncStatus.tampered. */
export interface TamperedEvent {
  eventId: string;
  replica: string;
  seq: number;
  reason: TamperReason;
  /** For `missing-link`: the event the chain names and that never arrived. */
  missing?: { seq: number; id: string };
  /** The peer it came from, when known. */
  peer?: string;
  /** When this replica found it (ms). */
  at: number;
}

/** One connection's part of the status (SyncStatus.connections). */
export interface ConnectionStatus {
  /** The transport's kind: 'websocket', 'broadcast-channel', 'memory', … */
  transport: string;
  state: SyncState;
  /** The peer's replica id, once its hello came (a sync server's is its space's). */
  peer?: string;
  /** The peer said it is a sync server (an authority of strict streams). */
  server?: boolean;
  /** This replica's events the peer has not acknowledged. */
  pending: number;
  lastSyncedAt?: number;
  lastError?: { code: string; message: string; eventId?: string };
}

/** An append the authority of its strict stream rejected (SyncStatus.rejected). */
export interface RejectedAppend {
  stream: string;
  /** The events taken out of this replica's log. */
  eventIds: string[];
  /** `stale`: another replica's events were accepted first; `not-strict`: see core/strict.ts. */
  reason: 'stale' | 'not-strict';
  /** When this replica learnt of it (ms). */
  at: number;
  /** Set when the events were a command's (store.execute): the command, and what became of it. */
  command?: RejectedCommand;
}

export interface RejectedCommand {
  aggregate: string;
  name: string;
  commandId: string;
  /**
   * `pending`: waiting for the accepted events to arrive, to be run again on them; `rebased`: run
   * again and appended anew (tentative again); `rejected`: its handler refused on the new state
   * (`reason`, `message` are the handler's); `failed`: it could not be run again (`message`).
   */
  outcome: 'pending' | 'rebased' | 'rejected' | 'failed';
  reason?: string;
  message?: string;
  /** The events the run on the new state appended (`rebased`). */
  eventIds?: string[];
}

/** An event a peer will not get from this replica (SyncStatus.refused). */
export interface RefusedEvent {
  eventId: string;
  /** The peer's replica id. */
  peer: string;
  /** LIMIT_EXCEEDED (too large for the peer), VALIDATION, or the code the peer gave. */
  code: string;
  message: string;
}

export interface SyncConnection {
  close(): Promise<void>;
  status(): SyncStatus;
}

/**
 * A transport, or the address of a sync server (a WebSocket transport is made for it). A list of
 * URLs names servers sharing one database: each connection attempt goes to one of them, and the
 * next attempt after a failure or a drop to the next (sync/transports/websocket.ts invariant 5).
 */
export type SyncTarget =
  | Transport
  | { url: string | readonly string[]; token?: string | (() => Promise<string>) };

export interface SyncApi {
  connect(target: SyncTarget): SyncConnection;
  /** The combined status of every connection (offline when there is none). */
  status(): SyncStatus;
  on(event: 'status', listener: (status: SyncStatus) => void): () => void;
}
