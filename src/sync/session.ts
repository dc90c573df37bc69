/**
 * One sync session over one open connection, symmetric: the client's Syncer and the sync server
 * both run it, each over its own SyncLog. It follows sync/protocol.ts; the decisions come from
 * core/sync.ts, this file moves messages and calls the log. It is the coordinator and the
 * receiving half; the sending half (pull, the pump and its flow window, ack) is session-sender.ts,
 * the receipt of batches session-receiver.ts.
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
 * 2. An ack is sent only after ingest and the checkpoint are durable [2] (session-receiver.ts
 *    states and keeps 2, 3, 4, 8 and 9, as its invariants 1 to 5).
 * 3. A batch that does not start at the checkpoint is refused with GAP (session-receiver.ts 2).
 * 4. A refused batch stores nothing and ends the session, or, for one event, waits for the
 *    peer's resend without it (session-receiver.ts 3).
 * 5. Records the peer holds are not sent back (session-sender.ts states and keeps it).
 * 6. An exact duplicate of a hello or pull is ignored; any other repetition is a PROTOCOL error.
 * 7. After close() (or a fatal error) nothing more is sent, stored or acknowledged.
 * 8. An event stamped beyond this side's clock + tolerance is refused alone [6, 7]
 *    (session-receiver.ts 4).
 * 9. With log.integrity, a batch is verified before it is stored; a tampered event is refused
 *    alone (session-receiver.ts 5).
 * 10. Binary frames [11]: offered in hello when the owner gives sendBinary; batches and history
 *    pages go as binary frames only to a peer whose hello offered them too; a binary frame from
 *    a peer is read only where this side offered them (else PROTOCOL).
 */

import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../core/clock-skew.ts';
import { ChronicleError, SeqConflictError } from '../core/errors.ts';
import { checkpointForPull } from '../core/sync.ts';
import type { DataTextOf } from './event-codec.ts';
import { createHistoryServer } from './history-serve.ts';
import {
  closeCodeFor,
  encodeForBinaryPeer,
  encodeFrame,
  encodeMessage,
  parseMessage,
} from './messages.ts';
import {
  DEFAULT_SYNC_LIMITS,
  type HelloMessage,
  type HistoryMessage,
  limitsOfPeer,
  PROTOCOL_VERSION,
  type PullMessage,
  SYNC_LIMIT_NAMES,
  type SyncErrorCode,
  type SyncLimits,
  type SyncMessage,
} from './protocol.ts';
import { SessionJoining } from './session-joining.ts';
import { SessionReceiver } from './session-receiver.ts';
import { SessionSender } from './session-sender.ts';
import type {
  PeerSession,
  PeerSessionOptions,
  SessionError,
  SessionStats,
} from './session-types.ts';

