/**
 * One authenticated WebSocket connection on the server: a peer session (sync/session.ts) over
 * the space's log, behind the server's per-connection guards.
 *
 * Invariants:
 * 1. The token's scope is enforced here, not trusted to the client: without 'write' the server
 *    never pulls and refuses any pushed batch with FORBIDDEN (nothing stored); without 'read' the
 *    server streams nothing of the space's log and tells nothing of it either: to such a
 *    connection the log looks empty (head 0, no ids, no positions of what it wrote), whatever
 *    the space holds, and another subject's events are refused even when the space holds them
 *    (RELIABILITY 40).
 * 2. A batch is stored only if every event that is new to the space claims a replica owned by
 *    this connection's subject, or by nobody yet (storage.ts invariant 4; else ORIGIN_FORBIDDEN).
 * 3. Checkpoints are kept per (subject, replica): a client naming another client's replica in
 *    its hello neither reads nor moves that client's checkpoint.
 * 4. Every guard runs before the session sees a message: rate (token bucket → RATE_LIMITED,
 *    close 4029), binary frames where not offered (PROTOCOL, close 1008), nesting depth
 *    (PROTOCOL, close 1008; of a binary frame's JSON part: invariant 8). The session itself validates everything else; a throw anywhere ends only this connection.
 * 5. What a connection holds to send is bounded: the session keeps at most maxInFlightBatches /
 *    maxInFlightBytes unacknowledged and pauses while the socket's buffer passes that byte
 *    window; the log is the queue, read when the peer has room. A send buffer past
 *    maxBufferedBytes, or unacknowledged batches with no ack for maxAckWaitMs (a slow consumer:
 *    it stopped reading or cannot keep up), closes the connection with 1013 and costs no one
 *    else; the peer resumes from its checkpoint when it reconnects.
 * 6. A token is good for as long as it says: when it expires, its connection gets UNAUTHORIZED
 *    and close 4001 (the client reconnects with a fresh token).
 * 7. The session hears of new records once a whole group commit is in the storage's recent
 *    records: live tail reads memory, and every connection reads the same record objects.
 * 8. Binary frames (protocol invariant 11): offered in the hello unless the server is set not
 *    to; the session sends them only to a client whose hello offered them too. A binary frame
 *    goes through the guards of invariant 4 as a text does (its JSON part), then the session's
 *    parser, which refuses a malformed one with PROTOCOL before anything is stored. Both kinds
 *    count in bytesIn/bytesOut by their byte length; the `close` log entry gives how many
 *    binary frames went each way (binaryIn, binaryOut).
 */

import type WebSocket from 'ws';
import { SyncError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS } from '../core/hlc.ts';
import { jsonDepthExceeds } from '../core/json.ts';
import type { ProjectionVersion } from '../core/space-snapshot.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import { FrameError, frameJson } from '../sync/binary-frame.ts';
import type { SyncLog } from '../sync/log.ts';
import { CloseCode, type HelloMessage, type SyncErrorCode } from '../sync/protocol.ts';
import { type PeerSession, type SessionRefusal, startPeerSession } from '../sync/session.ts';
import type { FoundSnapshot } from '../sync/session-join.ts';
import type { TokenClaims } from './auth.ts';
import { type ServerLimits, TokenBucket } from './limits.ts';
import { type LogEntry, logReplaced, type ServerMetrics } from './metrics.ts';
import type { SnapshotSource } from './snapshot-source.ts';
import type { SpaceLog } from './storage.ts';

export type ConnectionClaims = Pick<TokenClaims, 'space' | 'sub' | 'scope'> & {
  /** Expiry, seconds since the epoch; the connection is closed with 4001 then (invariant 6). */
  exp?: number;
};

export interface ConnectionContext {
  ws: WebSocket;
  claims: ConnectionClaims;
  space: SpaceLog;
  limits: ServerLimits;
  metrics: ServerMetrics;
  log: (entry: LogEntry) => void;
  now: () => number;
  /** Every ingest in flight, server-wide: graceful shutdown waits for them. */
  inflight: Set<Promise<unknown>>;
  remote: string | undefined;
  onClosed: (connection: Connection) => void;
  /** Refuse unsigned events (SyncServerOptions.requireSignatures). */
  requireSignatures: boolean;
  /** Offer binary frames (SyncServerOptions.binaryFrames; invariant 8). Default false. */
  binaryFrames?: boolean;
  /** Snapshots for devices that join from one (absent: they replay the log). */
  snapshots?: SnapshotSource;
}

