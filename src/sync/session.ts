/**
 * One sync session over one open connection, symmetric: the client's Syncer and the sync server
 * both run it, each over its own SyncLog. It follows sync/protocol.ts; the decisions come from
 * core/sync.ts, this file moves messages and calls the log. It is the coordinator and the
 * receiving half; the sending half (pull, the pump and its flow window, ack) is session-sender.ts.
 *
 *   start:   send hello (epoch, head, own seq, time)
 *   hello →  check it, send pull with the checkpoint held for that peer (fingerprinted)
 *   pull  →  the sender streams what the peer lacks, then tails the log live
 *   events → refuse gaps, ack duplicates again, validate, ingest durably, save the checkpoint,
 *            then ack
 *   ack   →  the sender frees window slots and sends more
 *   rejected → (from a server) own events a strict stream rejected: onRejected takes them out
 *
 * Invariants (protocol.ts numbers in brackets):
 * 1. Incoming messages are handled one at a time, in arrival order (receive() chains them).
 * 2. An ack is sent only after ingest resolved and the checkpoint was saved [2]; a checkpoint is
 *    saved only for a batch whose events are durable, so it never passes a non-durable event.
 * 3. A batch that does not start at the checkpoint is refused with GAP and ends the session [3]:
 *    later batches would be gaps too, and a reconnect resumes from the durable checkpoint.
 * 4. A refused batch (validation, validateIncoming, storage) stores nothing and ends the session:
 *    skipping it would break invariant 3. Except a refusal of one event for a reason tied to it,
 *    to a peer that announced limits [6]: the batch is not stored nor acknowledged, the peer is
 *    told which event, and batches are dropped until the peer resends from the same position.
 * 5. Records the peer holds are not sent back (session-sender.ts states and keeps it).
 * 6. An exact duplicate of a hello or pull is ignored; any other repetition is a PROTOCOL error.
 * 7. After close() (or a fatal error) nothing more is sent, stored or acknowledged.
 * 8. An event stamped beyond this side's clock + maxClockAheadMs is refused alone [6, 7] with
 *    CLOCK_SKEW (reason `clock-ahead`), like an event too large: nothing of its batch is stored
 *    and the peer resends without it, holding it back (core/clock-skew.ts invariant 1). A client
 *    does not check what a server sends: the server checked it against its own clock, which is
 *    the authority clients correct theirs to.
 * 9. Tamper evidence (core/integrity.ts): with log.integrity, a batch is verified before any
 *    other check that writes and before it is stored; an event whose signature or chain does
 *    not hold is refused alone with TAMPERED (reason `tampered`), like an event too large: the
 *    peer resends the batch without it and without its replica's later events, and the honest
 *    rest is stored. A client verifies what a server sends too: the server is not trusted.
 */

