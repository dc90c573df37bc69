/**
 * The largest event a store appends: the smaller of its own `limits.maxEventBytes` and every
 * event limit it learnt from a peer it syncs with (the sync layer tells it, from each peer's
 * hello). An event a peer would refuse is refused at append (ValidationError, code VALIDATION,
 * nothing stored), not found out later when it cannot be sent.
 *
 * Invariants (numbered as in store.ts's list, which the tests cite):
 * 7. Learnt limits live in the log's meta under PEER_LIMITS_META_KEY ({ peer: bytes }), so they
 *    hold after a restart and while offline. Only limits below the store's own are kept: a peer
 *    announcing as much or more removes its entry (e.g. a server that raised its limit).
 * 8. A handle reads the meta once, at its first append; what it learns itself counts at once.
 *    (Another tab's handle learns it at its next open.)
 */
import type { JsonValue } from '../core/events.ts';
import type { EventLog } from '../storage/adapter.ts';

export const PEER_LIMITS_META_KEY = 'sync.peerLimits';

/** Entries kept at most: the smallest limits win (a peer id that churns cannot grow the meta). */
const MAX_ENTRIES = 64;

function parse(value: JsonValue | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [peer, bytes] of Object.entries(value)) {
    if (typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes > 0) out.set(peer, bytes);
  }
  return out;
}

export class AppendLimit {
  private learnt: Promise<Map<string, number>> | undefined;

  private readonly log: EventLog;
  /** The store's own limits.maxEventBytes. */
  private readonly own: number;

  constructor(log: EventLog, own: number) {
    this.log = log;
    this.own = own;
  }

  /** The largest data + meta an append may hold now, in UTF-8 bytes of JSON. */
  async maxEventBytes(): Promise<number> {
    const learnt = await this.load();
    let max = this.own;
    for (const bytes of learnt.values()) if (bytes < max) max = bytes;
    return max;
  }

  /** A peer's limit on the events it accepts (invariant 7). */
  async learn(peer: string, maxEventBytes: number): Promise<void> {
    const learnt = await this.load();
    const before = learnt.get(peer);
    if (maxEventBytes < this.own) learnt.set(peer, maxEventBytes);
    else learnt.delete(peer);
    if (learnt.get(peer) === before) return;
    if (learnt.size > MAX_ENTRIES) {
      const largest = [...learnt].sort((a, b) => b[1] - a[1])[0];
      if (largest !== undefined) learnt.delete(largest[0]);
    }
    const value: { [peer: string]: JsonValue } = {};
    for (const [p, bytes] of learnt) value[p] = bytes;
    await this.log.setMeta(PEER_LIMITS_META_KEY, value);
  }

  private load(): Promise<Map<string, number>> {
    this.learnt ??= this.log.getMeta(PEER_LIMITS_META_KEY).then(parse, () => new Map());
    return this.learnt;
  }
}
