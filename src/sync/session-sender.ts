/**
 * The sending half of a peer session (session.ts): answers the peer's pull, streams this log to
 * it in batches within the flow window, tails the log live, and frees window slots on acks.
 *
 *   pull  →  decide where to start (resume or restart from 0), stream batches of (from, to]
 *            within the flow window, then tail the log live (log.onAppend)
 *   ack   →  free window slots, send more
 *
 * Invariants (5 and 7 are session.ts's, which the tests cite; 8 to 11 are this file's own;
 * protocol.ts's numbers in brackets):
 * 5. Records the peer holds are not sent back: its own events up to the seq in its hello, and
 *    events written here because this session received them [1]. A run of the latter at the
 *    send position is covered by an empty batch without reading the log (receivedRun).
 * 7. After stop() (the session closed) nothing more is sent.
 * 8. It keeps within the smaller of this side's limits and the peer's (protocol 5); an event the
 *    peer would refuse for its size, or that the peer refused (protocol 6), is left out for this
 *    peer and reported with its id (onError `skipped`), once per session, never silently. After
 *    a refusal for its replica (not-owner: another subject owns it, on a server), every event of
 *    that replica is left out for the peer, the refusal naming the first (its owner sends them;
 *    left-out.ts keeps what is left out). An event refused for tampering is left out alone: the replica's later events verify on
 *    their own signatures (core/integrity.ts), and the receiver reports the gap.
 * 9. Live tail is coalesced: an append starts a send only when nothing is in flight; otherwise
 *    the next ack's pump sends everything appended meanwhile (up to maxBatchEvents a message).
 *    A peer is sent one message per round trip, however fast the log grows. Catch-up (a read
 *    that finds more than one batch) still fills the whole window.
 * 10. Nothing stamped beyond the peer's horizon (core/clock-skew.ts peerHorizon: its clock from
 *    its hello, plus its tolerance) is sent: the stream waits before the first such event, so it
 *    is never handed over and stays re-stampable; it goes once re-stamped (core/restamp.ts) or
 *    once the peer's clock reaches it (a timer looks again, and pings the peer: its pong shows
 *    its clock now, which may have been set right since its hello; a side whose clock changed
 *    sends an unasked pong for the same reason). A batch up to there still says
 *    caughtUp, so the peer can go idle; this side's status keeps the events pending. Toward a
 *    server the horizon applies only after its clock refusal, until the next clock change: our
 *    clock is corrected to the server's, and its refusal corrects a jump since. A clock refusal
 *    is held this way, never left out.
 * 11. Before own events go out, the shareGuard records them as shared (durably); a re-stamp that
 *    ran since the records were read makes the pump read them again rather than send stale HLCs.
 * 12. Each batch names the `$key` of each of its replicas that this side knows (EventsMessage.keys,
 *    core/integrity.ts), read once per session (batch-keys.ts): a receiver verifies a replica
 *    whose first event it never got.
 * 13. A peer's checkpoint at a trimmed position (a partial replica's, docs/storage-growth.md)
 *    resumes there with the same epoch: its id cannot be read here, and a position at or below
 *    the trimmed ones was never rewritten (positions are append-only, and a restored copy of
 *    this database holds the same events below its own head, which bounds what it trimmed).
 *    Restarting from 0 instead re-sent the log and stopped at the trimmed tail, which it cannot
 *    cover (a batch's range needs the id at its end): the link stayed `syncing` for good.
 * 15. An event of this log's own replica id that the peer sent (a device restored from a backup
 *    gets back what its former self wrote after it; its counter moves past them: core/append.ts)
 *    counts as acknowledged once the peer's acknowledged position passes it: `ackedOwnSeq`, the
 *    highest own seq the peer holds, takes it. Counted from sent events alone, such events were
 *    pending and, in a strict stream, tentative and held back from peers for good.
 * 14. Every side leaves out the hashes of near links toward a peer that works them out
 *    (protocol.ts invariant 13); the peer's `unproven` refusal rewinds to the batch and turns
 *    that off for the rest of the session, leaving nothing out.
 * 16. The peer is caught up once a read past the last position sent finds nothing, though the
 *    head known before it lies further on: positions past the last event are holes (held copies
 *    that lost: core/copies.ts invariant 3) or trimmed (docs/storage-growth.md), and no batch can
 *    end on one (its range needs the id at its end). Waiting for the sent position to reach the
 *    head left the link `syncing` for good once retention trimmed the log's last event.
 */

