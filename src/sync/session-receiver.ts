/**
 * The receiving half of a peer session (session.ts): takes the peer's batches of events in
 * order, refuses what it cannot store (the whole batch, or one event of it), ingests durably,
 * saves the checkpoint, then acknowledges (after telling the peer which of its events strict
 * streams rejected, protocol 8).
 *
 *   events → refuse gaps, ack duplicates again, validate, ingest durably, save the checkpoint,
 *            then ack
 *
 * Invariants (protocol.ts numbers in brackets):
 * 1. An ack is sent only after ingest resolved and the checkpoint was saved [2]; a checkpoint is
 *    saved only for a batch whose events are durable, so it never passes a non-durable event.
 * 2. A batch that does not start at the checkpoint is refused with GAP and ends the session [3]:
 *    later batches would be gaps too, and a reconnect resumes from the durable checkpoint.
 * 3. A refused batch (validation, validateIncoming, storage) stores nothing and ends the session:
 *    skipping it would break invariant 2. Except a refusal of one event for a reason tied to it,
 *    to a peer that announced limits [6]: the batch is not stored nor acknowledged, the peer is
 *    told which event, and batches are dropped until the peer resends from the same position.
 * 4. An event stamped beyond this side's clock + maxClockAheadMs is refused alone [6, 7] with
 *    CLOCK_SKEW (reason `clock-ahead`), like an event too large: nothing of its batch is stored
 *    and the peer resends without it, holding it back (core/clock-skew.ts invariant 1). A client
 *    does not check what a server sends: the server checked it against its own clock, which is
 *    the authority clients correct theirs to.
 * 5. Tamper evidence (core/integrity.ts): with log.integrity, a batch is verified before any
 *    other check that writes and before it is stored; an event whose signature or chain does
 *    not hold is refused alone with TAMPERED (reason `tampered`), like an event too large: the
 *    peer resends the batch without it and without its replica's later events, and the honest
 *    rest is stored. A client verifies what a server sends too: the server is not trusted.
 */

import { acceptLimit, DEFAULT_MAX_CLOCK_AHEAD_MS, isBeyond } from '../core/clock-skew.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { TAMPER_TEXT, type Tampering, verifyBatch } from '../core/integrity.ts';
import { utf8Length } from '../core/json.ts';
import type { StrictRejection } from '../core/strict.ts';
import {
  afterBatch,
  classifyBatch,
  decideEventRefusal,
  leavesOut,
  type ReceiveState,
} from '../core/sync.ts';
import { lostCopyReport } from './lost-copies.ts';
import {
  type AckMessage,
  type ErrorMessage,
  type EventsMessage,
  type HelloMessage,
  limitsOfPeer,
  type RefusalReason,
  type SyncErrorCode,
  type SyncMessage,
} from './protocol.ts';
import type { SessionSender } from './session-sender.ts';
import type { PeerSessionOptions } from './session-types.ts';

/** Rejections in one `rejected` message at most (also kept within the peer's message bytes). */
const REJECTED_AT_ONCE = 200;

/** What the receiver uses of its session. */
export interface ReceiverHost {
  send(message: SyncMessage): void;
  /** Ends the session with a fatal error sent to the peer (invariants 2, 3). */
  fail(code: SyncErrorCode, message: string, eventId?: string): void;
  storageFailure(error: unknown): void;
  report(): void;
  closed(): boolean;
  /** A peer that announced limits understands a per-event refusal and resends (protocol 6). */
  peerResends(): boolean;
}

/**
 * The receive-side state of one session. The session reads the public counters for its stats;
 * only the receiver writes them.
 */
export class SessionReceiver {
  /** The peer sent its last batch up to its head (caughtUp). */
  caughtUp = false;
  eventsReceived = 0;
  private recv: ReceiveState = { pos: 0, started: false };
  private readonly aheadMs: number;
  private readonly options: PeerSessionOptions;
  private readonly sender: SessionSender;
  private readonly host: ReceiverHost;

  constructor(options: PeerSessionOptions, sender: SessionSender, host: ReceiverHost) {
    this.options = options;
    this.sender = sender;
    this.host = host;
    this.aheadMs = options.maxClockAheadMs ?? DEFAULT_MAX_CLOCK_AHEAD_MS;
  }

