/**
 * A session's part in joining from a snapshot (protocol 10), both sides, as the session's state:
 * the serving side sends its answer to a peer's `join` as the transport drains; the joining side
 * holds its pull until the answer came, takes a snapshot sent in parts (snapshot-receiver.ts),
 * installs it (or not) and then pulls. The decisions are session-join.ts's.
 *
 * Invariants (session-join.ts's are kept there):
 * 1. The answer goes out before anything else of this side after hello, never more than the
 *    serving side's cap (maxSnapshotBytes) buffered at once.
 * 2. The joining side's pull goes out exactly once after its join: when the snapshot is
 *    installed, refused, fails to install, or its parts do not hold (SNAPSHOT_INVALID).
 * 3. A snapshot or part this side did not ask for is a PROTOCOL error.
 */

import type {
  HelloMessage,
  SnapshotMessage,
  SnapshotPartMessage,
  SyncErrorCode,
} from './protocol.ts';
import { limitsOfPeer } from './protocol.ts';
import { answerJoin, SNAPSHOT_PART_TIMEOUT_MS, takeSnapshot } from './session-join.ts';
import type { PeerSessionOptions } from './session-types.ts';
import { SnapshotPartsReceiver } from './snapshot-receiver.ts';

/** How often a side sending a snapshot in parts looks whether its transport has drained (ms). */
const DRAIN_POLL_MS = 5;
const defaultSchedule = (fn: () => void, ms: number): (() => void) => {
  const handle = setTimeout(fn, ms);
  return () => clearTimeout(handle);
};

/** What the join uses of its session. */
export interface JoiningHost {
  closed(): boolean;
  /** The peer's hello, once it came. */
  peer(): HelloMessage | undefined;
  sendText(text: string): void;
  fail(code: SyncErrorCode, message: string): void;
  /** Runs `fn` after what the session is handling now (in its order of messages). */
  queue(fn: () => Promise<void>): void;
  sendPull(peer: HelloMessage): Promise<void>;
}

export class SessionJoining {
  /** This side installed a server's snapshot (SessionStats.joined). */
  joined = false;
  /** This side sent join and waits for the answer before it pulls. */
  private awaiting = false;
  /** A snapshot sent in parts, while they come (snapshot-receiver.ts). */
  private readonly parts: SnapshotPartsReceiver;
  private readonly options: PeerSessionOptions;
  private readonly host: JoiningHost;

  constructor(options: PeerSessionOptions, host: JoiningHost) {
    this.options = options;
    this.host = host;
    this.parts = new SnapshotPartsReceiver({
      schedule: options.schedule ?? defaultSchedule,
      timeoutMs: options.join?.partTimeoutMs ?? SNAPSHOT_PART_TIMEOUT_MS,
      queue: (fn) => host.queue(fn),
      refused: async (error) => {
        const peer = host.peer();
        if (host.closed() || peer === undefined) return;
        options.onError?.({
          code: 'SNAPSHOT_INVALID',
          message: `the snapshot sent in parts does not hold, replaying the log: ${error instanceof Error ? error.message : String(error)}`,
          fatal: false,
          source: 'peer',
        });
        return host.sendPull(peer);
      },
      whole: (m) => this.install(m),
    });
  }

  /** The largest message this side takes now: a snapshot's while it waits for one. */
  get maxMessageBytes(): number | undefined {
    return this.awaiting ? this.options.join?.maxBytes : undefined;
  }

  /**
   * The serving side's answer to the peer's join, if it asked (invariant 1). False when the
   * session closed while it went out.
   */
  async answer(m: HelloMessage): Promise<boolean> {
    if (m.join === undefined || this.options.snapshotFor === undefined) return true;
    const cap = this.options.maxSnapshotBytes ?? Number.POSITIVE_INFINITY;
    const answer = await answerJoin(this.options.snapshotFor, m.join, {
      cap,
      peerMessageBytes: limitsOfPeer(m).maxMessageBytes,
    });
    for (const text of answer.texts) {
      // Parts go out as the transport drains: never more than `cap` buffered at once.
      await this.roomToSend(text.length, cap);
      if (this.host.closed()) return false;
      this.host.sendText(text);
    }
    return true;
  }

  /** Whether the pull waits for the answer to this side's join (invariant 2). */
  waitsForAnswer(m: HelloMessage): boolean {
    if (this.options.join === undefined || m.snapshots !== true) return false;
    this.awaiting = true;
    return true;
  }

  /** The answer to this side's join; installed (or not), then the pull goes out. */
  async onSnapshot(m: SnapshotMessage): Promise<void> {
    const join = this.options.join;
    if (!this.awaiting || this.host.peer() === undefined || join === undefined) {
      return this.host.fail('PROTOCOL', 'a snapshot this side did not ask for');
    }
    this.awaiting = false;
    if (m.parts !== undefined && m.length !== undefined) {
      const header = { parts: m.parts, length: m.length };
      return this.parts.begin(m.id === undefined ? header : { ...header, id: m.id }, join.maxBytes);
    }
    return this.install(m);
  }

  async onSnapshotPart(m: SnapshotPartMessage): Promise<void> {
    const handled = this.parts.part(m);
    if (handled === undefined) {
      return this.host.fail('PROTOCOL', 'a snapshot part this side did not ask for');
    }
    return handled;
  }

  /** Nothing of the peer comes between a snapshot's parts (snapshot-receiver.ts). */
  interrupt(type: string): Promise<void> {
    return this.parts.interrupt(type);
  }

  cancel(): void {
    this.parts.cancel();
  }

  /** Installs the snapshot (or not: replay), then the pull goes out. */
  private async install(m: SnapshotMessage): Promise<void> {
    const peer = this.host.peer();
    if (peer === undefined || this.options.join === undefined) return;
    try {
      this.joined = await takeSnapshot(this.options.join, m, peer);
    } catch (error) {
      // Nothing of it was written (adapter.ts invariant 7): replay instead.
      this.options.onError?.({
        code: 'STORAGE',
        message: `could not install the snapshot, replaying the log: ${error instanceof Error ? error.message : String(error)}`,
        fatal: false,
        source: 'local',
      });
    }
    if (this.host.closed()) return;
    return this.host.sendPull(peer);
  }

  /** Waits until `bytes` more stay within `cap` of what the transport has not written yet. */
  private async roomToSend(bytes: number, cap: number): Promise<void> {
    const buffered = this.options.bufferedBytes;
    if (buffered === undefined || !Number.isFinite(cap)) return;
    const schedule = this.options.schedule ?? defaultSchedule;
    while (!this.host.closed() && buffered() > 0 && buffered() + bytes > cap) {
      await new Promise<void>((resolve) => schedule(resolve, DRAIN_POLL_MS));
    }
  }
}