import { isBeyond } from '../core/clock-skew.ts';
import type { LocalRecord } from '../core/events.ts';
import { jsonByteLength, utf8Length } from '../core/json.ts';
import { ReceivedSpans } from '../core/received-spans.ts';
import {
  classifyAck,
  classifyRefusal,
  decidePull,
  EMPTY_WINDOW,
  type FlowWindow,
  negotiateLimits,
  type PlannedBatch,
  peerHolds,
  planBatches,
  receivedRun,
  windowAllows,
  windowPush,
} from '../core/sync.ts';
import { BatchKeys } from './batch-keys.ts';
import { ClockHold } from './clock-hold.ts';
import { type DataTextOf, dataTextOf, wireSize } from './event-codec.ts';
import { LeftOut, MAX_REFUSED_PER_SESSION } from './left-out.ts';
import type { SyncIngestResult } from './log.ts';
import {
  type AckMessage,
  type EventsMessage,
  type HelloMessage,
  limitsOfPeer,
  type PullMessage,
  type RefusalReason,
  type SyncErrorCode,
  type SyncLimits,
  type SyncMessage,
} from './protocol.ts';
import type { PeerSessionOptions } from './session-types.ts';

/** What the sender uses of its session: the connection, the failure path, the progress report. */
export interface SenderHost {
  send(message: SyncMessage, dataText?: DataTextOf): void;
  /** Ends the session with a fatal error sent to the peer. */
  fail(code: SyncErrorCode, message: string): void;
  storageFailure(error: unknown): void;
  report(): void;
}

/**
 * The send-side state of one session and the pump that advances it. The session reads the
 * public counters for its stats; only the sender writes them.
 */
export class SessionSender {
  /** The peer pulled: sending has begun (a peer that does not pull is never sent anything). */
  outbound = false;
  startPos = 0;
  sentPos = 0;
  ackedPos = 0;
  ackedOwnSeq = 0;
  /** Own-id events received from the peer, not yet under its acknowledged position (15). */
  private receivedOwn: { pos: number; seq: number }[] = [];
  peerRestarted = false;
  window: FlowWindow = EMPTY_WINDOW;
  eventsSent = 0;
  /**
   * Set by the session while it stores a received batch: its records are appended to this log
   * before `noteIngested` marks them, so the pump waits rather than read and echo them (5).
   */
  pausedForIngest = false;
  /** The event the stream waits before (invariant 8), while it does. */
  heldForClock: string | undefined;
  /** Own seq already recorded as shared by this sender (invariant 11). */
  private sharedSeen = 0;
  private unsubscribeRestamp: (() => void) | undefined;
  private unsubscribeEarlyClock: (() => void) | undefined;
  /** Our clock changed after our hello went out and before we started sending. */
  private clockMovedSinceHello = false;
  /** The peer's clock as this side sees it (clock-hold.ts). */
  private readonly clock: ClockHold;

  private caughtUpSent = false;
  /** The highest head of this log seen so far (noteHead): it only moves forward. */
  private knownHead = 0;
  /**
   * Invariant 16: the last read that found nothing past `from`, with the head known before it
   * was made: the positions between hold nothing this peer can be sent.
   */
  private emptyRead = { from: -1, head: 0 };
  private stopped = false;
  private pumping = false;
  private pumpAgain = false;
  private peer: HelloMessage | undefined;
  /** The peer could not verify an implied batch: every hash goes from now on (14). */
  private wholeHashes = false;
  /** Positions written here by this session's ingests, with their ids: not echoed (5). */
  private readonly receivedPositions = new ReceivedSpans();
  private unsubscribe: (() => void) | undefined;
  /** This side's limits until the peer's hello; then the smaller of both (invariant 8). */
  private limits: SyncLimits;
  /** What the peer refused, or would refuse for its size: left out (invariant 8, left-out.ts). */
  private readonly leftOut = new LeftOut();
  /** The `$key` of each replica this session sent events of, once read (invariant 12). */
  private readonly keys: BatchKeys;

