/**
 * What a session's sender leaves out for its peer (session-sender.ts invariant 8): the events
 * the peer refused, every event of a replica it refused for its owner, and the report of each
 * event left out, for its size or a refusal.
 *
 * Invariants:
 * 1. An event the peer refused (protocol 6) is left out of every resend this session; after a
 *    refusal for its replica (not-owner), every event of that replica is.
 * 2. Each event left out is reported once a session (onError `skipped`), never silently; a
 *    refused one was reported by the refusal itself.
 * 3. At most MAX_REFUSED_PER_SESSION refusals are kept: a peer refusing more is broken, and the
 *    sender fails the session with PROTOCOL rather than keep more.
 */

import type { StoredEventRecord } from '../core/events.ts';
import type { LeftOutEvent } from '../core/sync.ts';
import type { RefusalReason } from './protocol.ts';
import type { PeerSessionOptions } from './session-types.ts';

/** How many refused ids a session remembers; a peer refusing more is broken (PROTOCOL). */
export const MAX_REFUSED_PER_SESSION = 10_000;

export class LeftOut {
  /** Events the peer refused this session: left out of every resend (invariant 1). */
  private readonly ids = new Set<string>();
  /** Replicas whose events the peer will not take from us (reason not-owner): all left out. */
  private readonly replicas = new Map<string, number>();
  /** Events left out and reported this session (each is reported once). */
  private readonly reported = new Set<string>();

  /** The peer refused this event before (a repeated frame). */
  refusedBefore(eventId: string): boolean {
    return this.ids.has(eventId);
  }

  /** No room for another refusal (invariant 3). */
  get full(): boolean {
    return this.ids.size >= MAX_REFUSED_PER_SESSION;
  }

  /** The peer refused `eventId` (not for the clock: that is held, not left out). */
  refused(eventId: string, reason: RefusalReason | undefined): void {
    this.ids.add(eventId);
    this.reported.add(eventId);
    if (reason?.kind === 'not-owner') this.replicas.set(reason.replica, 0);
  }

  /** Whether `event` is left out for the peer (invariant 1). */
  excludes(event: StoredEventRecord): boolean {
    return (
      (this.ids.size > 0 && this.ids.has(event.id)) ||
      (this.replicas.size > 0 && (this.replicas.get(event.replica) ?? Infinity) <= event.seq)
    );
  }

  /** Reports an event left out for its size, once a session (invariant 2). */
  report(left: LeftOutEvent, onError: PeerSessionOptions['onError']): void {
    const id = left.event.id;
    if (this.reported.has(id)) return;
    this.reported.add(id);
    const { bytes, limit } = left.reason;
    onError?.({
      code: 'LIMIT_EXCEEDED',
      message: `event ${id} is ${bytes} bytes, over the peer's limit of ${limit}: not sent to it`,
      fatal: false,
      source: 'local',
      eventId: id,
      skipped: left.reason,
    });
  }
}