  /** How far this side holds the peer's log (the checkpoint, as batches are taken in). */
  get pos(): number {
    return this.recv.pos;
  }

  /** The pull went out from `pos`: the first batch must start there (invariant 2). */
  startAt(pos: number): void {
    this.recv = { pos, started: false };
  }

  /**
   * Refuses one event of the batch (from, to] (invariant 3, protocol 6): fatal to a peer that
   * did not announce limits (it would not understand), else the batch waits for a resend.
   */
  refuseEvent(
    batch: { from: number; to: number; impliedLinks?: boolean },
    refusal: { code: SyncErrorCode; message: string; eventId: string; reason: RefusalReason },
  ): void {
    const decision = decideEventRefusal(
      this.recv,
      batch,
      refusal.eventId,
      this.host.peerResends(),
      refusal.reason.kind === 'unproven',
    );
    switch (decision.kind) {
      case 'fatal':
        this.host.fail(refusal.code, refusal.message, refusal.eventId);
        return;
      case 'gap':
        this.host.fail(
          'GAP',
          `batch starts at ${batch.from}, this side holds up to ${decision.expected}`,
        );
        return;
      case 'drop':
        return;
      case 'ack':
        this.recv = decision.state;
        this.host.send({ type: 'ack', to: this.recv.pos });
        return;
      case 'refuse':
        this.recv = decision.state;
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
    this.host.send(error);
    // Unproven is no fault yet (protocol 13): the resend's verdict is what gets reported.
    if (refusal.reason.kind === 'unproven') return;
    this.options.onError?.({
      code: refusal.code,
      message: refusal.message,
      fatal: false,
      source: 'local',
      eventId: refusal.eventId,
    });
    this.host.report();
  }

  /** A batch of events, from a peer this side pulled (`peer` said hello). */
  async onEvents(
    m: EventsMessage & { events: StoredEventRecord[] },
    messageBytes: number,
    peer: HelloMessage,
  ): Promise<void> {
    const decision = classifyBatch(this.recv, m);
    switch (decision.kind) {
      case 'gap':
        return this.host.fail(
          'GAP',
          `batch starts at ${m.from}, this side holds up to ${decision.expected}`,
        );
      case 'discard':
        return;
      case 'duplicate':
        this.recv = afterBatch(this.recv, decision);
        this.host.send({ type: 'ack', to: this.recv.pos });
        break;
      case 'apply': {
        const incoming = m.events;
        // Invariant 4 (clock): refused alone, like a too-large event; a client takes what a server
        // sends (the server checked it against its own clock, the authority).
        if (peer.server !== true || this.options.isServer === true) {
          const limit = acceptLimit(this.options.now(), this.aheadMs);
          const ahead = incoming.find((e) => isBeyond(e, limit));
          if (ahead !== undefined) return this.refuseEvent(m, this.clockRefusal(ahead));
        }
        // Invariant 5: verified before anything (an ownership claim too) is taken from it.
        const integrity = this.options.log.integrity;
        if (integrity !== undefined && incoming.length > 0) {
          const verdict = await verifyBatch(incoming, integrity, {
            requireSignatures: integrity.requireSignatures,
            ...(m.keys === undefined ? {} : { keys: m.keys }),
            impliedTrees: leavesOut(m),
          });
          if (this.host.closed()) return;
          if (!verdict.ok) {
            // Protocol 13: an implied batch is asked for again with every hash, whose verdict names
            // what was wrong; nothing is blamed on what a left-out hash hid.
            if (leavesOut(m)) return this.refuseEvent(m, this.unprovenRefusal(verdict));
            void integrity.noteRefused?.(verdict.tampering, peer.replica).catch(() => {});
            return this.refuseEvent(m, this.tamperRefusal(verdict.tampering));
          }
          if (verdict.keys.size > 0) await integrity.rememberKeys(verdict.keys);
          await integrity.noteLinks?.(incoming, verdict.links, peer.replica);
          if (this.host.closed()) return;
        }
        const refusal = await this.options.validateIncoming?.(incoming, peer, messageBytes);
        if (this.host.closed()) return;
        if (refusal !== undefined) {
          const { eventId, reason } = refusal;
          if (eventId === undefined || reason === undefined) {
            return this.host.fail(refusal.code, refusal.message);
          }
          return this.refuseEvent(m, {
            code: refusal.code,
            message: refusal.message,
            eventId,
            reason,
          });
        }
        this.sender.pausedForIngest = true;
        let rejected: StrictRejection[] = [];
        try {
          if (incoming.length > 0) {
            const vouchedByServer = peer.server === true && this.options.isServer !== true;
            const result = await this.options.log.ingest(
              incoming,
              vouchedByServer ? { vouchedByServer } : {},
            );
            this.eventsReceived += result.written.length;
            rejected = result.rejected ?? [];
            this.sender.noteIngested(result.written);
            const lost = lostCopyReport(
              result.lost ?? [],
              this.options.log.replicaId,
              result.lostTrimmed,
            );
            if (lost !== undefined) this.options.onError?.(lost);
            if (result.skewed) {
              this.options.onError?.({
                code: 'CLOCK_SKEW',
                message: 'received events stamped more than maxClockDrift ahead of this clock',
                fatal: false,
                source: 'local',
              });
            }
          }
          if (this.host.closed()) return;
          const checkpoint = {
            epoch: peer.epoch,
            pos: decision.to,
            ...(m.toId ? { id: m.toId } : {}),
          };
          await this.options.log.setCheckpoint(peer.replica, checkpoint);
        } catch (error) {
          return this.host.storageFailure(error);
        } finally {
          this.sender.pausedForIngest = false;
        }
        if (this.host.closed()) return;
        this.recv = afterBatch(this.recv, decision);
        // Before the ack that covers them (protocol 8).
        this.sendRejected(rejected, peer);
        const ack: AckMessage = { type: 'ack', to: this.recv.pos };
        this.host.send(ack);
        this.sender.pump();
        break;
      }
      default: {
        const never: never = decision;
        throw new Error(`unknown batch decision ${JSON.stringify(never)}`);
      }
    }
    if (m.caughtUp === true) {
      this.caughtUp = true;
      this.options.onCaughtUp?.();
    }
    this.host.report();
  }

  /** Protocol 13: the refusal of an implied batch that did not verify (nothing is blamed yet). */
  private unprovenRefusal({ tampering: { event } }: { tampering: Tampering }) {
    return {
      code: 'TAMPERED' as const,
      message: `a batch with implied links did not verify at event ${event.id}: asked again with every hash`,
      eventId: event.id,
      reason: { kind: 'unproven' as const },
    };
  }

  /** Invariant 5: the refusal of a tampered event. */
  private tamperRefusal({ event, reason }: Tampering) {
    return {
      code: 'TAMPERED' as const,
      message: `event ${event.id} (replica ${event.replica}, seq ${event.seq}) was refused: ${TAMPER_TEXT[reason]}`,
      eventId: event.id,
      reason: { kind: 'tampered' as const, replica: event.replica, seq: event.seq, why: reason },
    };
  }

  /** Why `event` is refused for the clock (invariant 4, core/clock-skew.ts invariant 1). */
  private clockRefusal(event: { id: string; time: number }) {
    const limit = Math.floor(this.options.now()) + this.aheadMs;
    const ahead = Math.round((event.time - this.options.now()) / 1000);
    return {
      code: 'CLOCK_SKEW' as const,
      message: `event ${event.id} is stamped ${ahead} s ahead of this clock (tolerance ${Math.round(this.aheadMs / 1000)} s): not stored`,
      eventId: event.id,
      reason: { kind: 'clock-ahead' as const, wall: event.time, limit },
    };
  }

  /**
   * Tells the peer which of its events strict streams rejected (protocol 8), in messages of at
   * most REJECTED_AT_ONCE, and never more than the peer takes in a batch (it refuses a longer
   * list with LIMIT_EXCEEDED, as it would a batch).
   */
  sendRejected(events: readonly StrictRejection[], peer: HelloMessage | undefined): void {
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
        this.host.send({ type: 'rejected', events: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(event);
      bytes += size;
    }
    this.host.send({ type: 'rejected', events: chunk });
  }
}