  private readonly options: PeerSessionOptions;
  private readonly host: SenderHost;

  constructor(options: PeerSessionOptions, limits: SyncLimits, host: SenderHost) {
    this.options = options;
    this.host = host;
    this.limits = limits;
    this.keys = new BatchKeys(options.log);
    // Invariant 10: measured against the raw clock (clock-hold.ts invariant 4).
    const guard = options.shareGuard;
    this.clock = new ClockHold(
      guard === undefined ? () => options.now() : () => options.now() - guard.clockOffset(),
      options.schedule,
    );
    // Our hello showed our clock; a correction before we start sending (a server's hello on
    // another session) is told to the peer by a pong once we do (startSending).
    this.unsubscribeEarlyClock = options.shareGuard?.onClockChange(() => {
      this.clockMovedSinceHello = true;
    });
  }

  /** Everything up to this log's known head was sent and acknowledged. */
  peerCaughtUp(): boolean {
    const unreadable =
      this.emptyRead.from === this.sentPos && this.emptyRead.head >= this.knownHead;
    return (
      this.outbound &&
      this.caughtUpSent &&
      this.window.batches.length === 0 &&
      (this.sentPos >= this.knownHead || unreadable)
    );
  }

  /** The peer's clock, from its hello (invariant 10): `time` undefined takes it as ours. */
  setPeerClock(peer: {
    server: boolean;
    time: number | undefined;
    toleranceMs: number | undefined;
  }): void {
    this.clock.setPeer(peer);
  }

  /** A head of this log, read or reached by sending: raises knownHead. */
  noteHead(head: number): void {
    if (head > this.knownHead) this.knownHead = head;
  }

  /** Marks the records a received batch wrote here, so they are not sent back (invariant 5). */
  noteIngested(written: SyncIngestResult['written']): void {
    if (!this.outbound) return;
    const me = this.options.log.replicaId;
    for (const r of written) {
      this.receivedPositions.add(r.pos, r.event.id);
      // Invariant 15: an event of this log's own id from the peer (a restored backup's former
      // self wrote it): the peer holds it, and it counts as acknowledged with its position.
      if (r.event.replica === me) this.receivedOwn.push({ pos: r.pos, seq: r.event.seq });
    }
  }

  /** Answers the peer's (first) pull: picks the start position, then sends and tails the log. */
  async startSending(m: PullMessage, peer: HelloMessage): Promise<void> {
    const log = this.options.log;
    const [epoch, head, trimmedPos] = await Promise.all([
      log.epoch(),
      log.headPos(),
      log.trimmedPos?.() ?? 0,
    ]);
    const pos = m.checkpoint?.pos ?? 0;
    let idAtCheckpoint = pos > 0 && pos <= head ? await log.idAtPos(pos) : undefined;
    // Invariant 13: a trimmed event's id is not kept by position.
    if (idAtCheckpoint === undefined && pos > 0 && pos <= trimmedPos) {
      idAtCheckpoint = m.checkpoint?.id;
    }
    if (this.stopped) return;
    const decision = decidePull(m.checkpoint, { epoch, head, idAtCheckpoint });
    this.peer = peer;
    this.limits = negotiateLimits(this.limits, limitsOfPeer(peer));
    this.peerRestarted = decision.kind === 'restart';
    this.startPos = decision.from;
    this.sentPos = decision.from;
    this.ackedPos = decision.from;
    this.noteHead(head);
    this.outbound = true;
    // A re-stamp moves HLCs the stream may be holding before (invariant 10): read again. A
    // server's clock is ours once corrected: the hold a refusal put up goes.
    this.unsubscribeEarlyClock?.();
    this.unsubscribeEarlyClock = undefined;
    // The peer may hold events for the clock our hello showed (clock-hold.ts 3): show it now.
    if (this.clockMovedSinceHello && !this.stopped) {
      this.host.send({ type: 'pong', time: Math.floor(this.options.now()) });
    }
    this.unsubscribeRestamp = this.options.shareGuard?.onClockChange(() => {
      this.clock.clockChanged();
      // Our clock may have moved since our hello (a server's correction): the peer may be
      // holding events for the clock it showed. An unasked pong shows it now (clock-hold.ts 3).
      if (!this.stopped) this.host.send({ type: 'pong', time: Math.floor(this.options.now()) });
      this.pump();
    });
    this.unsubscribe = log.onAppend((newHead) => {
      this.noteHead(newHead);
      // Coalescing (9): while a batch is unacknowledged, appends wait for its ack, whose pump
      // sends all that accumulated in one message rather than one message per append.
      if (this.window.batches.length === 0) this.pump();
    });
    this.host.report();
    this.pump();
  }