export type {
  HistoryReply,
  PeerSession,
  PeerSessionOptions,
  SessionError,
  SessionRefusal,
  SessionStats,
} from './session-types.ts';

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

  const stats = (): SessionStats => {
    const s: SessionStats = {
      receivedPos: receiver.pos,
      startPos: sender.startPos,
      sentPos: sender.sentPos,
      ackedPos: sender.ackedPos,
      ackedOwnSeq: sender.ackedOwnSeq,
      peerRestarted: sender.peerRestarted,
      peerPulled: sender.outbound,
      inFlightBatches: sender.window.batches.length,
      inFlightBytes: sender.window.bytes,
      caughtUp: receiver.caughtUp,
      peerCaughtUp: sender.peerCaughtUp(),
      eventsReceived: receiver.eventsReceived,
      eventsSent: sender.eventsSent,
      closed,
    };
    if (joining.joined) s.joined = true;
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
    joining.cancel();
    sender.stop();
    report();
  };

  const send = (message: SyncMessage, dataText?: DataTextOf): void => {
    if (closed) return;
    // Protocol 11: a batch to a peer that reads binary frames goes as one where it carries bytes.
    const out = binaryOut()
      ? encodeForBinaryPeer(message, dataText)
      : encodeMessage(message, dataText);
    if (typeof out === 'string') {
      sendText(out);
      return;
    }
    try {
      options.sendBinary!(out);
    } catch {
      close();
    }
  };

  /** Batches go as binary frames: both hellos said so (protocol 11). */
  const binaryOut = () => options.sendBinary !== undefined && peer?.binary === true;

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

  /** A peer that announced limits understands a per-event refusal and resends (protocol 6). */
  const peerResends = () => peer?.limits !== undefined && pullSent;

  const sender = new SessionSender(options, limits, { send, fail, storageFailure, report });
  // Invariants 2, 3, 4, 8 and 9 (session-receiver.ts).
  const receiver = new SessionReceiver(options, sender, {
    send,
    fail,
    storageFailure,
    report,
    closed: () => closed,
    peerResends,
  });
  // Protocol 10 (session-joining.ts).
  const joining = new SessionJoining(options, {
    closed: () => closed,
    peer: () => peer,
    sendText,
    fail,
    queue: (fn) => {
      chain = chain.then(fn);
    },
    sendPull: (m) => sendPull(m),
  });
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
    sendFrame: (page, maxBytes) => {
      if (closed || !binaryOut()) return false;
      const frame = encodeFrame(page);
      if (frame === undefined || frame.length > maxBytes) return false;
      try {
        options.sendBinary!(frame);
      } catch {
        close();
      }
      return true;
    },
  });

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
    if (!(await joining.answer(m))) return;
    // Before pull: the peer takes its events out before it sends again (protocol 8).
    const rejections = (await options.rejectionsFor?.(m)) ?? [];
    if (closed) return;
    receiver.sendRejected(rejections, m);
    if (!pullEnabled) return;
    // Protocol 10: the pull waits for the answer to this side's join.
    if (joining.waitsForAnswer(m)) return;
    return sendPull(m);
  };

  /** The pull, from the checkpoint held for the peer (fingerprinted: protocol 4). */
  const sendPull = async (m: HelloMessage): Promise<void> => {
    const saved = await log.getCheckpoint(m.replica);
    if (closed) return;
    const checkpoint = checkpointForPull(saved, m);
    receiver.startAt(checkpoint?.pos ?? 0);
    const pull: PullMessage = { type: 'pull' };
    if (checkpoint !== undefined) pull.checkpoint = checkpoint;
    pullSent = true;
    send(pull);
    report();
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

  const handle = async (received: string | Uint8Array): Promise<void> => {
    if (closed) return;
    if (typeof received !== 'string' && options.sendBinary === undefined) {
      return fail('PROTOCOL', 'a binary frame, which this side did not offer');
    }
    const parsed = parseMessage(received, limits, joining.maxMessageBytes);
    // A binary frame is an events or history-page message (binary-frame.ts invariant 4).
    const text = typeof received === 'string' ? received : '';
    if (!parsed.ok) {
      const { batch, eventId, req } = parsed;
      if (req !== undefined && options.onHistoryReply !== undefined) {
        // A page that does not hold answers its request with the error; the session goes on.
        options.onHistoryReply({ req, error: { code: parsed.code, message: parsed.message } });
        return;
      }
      if (batch !== undefined && eventId !== undefined) {
        const { code, message } = parsed;
        return receiver.refuseEvent(batch, { code, message, eventId, reason: batch.reason });
      }
      return fail(parsed.code, parsed.message, parsed.eventId);
    }
    const m = parsed.message;
    // Protocol 10: nothing of the peer comes between a snapshot's parts.
    await joining.interrupt(m.type);
    switch (m.type) {
      case 'hello':
        return onHello(m, text);
      case 'pull':
        return onPull(m, text);
      case 'events':
        if (!pullSent || peer === undefined) return fail('PROTOCOL', 'events that were not pulled');
        return receiver.onEvents(m, parsed.bytes, peer);
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
          // Unproven: nothing is wrong yet; the batch goes again with every signature.
          if (reason.kind === 'unproven') {
            sender.onRefused(m.refused.from, m.eventId, reason);
            return;
          }
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
        return joining.onSnapshot(m);
      case 'snapshot-part':
        return joining.onSnapshotPart(m);
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
    if (options.sendBinary !== undefined) hello.binary = true;
    hello.impliedLinks = true;
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
    receive(message: string | Uint8Array): Promise<void> {
      chain = chain.then(() =>
        handle(message).catch((error: unknown) => {
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
