/**
 * The `$key` of each replica a session's batches carry events of (EventsMessage.keys,
 * core/integrity.ts), so that a receiver verifies a replica whose first event it never got.
 *
 * Invariants:
 * 1. Each replica's key is read once per session (a cache per sender), and only for a log with
 *    integrity; a replica whose key this side does not hold is named without one.
 */

import type { SyncLog } from './log.ts';

export class BatchKeys {
  private readonly texts = new Map<string, string>();
  private readonly log: SyncLog;

  constructor(log: SyncLog) {
    this.log = log;
  }

  /** Reads the keys of the batches' replicas this session has not read yet (invariant 1). */
  async learn(batches: readonly { replicas: ReadonlySet<string> }[]): Promise<void> {
    const integrity = this.log.integrity;
    if (integrity === undefined) return;
    const wanted = new Set<string>();
    for (const b of batches) for (const r of b.replicas) if (!this.texts.has(r)) wanted.add(r);
    await Promise.all(
      [...wanted].map(async (replica) => {
        const key = await integrity.keyOf(replica);
        if (key !== undefined) this.texts.set(replica, key);
      }),
    );
  }

  /** The known keys of `replicas`, or undefined when none is known. */
  of(replicas: ReadonlySet<string>): { [replica: string]: string } | undefined {
    let out: { [replica: string]: string } | undefined;
    for (const replica of replicas) {
      const key = this.texts.get(replica);
      if (key === undefined) continue;
      out ??= {};
      out[replica] = key;
    }
    return out;
  }
}