  onAck(m: AckMessage): void {
    const decision = classifyAck(
      this.window,
      { ackedPos: this.ackedPos, sentPos: this.sentPos },
      m.to,
    );
    switch (decision.kind) {
      case 'invalid':
        this.host.fail('PROTOCOL', `ack at ${m.to}, past the ${decision.sentPos} positions sent`);
        return;
      case 'duplicate':
        return;
      case 'advance':
        this.window = decision.window;
        this.ackedPos = decision.ackedPos;
        this.receivedPositions.dropThrough(decision.ackedPos);
        if (decision.ownSeq > this.ackedOwnSeq) this.ackedOwnSeq = decision.ownSeq;
        if (this.receivedOwn.length > 0) {
          for (const r of this.receivedOwn) {
            if (r.pos <= decision.ackedPos && r.seq > this.ackedOwnSeq) this.ackedOwnSeq = r.seq;
          }
          this.receivedOwn = this.receivedOwn.filter((r) => r.pos > decision.ackedPos);
        }
        // Acknowledged own events can no longer be refused: nothing in flight, nothing to name.
        if (decision.window.batches.length === 0) this.clock.noteAllAcked();
        this.host.report();
        this.pump();
        return;
      default: {
        const never: never = decision;
        throw new Error(`unknown ack decision ${JSON.stringify(never)}`);
      }
    }
  }

  /** The peer's answer to the ping of a held stream: its clock now (invariant 10). */
  onPong(time: number): void {
    this.clock.peerTime(time);
    if (this.heldForClock !== undefined) this.pump();
  }

  /**
   * The peer refused event `eventId` of the batch from `from` (protocol 6): leave it out for this
   * peer and send again from there. False when there is nothing to report (a repeat) or the
   * refusal is invalid (the session fails with PROTOCOL).
   */
  onRefused(from: number, eventId: string, reason?: RefusalReason): boolean {
    const clock = reason?.kind === 'clock-ahead' ? reason : undefined;
    const unproven = reason?.kind === 'unproven';
    // A clock refusal may come again for the resent batch once the event is re-stamped or the
    // peer's clock moved; only a refusal of a batch no longer in flight is a repeated frame.
    const inFlight = this.window.batches.some(
      (b) => b.from === from && b.to > from && b.events?.some((e) => e.id === eventId),
    );
    const repeated =
      clock === undefined && !unproven ? this.leftOut.refusedBefore(eventId) : !inFlight;
    const decision = classifyRefusal(this.window, from, eventId, repeated);
    switch (decision.kind) {
      case 'duplicate':
        return false;
      case 'invalid':
        this.host.fail('PROTOCOL', `refusal of event ${eventId}: ${decision.reason}`);
        return false;
      case 'rewind':
        if (this.leftOut.full) {
          this.host.fail(
            'PROTOCOL',
            `the peer refused more than ${MAX_REFUSED_PER_SESSION} events`,
          );
          return false;
        }
        if (unproven) {
          // Invariant 14: nothing left out; the batch goes again with every hash.
          if (!this.implies()) {
            this.host.fail(
              'PROTOCOL',
              `unproven refusal of event ${eventId}: nothing was left out`,
            );
            return false;
          }
          this.wholeHashes = true;
        } else if (clock === undefined) {
          this.leftOut.refused(eventId, reason);
        } else {
          // Held, not left out (invariant 10): the peer's horizon is at most what it accepted.
          const seq = this.clock.refused(eventId, clock.limit);
          // The peer holds none of our events from this one on (clock-keeper.ts invariant 2).
          if (seq !== undefined && this.peer !== undefined) {
            this.sharedSeen = Math.min(this.sharedSeen, seq - 1);
            void this.options.shareGuard?.refusedForClock(this.peer.replica, seq).catch(() => {});
          }
        }
        this.window = decision.window;
        this.sentPos = decision.sentPos;
        // The caught-up mark may have gone out in a batch the peer dropped: mark again.
        this.caughtUpSent = false;
        this.host.report();
        this.pump();
        return true;
      default: {
        const never: never = decision;
        throw new Error(`unknown refusal decision ${JSON.stringify(never)}`);
      }
    }
  }