export class Connection {
  readonly claims: ConnectionClaims;
  /** Cleared by every heartbeat round, set again by a pong or any message. */
  alive = true;
  private readonly ws: WebSocket;
  private readonly session: PeerSession;
  private readonly bucket: TokenBucket;
  private readonly opened: number;
  private ending = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Slow consumer check: the acked position last seen, and since when no ack came (invariant 5). */
  private ackedPos = 0;
  private waitingSince: number | undefined;
  /** Binary frames received and sent (invariant 8), logged when the connection closes. */
  private binaryIn = 0;
  private binaryOut = 0;

  private readonly ctx: ConnectionContext;

  constructor(ctx: ConnectionContext) {
    this.ctx = ctx;
    this.ws = ctx.ws;
    this.claims = ctx.claims;
    this.opened = ctx.now();
    this.bucket = new TokenBucket(
      ctx.limits.maxMessagesPerSecond,
      ctx.limits.messageBurst,
      this.opened,
    );
    const canWrite = ctx.claims.scope.includes('write');
    this.session = startPeerSession({
      log: this.connectionLog(),
      send: (text) => this.send(text),
      ...(ctx.binaryFrames === true
        ? { sendBinary: (bytes: Uint8Array) => this.sendBytes(bytes) }
        : {}),
      closeConnection: (code, reason) => this.end(code, reason),
      bufferedBytes: () => this.ws.bufferedAmount,
      // Announced in hello: clients send within them (protocol invariant 5).
      limits: {
        maxBatchEvents: ctx.limits.maxBatchEvents,
        maxMessageBytes: ctx.limits.maxMessageBytes,
        maxEventBytes: ctx.limits.maxEventBytes,
        maxInFlightBatches: ctx.limits.maxInFlightBatches,
        maxInFlightBytes: ctx.limits.maxInFlightBytes,
      },
      isServer: true,
      pull: canWrite,
      ...(canWrite ? { rejectionsFor: (hello: HelloMessage) => this.rejectionsFor(hello) } : {}),
      // Protocol 9: served where the storage reads by cursor (absent: HISTORY_UNAVAILABLE).
      ...(ctx.space.readByCursor !== undefined
        ? { readHistory: (query: CursorQuery) => this.readHistory(query) }
        : {}),
      // Protocol 10: snapshots for a joining device, with the read scope only (invariant 1);
      // at most half the send buffer at once, so the answer never trips the slow-consumer bound.
      ...(ctx.snapshots !== undefined && ctx.claims.scope.includes('read')
        ? {
            snapshotFor: (wanted: readonly ProjectionVersion[]) => this.snapshotFor(wanted),
            maxSnapshotBytes: Math.floor(ctx.limits.maxBufferedBytes / 2),
          }
        : {}),
      now: ctx.now,
      maxClockDriftMs: DEFAULT_MAX_CLOCK_DRIFT_MS,
      maxClockAheadMs: ctx.limits.maxClockAheadMs,
      validateIncoming: (events) => this.validateIncoming(events),
      onError: (error) => {
        if (error.source === 'local') ctx.metrics.error(error.code);
        // An event left out for this client, or refused by it: never silent (protocol 6).
        if (error.skipped !== undefined) {
          ctx.log({
            level: 'warn',
            event: 'event_not_sent',
            space: ctx.claims.space,
            sub: ctx.claims.sub,
            eventId: error.eventId,
            code: error.code,
            error: error.message,
          });
        }
      },
    });
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.ws.on('pong', () => {
      this.alive = true;
    });
    this.ws.on('error', (error) => {
      // ws emits the error, then closes (1009 for maxPayload, 1007 for bad UTF-8).
      ctx.log({
        level: 'warn',
        event: 'socket_error',
        space: ctx.claims.space,
        error: error.message,
      });
    });
    this.ws.on('close', (code, reason) => this.onClose(code, reason.toString('utf8')));
    this.scheduleExpiry();
    ctx.log({
      level: 'info',
      event: 'connect',
      space: ctx.claims.space,
      sub: ctx.claims.sub,
      scope: ctx.claims.scope,
      remote: ctx.remote,
    });
  }