import { acceptLimit, DEFAULT_MAX_CLOCK_AHEAD_MS, isBeyond } from '../core/clock-skew.ts';
import { ChronicleError, SeqConflictError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { TAMPER_TEXT, type Tampering, verifyBatch } from '../core/integrity.ts';
import { utf8Length } from '../core/json.ts';
import type { StrictRejection } from '../core/strict.ts';
import {
  afterBatch,
  checkpointForPull,
  classifyBatch,
  decideEventRefusal,
  type ReceiveState,
} from '../core/sync.ts';
import type { DataTextOf } from './event-codec.ts';
import { createHistoryServer } from './history-serve.ts';
import { lostCopyReport } from './lost-copies.ts';
import { closeCodeFor, encodeMessage, parseMessage } from './messages.ts';
import {
  type AckMessage,
  DEFAULT_SYNC_LIMITS,
  type ErrorMessage,
  type EventsMessage,
  type HelloMessage,
  type HistoryMessage,
  limitsOfPeer,
  PROTOCOL_VERSION,
  type PullMessage,
  type RefusalReason,
  type SnapshotMessage,
  type SnapshotPartMessage,
  SYNC_LIMIT_NAMES,
  type SyncErrorCode,
  type SyncLimits,
  type SyncMessage,
} from './protocol.ts';
import { answerJoin, SNAPSHOT_PART_TIMEOUT_MS, takeSnapshot } from './session-join.ts';
import { SessionSender } from './session-sender.ts';
import type {
  PeerSession,
  PeerSessionOptions,
  SessionError,
  SessionStats,
} from './session-types.ts';
import { SnapshotPartsReceiver } from './snapshot-receiver.ts';

export type {
  HistoryReply,
  PeerSession,
  PeerSessionOptions,
  SessionError,
  SessionRefusal,
  SessionStats,
} from './session-types.ts';

/** How often a side sending a snapshot in parts looks whether its transport has drained (ms). */
const DRAIN_POLL_MS = 5;
const defaultSchedule = (fn: () => void, ms: number): (() => void) => {
  const handle = setTimeout(fn, ms);
  return () => clearTimeout(handle);
};

/** Rejections in one `rejected` message at most (also kept within the peer's message bytes). */
const REJECTED_AT_ONCE = 200;

/**
 * Starts a session on an open connection: sends hello at once, then answers the peer.
 *
 * @example
 * const session = startPeerSession({ log, send: (t) => ws.send(t), now: Date.now, maxClockDriftMs });
 * ws.on('message', (data) => void session.receive(String(data)));
 * ws.on('close', () => session.close());
 */
export function startPeerSession(options: PeerSessionOptions): PeerSession {
  const log = options.log;
  // Only the named limits: they are announced in hello as they are.
  const limits = {} as SyncLimits;
  for (const name of SYNC_LIMIT_NAMES)
    limits[name] = options.limits?.[name] ?? DEFAULT_SYNC_LIMITS[name];
  const pullEnabled = options.pull ?? true;
  const aheadMs = options.maxClockAheadMs ?? DEFAULT_MAX_CLOCK_AHEAD_MS;

  let closed = false;
  let peer: HelloMessage | undefined;
  let helloText: string | undefined;
  let pullText: string | undefined;
  let pullSent = false;
  let recv: ReceiveState = { pos: 0, started: false };
  let caughtUp = false;
  let eventsReceived = 0;
  /** Protocol 10: this side sent join and waits for the answer before it pulls. */
  let awaitingSnapshot = false;
  let joined = false;
  /** Protocol 10: a snapshot sent in parts, while they come (snapshot-receiver.ts). */
  const snapshotParts = new SnapshotPartsReceiver({
    schedule: options.schedule ?? defaultSchedule,
    timeoutMs: options.join?.partTimeoutMs ?? SNAPSHOT_PART_TIMEOUT_MS,
    queue: (fn) => {
      chain = chain.then(fn);
    },
    refused: async (error) => {
      if (closed || peer === undefined) return;
      options.onError?.({
        code: 'SNAPSHOT_INVALID',
        message: `the snapshot sent in parts does not hold, replaying the log: ${error instanceof Error ? error.message : String(error)}`,
        fatal: false,
        source: 'peer',
      });
      return sendPull(peer);
    },
    whole: (m) => install(m),
  });

  const stats = (): SessionStats => {
    const s: SessionStats = {
      receivedPos: recv.pos,
      startPos: sender.startPos,
      sentPos: sender.sentPos,
      ackedPos: sender.ackedPos,
      ackedOwnSeq: sender.ackedOwnSeq,
      peerRestarted: sender.peerRestarted,
      peerPulled: sender.outbound,
      inFlightBatches: sender.window.batches.length,
      inFlightBytes: sender.window.bytes,
      caughtUp,
      peerCaughtUp: sender.peerCaughtUp(),
      eventsReceived,
      eventsSent: sender.eventsSent,
      closed,
    };
    if (joined) s.joined = true;
    if (sender.heldForClock !== undefined) s.heldForClock = sender.heldForClock;
    if (peer !== undefined) {
      s.peer = peer;
      s.peerLimits = limitsOfPeer(peer);
    }
    return s;
  };
  const report = () => options.onStatus?.(stats());

  const close = () => {
    if (closed) return;
    closed = true;
    snapshotParts.cancel();
    sender.stop();
    report();
  };

  const send = (message: SyncMessage, dataText?: DataTextOf): void => {
    if (!closed) sendText(encodeMessage(message, dataText));
  };

  /** Sends an encoded message (snapshot-join.ts encodes its answer to measure it). */
  const sendText = (text: string): void => {
    if (closed) return;
    try {
      options.send(text);
    } catch {
      // The connection is gone: its owner sees the close and ends the session.
      close();
    }
  };

  /** Ends the session with an error sent to the peer (invariants 3, 4). */
  const fail = (code: SyncErrorCode, message: string, eventId?: string): void => {
    if (closed) return;
    const error: SyncMessage = { type: 'error', code, message, fatal: true };
    if (eventId !== undefined) error.eventId = eventId;
    send(error);
    const seen: SessionError = { code, message, fatal: true, source: 'local' };
    if (eventId !== undefined) seen.eventId = eventId;
    options.onError?.(seen);
    close();
    options.closeConnection?.(closeCodeFor(code), `${code}: ${message}`.slice(0, 120));
  };

  const storageFailure = (error: unknown): void => {
    const text = error instanceof Error ? error.message : String(error);
    if (error instanceof SeqConflictError) {
      fail('SEQ_CONFLICT', text, error.eventId);
      return;
    }
    const code = error instanceof ChronicleError ? error.code : 'STORAGE';
    fail('STORAGE', `could not store the batch (${code}): ${text}`);
  };

  const sender = new SessionSender(options, limits, { send, fail, storageFailure, report });
  // Protocol 9: answered beside the session (history-serve.ts).
  const integrity = log.integrity;
  const history = createHistoryServer({
    read: options.readHistory,
    limits,
    ...(integrity === undefined ? {} : { keyOf: (replica) => integrity.keyOf(replica) }),
    send: (text) => {
      if (closed) return;
      try {
        options.send(text);
      } catch {
        close();
      }
    },
  });

  /**
   * Refuses one event of the batch (from, to] (invariant 4, protocol 6): fatal to a peer that
   * did not announce limits (it would not understand), else the batch waits for a resend.
   */
  /** A peer that announced limits understands a per-event refusal and resends (protocol 6). */
  const peerResends = () => peer?.limits !== undefined && pullSent;

  const refuseEvent = (
    batch: { from: number; to: number },
    refusal: { code: SyncErrorCode; message: string; eventId: string; reason: RefusalReason },
  ): void => {
    const decision = decideEventRefusal(recv, batch, refusal.eventId, peerResends());
    switch (decision.kind) {
      case 'fatal':
        fail(refusal.code, refusal.message, refusal.eventId);
        return;
      case 'gap':
        fail('GAP', `batch starts at ${batch.from}, this side holds up to ${decision.expected}`);
        return;
      case 'drop':
        return;
      case 'ack':
        recv = decision.state;
        send({ type: 'ack', to: recv.pos });
        return;
      case 'refuse':
        recv = decision.state;
        break;
      default: {
        const never: never = decision;
        throw new Error(`unknown refusal decision ${JSON.stringify(never)}`);
      }
    }
    const error: ErrorMessage = {
      type: 'error',
      code: refusal.code,
      message: refusal.message,
      eventId: refusal.eventId,
      refused: { from: batch.from, reason: refusal.reason },
    };
    send(error);
    options.onError?.({
      code: refusal.code,
      message: refusal.message,
      fatal: false,
      source: 'local',
      eventId: refusal.eventId,
    });
    report();
  };

  /**
   * Tells the peer which of its events strict streams rejected (protocol 8), in messages of at
   * most REJECTED_AT_ONCE, and never more than the peer takes in a batch (it refuses a longer
   * list with LIMIT_EXCEEDED, as it would a batch).
   */
  const sendRejected = (events: readonly StrictRejection[]): void => {
    if (events.length === 0 || peer === undefined) return;
    const peerLimits = limitsOfPeer(peer);
    const count = Math.max(1, Math.min(REJECTED_AT_ONCE, peerLimits.maxBatchEvents));
    // Room for the envelope `{"type":"rejected","events":[]}` and the commas.
    const room = peerLimits.maxMessageBytes - 64;
    let chunk: StrictRejection[] = [];
    let bytes = 0;
    for (const event of events) {
      const size = utf8Length(JSON.stringify(event)) + 1;
      if (chunk.length > 0 && (chunk.length >= count || bytes + size > room)) {
        send({ type: 'rejected', events: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(event);
      bytes += size;
    }
    send({ type: 'rejected', events: chunk });
  };

  /** Invariant 9: the refusal of a tampered event. */
  const tamperRefusal = ({ event, reason }: Tampering) => ({
    code: 'TAMPERED' as const,
    message: `event ${event.id} (replica ${event.replica}, seq ${event.seq}) was refused: ${TAMPER_TEXT[reason]}`,
    eventId: event.id,
    reason: { kind: 'tampered' as const, replica: event.replica, seq: event.seq, why: reason },
  });

  /** Why `event` is refused for the clock (invariant 8, core/clock-skew.ts invariant 1). */
  const clockRefusal = (event: { id: string; time: number }) => {
    const limit = Math.floor(options.now()) + aheadMs;
    const ahead = Math.round((event.time - options.now()) / 1000);
    return {
      code: 'CLOCK_SKEW' as const,
      message: `event ${event.id} is stamped ${ahead} s ahead of this clock (tolerance ${Math.round(aheadMs / 1000)} s): not stored`,
      eventId: event.id,
      reason: { kind: 'clock-ahead' as const, wall: event.time, limit },
    };
  };

  // ---- receiving -----------------------------------------------------------------------------

  const onHello = async (m: HelloMessage, text: string): Promise<void> => {
    if (peer !== undefined) {
      if (text !== helloText) fail('PROTOCOL', 'a second, different hello');
      return;
    }
    if (m.replica === log.replicaId) {
      fail('PROTOCOL', 'the peer is this replica (same replica id): nothing to sync');
      return;
    }
    peer = m;
    helloText = text;
    const refusal = await options.onPeerHello?.(m);
    if (refusal !== undefined) return fail(refusal.code, refusal.message);
    if (closed) return;
    // After onPeerHello: a client has corrected its clock from a server's hello by now. A server
    // takes a client's clock as its own (the client corrects to it).
    sender.setPeerClock({
      server: m.server === true,
      time: options.isServer === true ? undefined : m.time,
      toleranceMs: m.maxClockAheadMs,
    });
    if (Math.abs(m.time - options.now()) > aheadMs) {
      options.onError?.({
        code: 'CLOCK_SKEW',
        message: `the peer's clock is ${Math.round((m.time - options.now()) / 1000)} s away from this one`,
        fatal: false,
        source: 'local',
      });
    }
    // Protocol 10: the answer to the peer's join, before anything else of this side.
    if (m.join !== undefined && options.snapshotFor !== undefined) {
      const cap = options.maxSnapshotBytes ?? Number.POSITIVE_INFINITY;
      const answer = await answerJoin(options.snapshotFor, m.join, {
        cap,
        peerMessageBytes: limitsOfPeer(m).maxMessageBytes,
      });
      for (const text of answer.texts) {
        // Parts go out as the transport drains: never more than `cap` buffered at once.
        await roomToSend(text.length, cap);
        if (closed) return;
        sendText(text);
      }
    }
    // Before pull: the peer takes its events out before it sends again (protocol 8).
    const rejections = (await options.rejectionsFor?.(m)) ?? [];
    if (closed) return;
    sendRejected(rejections);
    if (!pullEnabled) return;
    // Protocol 10: the pull waits for the answer to this side's join.
    if (options.join !== undefined && m.snapshots === true) {
      awaitingSnapshot = true;
      return;
    }
    return sendPull(m);
  };

  /** The pull, from the checkpoint held for the peer (fingerprinted: protocol 4). */
  const sendPull = async (m: HelloMessage): Promise<void> => {
    const saved = await log.getCheckpoint(m.replica);
    if (closed) return;
    const checkpoint = checkpointForPull(saved, m);
    recv = { pos: checkpoint?.pos ?? 0, started: false };
    const pull: PullMessage = { type: 'pull' };
    if (checkpoint !== undefined) pull.checkpoint = checkpoint;
    pullSent = true;
    send(pull);
    report();
  };

  /** Waits until `bytes` more stay within `cap` of what the transport has not written yet. */
  const roomToSend = async (bytes: number, cap: number): Promise<void> => {
    const buffered = options.bufferedBytes;
    if (buffered === undefined || !Number.isFinite(cap)) return;
    const schedule = options.schedule ?? defaultSchedule;
    while (!closed && buffered() > 0 && buffered() + bytes > cap) {
      await new Promise<void>((resolve) => schedule(resolve, DRAIN_POLL_MS));
    }
  };

  /** Protocol 10: the answer to this side's join; installed (or not), then the pull goes out. */
  const onSnapshot = async (m: SnapshotMessage): Promise<void> => {
    if (!awaitingSnapshot || peer === undefined || options.join === undefined) {
      return fail('PROTOCOL', 'a snapshot this side did not ask for');
    }
    awaitingSnapshot = false;
    if (m.parts !== undefined && m.length !== undefined) {
      const header = { parts: m.parts, length: m.length };
      return snapshotParts.begin(
        m.id === undefined ? header : { ...header, id: m.id },
        options.join.maxBytes,
      );
    }
    return install(m);
  };

  const onSnapshotPart = async (m: SnapshotPartMessage): Promise<void> => {
    const handled = snapshotParts.part(m);
    if (handled === undefined) return fail('PROTOCOL', 'a snapshot part this side did not ask for');
    return handled;
  };

  /** Installs the snapshot (or not: replay), then the pull goes out. */
  const install = async (m: SnapshotMessage): Promise<void> => {
    if (peer === undefined || options.join === undefined) return;
    try {
      joined = await takeSnapshot(options.join, m, peer);
    } catch (error) {
      // Nothing of it was written (adapter.ts invariant 7): replay instead.
      options.onError?.({
        code: 'STORAGE',
        message: `could not install the snapshot, replaying the log: ${error instanceof Error ? error.message : String(error)}`,
        fatal: false,
        source: 'local',
      });
    }
    if (closed) return;
    return sendPull(peer);
  };

  const onPull = async (m: PullMessage, text: string): Promise<void> => {
    if (peer === undefined) return fail('PROTOCOL', 'pull before hello');
    if (pullText !== undefined) {
      if (text !== pullText) fail('PROTOCOL', 'a second, different pull');
      return;
    }
    pullText = text;
    return sender.startSending(m, peer);
  };

  const onEvents = async (
    m: EventsMessage & { events: StoredEventRecord[] },
    messageBytes: number,
  ): Promise<void> => {
    if (!pullSent || peer === undefined) return fail('PROTOCOL', 'events that were not pulled');
    const decision = classifyBatch(recv, m);
    switch (decision.kind) {
      case 'gap':
        return fail('GAP', `batch starts at ${m.from}, this side holds up to ${decision.expected}`);
      case 'discard':
        return;
      case 'duplicate':
        recv = afterBatch(recv, decision);
        send({ type: 'ack', to: recv.pos });
        break;
      case 'apply': {
        // Invariant 8 (clock): refused alone, like a too-large event; a client takes what a server
        // sends (the server checked it against its own clock, the authority).
        if (peer.server !== true || options.isServer === true) {
          const limit = acceptLimit(options.now(), aheadMs);
          const ahead = m.events.find((e) => isBeyond(e, limit));
          if (ahead !== undefined) return refuseEvent(m, clockRefusal(ahead));
        }
        // Invariant 9: verified before anything (an ownership claim too) is taken from it.
        const integrity = log.integrity;
        if (integrity !== undefined && m.events.length > 0) {
          const verdict = await verifyBatch(m.events, integrity, {
            requireSignatures: integrity.requireSignatures,
            ...(m.keys === undefined ? {} : { keys: m.keys }),
          });
          if (closed) return;
          if (!verdict.ok) {
            void integrity.noteRefused?.(verdict.tampering, peer.replica).catch(() => {});
            return refuseEvent(m, tamperRefusal(verdict.tampering));
          }
          if (verdict.keys.size > 0) await integrity.rememberKeys(verdict.keys);
          await integrity.noteLinks?.(m.events, verdict.links, peer.replica);
          if (closed) return;
        }
        const refusal = await options.validateIncoming?.(m.events, peer, messageBytes);
        if (closed) return;
        if (refusal !== undefined) {
          const { eventId, reason } = refusal;
          if (eventId === undefined || reason === undefined) {
            return fail(refusal.code, refusal.message);
          }
          return refuseEvent(m, { code: refusal.code, message: refusal.message, eventId, reason });
        }
        sender.pausedForIngest = true;
        let rejected: StrictRejection[] = [];
        try {
          if (m.events.length > 0) {
            const vouchedByServer = peer.server === true && options.isServer !== true;
            const result = await log.ingest(m.events, vouchedByServer ? { vouchedByServer } : {});
            eventsReceived += result.written.length;
            rejected = result.rejected ?? [];
            sender.noteIngested(result.written);
            const lost = lostCopyReport(result.lost ?? [], log.replicaId);
            if (lost !== undefined) options.onError?.(lost);
            if (result.skewed) {
              options.onError?.({
                code: 'CLOCK_SKEW',
                message: 'received events stamped more than maxClockDrift ahead of this clock',
                fatal: false,
                source: 'local',
              });
            }
          }
          if (closed) return;
          const checkpoint = {
            epoch: peer.epoch,
            pos: decision.to,
            ...(m.toId ? { id: m.toId } : {}),
          };
          await log.setCheckpoint(peer.replica, checkpoint);
        } catch (error) {
          return storageFailure(error);
        } finally {
          sender.pausedForIngest = false;
        }
        if (closed) return;
        recv = afterBatch(recv, decision);
        // Before the ack that covers them (protocol 8).
        sendRejected(rejected);
        const ack: AckMessage = { type: 'ack', to: recv.pos };
        send(ack);
        sender.pump();
        break;
      }
      default: {
        const never: never = decision;
        throw new Error(`unknown batch decision ${JSON.stringify(never)}`);
      }
    }
    if (m.caughtUp === true) {
      caughtUp = true;
      options.onCaughtUp?.();
    }
    report();
  };

  const handle = async (text: string): Promise<void> => {
    if (closed) return;
    const parsed = parseMessage(
      text,
      limits,
      awaitingSnapshot ? options.join?.maxBytes : undefined,
    );
    if (!parsed.ok) {
      const { batch, eventId, req } = parsed;
      if (req !== undefined && options.onHistoryReply !== undefined) {
        // A page that does not hold answers its request with the error; the session goes on.
        options.onHistoryReply({ req, error: { code: parsed.code, message: parsed.message } });
        return;
      }
      if (batch !== undefined && eventId !== undefined) {
        const { code, message } = parsed;
        return refuseEvent(batch, { code, message, eventId, reason: batch.reason });
      }
      return fail(parsed.code, parsed.message, parsed.eventId);
    }
    const m = parsed.message;
    // Protocol 10: nothing of the peer comes between a snapshot's parts.
    await snapshotParts.interrupt(m.type);
    switch (m.type) {
      case 'hello':
        return onHello(m, text);
      case 'pull':
        return onPull(m, text);
      case 'events':
        return onEvents(m, parsed.bytes);
      case 'ack':
        return sender.onAck(m);
      case 'error': {
        if (m.req !== undefined && m.fatal !== true && options.onHistoryReply !== undefined) {
          options.onHistoryReply({ req: m.req, error: { code: m.code, message: m.message } });
          return;
        }
        const seen: SessionError = {
          code: m.code,
          message: m.message,
          fatal: m.fatal === true,
          source: 'peer',
        };
        if (m.eventId !== undefined) seen.eventId = m.eventId;
        if (m.refused !== undefined && m.eventId !== undefined && m.fatal !== true) {
          // Skip that event for this peer and resend the rest (protocol 6); an event refused for
          // the clock is held back instead (protocol 7).
          const reason = m.refused.reason;
          if (reason.kind === 'clock-ahead') {
            seen.heldForClock = { wall: reason.wall, limit: reason.limit };
          } else seen.skipped = reason;
          if (!sender.onRefused(m.refused.from, m.eventId, reason)) return;
          options.onError?.(seen);
          return;
        }
        options.onError?.(seen);
        if (m.fatal === true) {
          close();
          options.closeConnection?.(1000, `peer error ${m.code}`.slice(0, 120));
        }
        return;
      }
      case 'rejected':
        // Only the authority of a strict stream rejects (protocol 8): a peer replica that says
        // so would make this side take its own events out.
        if (peer?.server !== true || options.isServer === true) {
          return fail('PROTOCOL', 'rejected events from a peer that is not a sync server');
        }
        await options.onRejected?.(m.events);
        report();
        return;
      case 'ping':
        send({ type: 'pong', time: options.now() });
        return;
      case 'pong':
        return sender.onPong(m.time);
      case 'history':
        if (peer === undefined) return fail('PROTOCOL', 'history before hello');
        history.handle(m, limitsOfPeer(peer));
        return;
      case 'history-page':
        if (options.onHistoryReply === undefined) {
          return fail('PROTOCOL', 'a history page this side did not ask for');
        }
        options.onHistoryReply({ req: m.req, page: m });
        return;
      case 'snapshot':
        return onSnapshot(m);
      case 'snapshot-part':
        return onSnapshotPart(m);
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  };

  const start = async (): Promise<void> => {
    const [epoch, head, seq] = await Promise.all([
      log.epoch(),
      log.headPos(),
      log.announcedSeq?.() ?? log.ownSeq(),
    ]);
    sender.noteHead(head);
    const hello: HelloMessage = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      replica: log.replicaId,
      epoch,
      head,
      seq,
      time: Math.floor(options.now()),
      limits,
      maxClockAheadMs: aheadMs,
    };
    if (options.isServer === true) hello.server = true;
    if (history.serves) hello.history = true;
    if (options.snapshotFor !== undefined) hello.snapshots = true;
    if (options.join !== undefined) {
      hello.join = {
        projections: [...options.join.projections],
        maxBytes: options.join.maxBytes,
        parts: true,
      };
    }
    send(hello);
  };

  let chain: Promise<void> = start().catch((error: unknown) => storageFailure(error));
  const started = chain;

  return {
    started,
    receive(text: string): Promise<void> {
      chain = chain.then(() =>
        handle(text).catch((error: unknown) => {
          fail('INTERNAL', error instanceof Error ? error.message : String(error));
        }),
      );
      return chain;
    },
    close,
    stats,
    poke: () => sender.pump(),
    requestHistory(request: HistoryMessage): boolean {
      if (closed) return false;
      send(request);
      return !closed;
    },
  };
}