  /** Sends what the window allows; one pump at a time, re-run when asked during a run. */
  pump(): void {
    if (this.stopped || !this.outbound) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          await this.pumpOnce();
        } while (this.pumpAgain && !this.stopped);
      } catch (error) {
        this.host.storageFailure(error);
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** Called by the session's close(): stops sending and tailing (invariant 7). */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.unsubscribeRestamp?.();
    this.unsubscribeRestamp = undefined;
    this.unsubscribeEarlyClock?.();
    this.unsubscribeEarlyClock = undefined;
    this.clock.stop();
    this.receivedPositions.clear();
  }

  /** Invariant 14: whether this side leaves the hashes of near links out toward the peer. */
  private implies(): boolean {
    return this.peer?.impliedLinks === true && !this.wholeHashes;
  }

  private windowAllows(): boolean {
    return windowAllows(this.window, this.limits, this.options.bufferedBytes?.() ?? 0);
  }

  /** Sends one planned batch and moves the send position and the window past it. */
  private sendBatch(message: EventsMessage, batch: PlannedBatch, dataText?: DataTextOf): void {
    this.host.send(message, dataText);
    for (const left of batch.leftOut) this.leftOut.report(left, this.options.onError);
    this.window = windowPush(this.window, {
      to: batch.to,
      bytes: batch.bytes,
      ownSeq: batch.ownSeq,
      from: batch.from,
      events: batch.events,
    });
    this.sentPos = batch.to;
    this.eventsSent += batch.events.length;
    this.clock.noteSent(batch.events, this.options.log.replicaId);
  }

  private async pumpOnce(): Promise<void> {
    const { log } = this.options;
    const limits = this.limits;
    while (!this.stopped && this.outbound && !this.pausedForIngest) {
      if (!this.windowAllows()) return;
      const from = this.sentPos;
      const run = receivedRun(from, this.receivedPositions, limits.maxBatchEvents);
      if (run !== undefined) {
        this.sendBatch({ type: 'events', from, to: run.to, toId: run.toId, events: [] }, run);
        // Once caughtUp went out (a read reached the head after onAppend was subscribed), every
        // later append raises knownHead and pumps, again after this run if it comes during it
        // (pumpAgain): nothing lies past a run that reaches knownHead, and a catch-up's every
        // ingest would otherwise read the log only to find it empty.
        if (this.caughtUpSent && run.to >= this.knownHead) return;
        continue;
      }
      const generation = this.options.shareGuard?.generation() ?? 0;
      const headBeforeRead = this.knownHead;
      const read = await log.readByPos(from, limits.maxBatchEvents);
      // A batch began storing while the read was out: what it found may be that batch's, not yet
      // marked as received. The ingest pumps again once they are (invariant 5).
      if (this.stopped || this.sentPos !== from || this.pausedForIngest) return;
      const peerHello = this.peer!;
      const received = this.receivedPositions;
      const leftOut = this.leftOut;
      const skip = (r: LocalRecord) =>
        received.has(r.pos) || peerHolds(r.event, peerHello) || leftOut.excludes(r.event);
      // Toward a server, only after a refusal (invariant 10): our clock may have jumped since its
      // hello, and the server's refusal corrects it, where a guess from our clock would not.
      const horizon = this.clock.horizon();
      const clockCut =
        horizon === undefined ? -1 : read.findIndex((r) => !skip(r) && isBeyond(r.event, horizon));
      // A tentative own event of a strict stream waits for the authority (strict-sync.ts 3).
      const holdBack = this.options.holdBack;
      const strictCut =
        holdBack === undefined
          ? -1
          : read.findIndex(
              (r, i) => (clockCut < 0 || i < clockCut) && holdBack(r.event, peerHello),
            );
      const holdAt = strictCut >= 0 ? strictCut : clockCut < 0 ? read.length : clockCut;
      const records = read.slice(0, holdAt);
      const cut = strictCut >= 0 ? -1 : clockCut;
      const held = cut < 0 ? undefined : read[cut]!.event.id;
      if (held !== this.heldForClock) {
        this.heldForClock = held;
        this.host.report();
      }
      // Nothing held: no look is due (an armed one would ping, and keep timers, for nothing).
      if (held === undefined) this.clock.noWake();
      else if (horizon !== undefined) {
        // The peer's clock may have been set right since it showed it (clock-hold.ts 3): ask.
        this.clock.wakeFor(read[cut]!.event.hlc, horizon, () => {
          if (this.stopped) return;
          this.host.send({ type: 'ping', time: Math.floor(this.options.now()) });
          this.pump();
        });
      }
      if (read.length === 0) this.emptyRead = { from, head: headBeforeRead };
      if (records.length === 0) {
        if (!this.caughtUpSent) {
          this.caughtUpSent = true;
          this.window = windowPush(this.window, { to: from, bytes: 0, ownSeq: 0 });
          this.host.send({ type: 'events', from, to: from, events: [], caughtUp: true });
          this.host.report();
        }
        return;
      }
      // Each event's data is stringified once: to size the batches and to encode them. sizeOf
      // sees each event not skipped, in order, once: unless some was left out (rare), `sized`
      // lines up with the batches' events.
      const sized: string[] = [];
      const batches = planBatches(from, records, {
        ownReplica: log.replicaId,
        limits,
        skip,
        sizeOf: (event) => {
          const text = dataTextOf(event);
          sized.push(text);
          return wireSize(event, text);
        },
        payloadOf: (event) =>
          utf8Length(sized[sized.length - 1] ?? dataTextOf(event)) +
          (event.meta === undefined ? 0 : jsonByteLength(event.meta)),
      });
      const reachesHead =
        held !== undefined || strictCut >= 0 || read.length < limits.maxBatchEvents;
      const ownSeq = Math.max(0, ...batches.map((b) => b.ownSeq));
      const guard = this.options.shareGuard;
      if (guard !== undefined && ownSeq > this.sharedSeen) {
        const shared = await guard.share(peerHello.replica, ownSeq, generation);
        if (this.stopped || this.sentPos !== from || this.pausedForIngest) return;
        // A re-stamp ran since the read: read again (invariant 11).
        if (!shared) continue;
        this.sharedSeen = ownSeq;
      }
      await this.keys.learn(batches);
      let plannedBefore = 0;
      const aligned =
        sized.length >= batches.reduce((n, b) => n + b.events.length, 0) &&
        batches.every((b) => b.leftOut.length === 0);
      for (let i = 0; i < batches.length; i++) {
        const batch = batches[i]!;
        const message: EventsMessage = {
          type: 'events',
          from: batch.from,
          to: batch.to,
          toId: batch.toId,
          events: batch.events,
        };
        const keys = this.keys.of(batch.replicas);
        if (keys !== undefined) message.keys = keys;
        if (this.implies()) message.impliedLinks = true;
        if (reachesHead && i === batches.length - 1 && !this.caughtUpSent) {
          message.caughtUp = true;
          this.caughtUpSent = true;
        }
        const offset = plannedBefore;
        plannedBefore += batch.events.length;
        this.sendBatch(message, batch, aligned ? (_, index) => sized[offset + index]! : dataTextOf);
        if (!this.windowAllows()) break;
      }
      this.noteHead(this.sentPos);
      this.host.report();
    }
  }
}