  /** Heartbeat round: terminates a socket that did not answer the previous ping (half-open). */
  heartbeat(): void {
    if (!this.alive) {
      this.ctx.log({
        level: 'warn',
        event: 'heartbeat_timeout',
        space: this.claims.space,
        sub: this.claims.sub,
      });
      this.ws.terminate();
      return;
    }
    this.alive = false;
    try {
      this.ws.ping();
    } catch {
      this.ws.terminate();
    }
  }

  /** Ends the session and closes the socket with `code`; destroys it after closeGraceMs. */
  end(code: number, reason: string): void {
    this.session.close();
    if (this.ending) return;
    this.ending = true;
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(code, reason.slice(0, 120));
    }
    this.graceTimer = setTimeout(() => this.ws.terminate(), this.ctx.limits.closeGraceMs);
    this.graceTimer.unref();
  }

  /** Resolves when the socket is closed. */
  closed(): Promise<void> {
    if (this.ws.readyState === this.ws.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.ws.once('close', () => resolve()));
  }

  /**
   * Slow consumer check (invariant 5), on the server's timer: sheds a peer that has held
   * unacknowledged batches for longer than maxAckWaitMs with no ack arriving.
   */
  checkAcks(now: number): void {
    if (this.ending) return;
    const { inFlightBatches, ackedPos } = this.session.stats();
    if (inFlightBatches === 0 || ackedPos !== this.ackedPos) {
      this.ackedPos = ackedPos;
      this.waitingSince = inFlightBatches === 0 ? undefined : now;
      return;
    }
    this.waitingSince ??= now;
    if (now - this.waitingSince <= this.ctx.limits.maxAckWaitMs) return;
    this.ctx.log({
      level: 'warn',
      event: 'slow_consumer',
      space: this.claims.space,
      sub: this.claims.sub,
      waitedMs: now - this.waitingSince,
      buffered: this.ws.bufferedAmount,
    });
    this.refuse(
      'LIMIT_EXCEEDED',
      `no ack for ${this.ctx.limits.maxAckWaitMs} ms: closed as a slow consumer, reconnect to resume`,
      CloseCode.tryAgainLater,
    );
  }

  private send(text: string): void {
    // Encoded once here: ws would measure a string, then encode it while framing.
    this.sendData(Buffer.from(text, 'utf8'), false);
  }

  private sendBytes(bytes: Uint8Array): void {
    this.sendData(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), true);
    this.binaryOut += 1;
  }

  private sendData(data: Buffer, binary: boolean): void {
    if (this.ws.readyState !== this.ws.OPEN) throw new Error('the connection is closed');
    this.ws.send(data, { binary });
    this.ctx.metrics.messagesOut += 1;
    this.ctx.metrics.bytesOut += data.length;
    if (this.ws.bufferedAmount > this.ctx.limits.maxBufferedBytes) {
      this.ctx.metrics.error('LIMIT_EXCEEDED');
      this.ctx.log({
        level: 'warn',
        event: 'slow_consumer',
        space: this.claims.space,
        sub: this.claims.sub,
        buffered: this.ws.bufferedAmount,
      });
      // The error message could not get through a full buffer: the close code says it all.
      this.end(CloseCode.tryAgainLater, 'send buffer full');
    }
  }

  /** Sends a fatal error of the server's own (not the session's) and closes. */
  private refuse(code: SyncErrorCode, message: string, closeCode: number): void {
    if (this.ending) return;
    this.ctx.metrics.error(code);
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.send(JSON.stringify({ type: 'error', code, message, fatal: true }));
    }
    this.end(closeCode, `${code}: ${message}`);
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.ending) return;
    this.alive = true;
    const size = Array.isArray(data)
      ? data.reduce((n, b) => n + b.length, 0)
      : data instanceof ArrayBuffer
        ? data.byteLength
        : data.length;
    this.ctx.metrics.messagesIn += 1;
    this.ctx.metrics.bytesIn += size;
    if (!this.bucket.take(this.ctx.now())) {
      this.refuse(
        'RATE_LIMITED',
        `more than ${this.ctx.limits.maxMessagesPerSecond} messages a second`,
        CloseCode.rateLimited,
      );
      return;
    }
    if (isBinary && this.ctx.binaryFrames !== true) {
      this.refuse(
        'PROTOCOL',
        'binary frames are not accepted: messages are JSON text',
        CloseCode.policyViolation,
      );
      return;
    }
    const buffer = Array.isArray(data)
      ? Buffer.concat(data)
      : data instanceof ArrayBuffer
        ? Buffer.from(data)
        : data;
    let text: string;
    if (isBinary) this.binaryIn += 1;
    try {
      text = isBinary ? frameJson(buffer) : buffer.toString('utf8');
    } catch (error) {
      // A frame whose JSON part cannot be read (binary-frame.ts invariant 2).
      const message = error instanceof FrameError ? error.message : String(error);
      this.refuse('PROTOCOL', message, CloseCode.policyViolation);
      return;
    }
    if (jsonDepthExceeds(text, this.ctx.limits.maxMessageDepth)) {
      this.refuse(
        'PROTOCOL',
        `message nested deeper than ${this.ctx.limits.maxMessageDepth}`,
        CloseCode.policyViolation,
      );
      return;
    }
    if (!this.claims.scope.includes('write') && isEventsMessage(text)) {
      this.refuse('FORBIDDEN', 'this token may not write', CloseCode.forbidden);
      return;
    }
    this.session.receive(isBinary ? buffer : text).catch((error: unknown) => {
      this.ctx.log({ level: 'error', event: 'session_failure', error: String(error) });
      this.refuse('INTERNAL', 'internal error', CloseCode.internalError);
    });
  }

  private scheduleExpiry(): void {
    const exp = this.claims.exp;
    if (exp === undefined) return;
    const left = exp * 1000 - this.ctx.now();
    if (left <= 0) {
      this.refuse('UNAUTHORIZED', 'the token has expired', CloseCode.unauthorized);
      return;
    }
    // setTimeout holds at most 2^31-1 ms (about 24.8 days): longer tokens re-arm.
    this.expiryTimer = setTimeout(() => this.scheduleExpiry(), Math.min(left, 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  private onClose(code: number, reason: string): void {
    this.session.close();
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.ctx.metrics.closed(code);
    this.ctx.log({
      level: 'info',
      event: 'close',
      space: this.claims.space,
      sub: this.claims.sub,
      code,
      reason,
      durationMs: this.ctx.now() - this.opened,
      binaryIn: this.binaryIn,
      binaryOut: this.binaryOut,
    });
    this.ctx.onClosed(this);
  }

  private async validateIncoming(events: StoredEventRecord[]): Promise<SessionRefusal | undefined> {
    if (!this.claims.scope.includes('write')) {
      return { code: 'FORBIDDEN', message: 'this token may not write' };
    }
    // A batch of no events (positions the client received from here: session-sender.ts's runs,
    // one per append it hears of) claims nothing. Asked anyway, PostgreSQL took the space's lock
    // in a transaction, once per connection per append.
    if (events.length === 0) return undefined;
    // maxEventBytes is the session's (its decoder refuses the one event over it).
    if (!this.claims.scope.includes('read')) {
      const foreign = await this.foreignEvent(events);
      if (foreign !== undefined) return foreign;
    }
    const check = await this.ctx.space.claimOrigins(this.claims.sub, events);
    if (!check.ok) return originRefusal(check.eventId, check.replica);
    return undefined;
  }

  /**
   * Without 'read', an event of another subject's replica is refused even when the space holds
   * it: "accepted because held" would let such a token probe which events (how many of a
   * replica's seqs) the space holds (invariant 1). Worded as claimOrigins words its refusal.
   */
  private async foreignEvent(events: StoredEventRecord[]): Promise<SessionRefusal | undefined> {
    const owners = new Map<string, string | undefined>();
    for (const event of events) {
      if (!owners.has(event.replica)) {
        owners.set(event.replica, await this.ctx.space.ownerOf(event.replica));
      }
      const owner = owners.get(event.replica);
      if (owner !== undefined && owner !== this.claims.sub) {
        return originRefusal(event.id, event.replica);
      }
    }
    return undefined;
  }

  /**
   * Rejections of the client's replica it may not have heard of (storage.ts rejectionsOf): its
   * hello's seq is the highest own seq some peer acknowledged, which it raises only after it
   * handled the rejections sent before that ack; those up to it are forgotten.
   */
  private async rejectionsFor(hello: HelloMessage): Promise<StrictRejection[]> {
    const { space } = this.ctx;
    await space.forgetRejections(hello.replica, hello.seq);
    return space.rejectionsOf(hello.replica, hello.seq);
  }

  /** History for this connection (protocol 9): the read scope only, like catch-up. */
  private async readHistory(query: CursorQuery): Promise<StoredEventRecord[]> {
    if (!this.claims.scope.includes('read')) {
      throw new SyncError('FORBIDDEN', 'reading history needs the read scope');
    }
    const records = await this.ctx.space.readByCursor!(query);
    this.ctx.metrics.eventsOut += records.length;
    return records.map((r) => r.event);
  }

  /** The newest snapshot holding `wanted` (protocol 10), with the id of its event at `pos`. */
  private async snapshotFor(
    wanted: readonly ProjectionVersion[],
  ): Promise<FoundSnapshot | undefined> {
    const { space, claims, snapshots } = this.ctx;
    const snapshot = await snapshots?.latest(claims.space, wanted);
    if (snapshot === undefined) return undefined;
    const id = snapshot.pos > 0 ? await space.idAtPos(snapshot.pos) : undefined;
    this.ctx.log({
      level: 'info',
      event: 'snapshot_found',
      space: claims.space,
      sub: claims.sub,
      pos: snapshot.pos,
      count: snapshot.count,
    });
    return id === undefined ? { snapshot } : { snapshot, id };
  }

  /** The space's log as this connection may see it (invariants 1 and 3). */
  private connectionLog(): SyncLog {
    const { space, claims, metrics, inflight, log } = this.ctx;
    const canRead = claims.scope.includes('read');
    const key = (peer: string) => `${claims.sub}\u0000${peer}`;
    return {
      replicaId: space.replicaId,
      epoch: () => space.epoch(),
      headPos: () => (canRead ? space.headPos() : Promise.resolve(0)),
      ownSeq: () => space.ownSeq(),
      idAtPos: (pos) => (canRead ? space.idAtPos(pos) : Promise.resolve(undefined)),
      async readByPos(afterPos, limit) {
        if (!canRead) return [];
        const records = await space.readByPos(afterPos, limit);
        metrics.eventsOut += records.length;
        return records;
      },
      async ingest(events) {
        const pending = space.ingest(events);
        inflight.add(pending);
        try {
          const result = await pending;
          metrics.eventsIn += result.written.length;
          logReplaced(log, claims, result.lost);
          // Where its events landed would tell a connection without 'read' the space's head.
          return canRead ? result : { ...result, written: [] };
        } finally {
          inflight.delete(pending);
        }
      },
      getCheckpoint: (peer) => space.getCheckpoint(key(peer)),
      setCheckpoint: (peer, checkpoint) => space.setCheckpoint(key(peer), checkpoint),
      onAppend: (listener) => (canRead ? space.onAppend(afterCommit(listener)) : () => {}),
      // Tamper evidence (core/integrity.ts): what a client pushes is verified before the
      // ownership claim and the ingest; a replica's key is bound to the subject that first
      // brought it.
      integrity: {
        requireSignatures: this.ctx.requireSignatures,
        eventAt: (replica, seq) => space.eventAtSlot(replica, seq),
        keyOf: (replica) => space.replicaKey(replica),
        rememberKeys: (keys) => space.bindReplicaKeys(claims.sub, keys),
      },
    };
  }
}

/**
 * A storage tells its listeners of each ingest of a group commit as it goes (storage.ts), and a
 * read is synchronous: a session's read at the first one would find the database's head past the
 * recent records and read every record of the group back from the database, once per
 * connection, as new objects that no shared encoding matches. Deferred to a microtask, the
 * session hears of a group once, when all of it is in the recent records (invariant 7).
 */
function afterCommit(listener: (head: number) => void): (head: number) => void {
  let scheduled = false;
  let latest = 0;
  return (head) => {
    if (head > latest) latest = head;
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      listener(latest);
    });
  };
}

/**
 * ORIGIN_FORBIDDEN for one event, saying nothing of who owns its replica (invariant 2,
 * RELIABILITY 26). Refused alone (protocol 6): a client relaying a peer's events of another
 * subject's replica leaves that replica out and goes on syncing, instead of being closed with
 * 4003 at every reconnect for good.
 */
function originRefusal(eventId: string, replica: string): SessionRefusal {
  return {
    code: 'ORIGIN_FORBIDDEN',
    message: `event ${eventId} claims replica ${replica}, which this token may not write`,
    eventId,
    reason: { kind: 'not-owner', replica },
  };
}

/** Whether a message is a batch of events (parsed only for read-only connections: few messages). */
function isEventsMessage(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return (
      typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'events'
    );
  } catch {
    return false;
  }
}
