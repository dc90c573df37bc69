/**
 * The SyncLog of a client store, over the StoreInternals seam: what a sync session replicates.
 *
 * Invariants:
 * 1. Remote events go through internals.ingest, so the store's subscribers and projections see
 *    synced events exactly like local ones (durable first).
 * 2. Checkpoints live in the log's meta under `sync.checkpoint.<peer replica>`; a stored value of
 *    the wrong shape reads as "no checkpoint" (a full, deduplicated resend), never as a position.
 * 3. ownSeq() is exact: it is the highest seq of this replica's events in the log. An own event
 *    that lost to another copy (core/copies.ts) left the log: its seq is skipped (the seq counter
 *    itself never goes back), so `pending` never waits for an ack that cannot come.
 * 4. The seq announced in hello is the highest own seq some peer acknowledged (at most ownSeq):
 *    the peer then sends back any own event above it. That costs a resend of the own events
 *    in flight when a connection dropped (deduplicated), and lets a replica restored from a
 *    backup receive the originals of the seqs it reused instead of being skipped for ever.
 */
import type { JsonValue, StoredEventRecord } from '../core/events.ts';
import { FORGONE_SEQS_META_KEY, type StoreInternals } from '../store/internal.ts';
import { ChainWatch } from './chain-watch.ts';
import type { SyncIngestOptions, SyncIngestResult, SyncLog } from './log.ts';
import type { Checkpoint } from './protocol.ts';
import { ACKED_META_KEY } from './sync-meta.ts';

export const CHECKPOINT_META_PREFIX = 'sync.checkpoint.';
/** The `$key` learned for a replica (core/integrity.ts), under this prefix and its id. */
export const REPLICA_KEY_META_PREFIX = 'sync.key.';

function toCheckpoint(value: JsonValue | undefined): Checkpoint | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { epoch, pos, id } = value;
  if (typeof epoch !== 'string' || typeof pos !== 'number' || !Number.isSafeInteger(pos)) {
    return undefined;
  }
  if (pos < 0 || (id !== undefined && typeof id !== 'string')) return undefined;
  const checkpoint: Checkpoint = { epoch, pos };
  if (typeof id === 'string') checkpoint.id = id;
  return checkpoint;
}

export function storeSyncLog(internals: StoreInternals): SyncLog & { chain: ChainWatch } {
  const log = internals.log;
  const chain = new ChainWatch(log, () => internals.now());
  return {
    chain,
    // A getter: the id changes when a restored backup is detected (core/append.ts invariant 8).
    get replicaId() {
      return internals.replicaId;
    },
    async epoch() {
      return log.epoch;
    },
    headPos() {
      return log.headPos();
    },
    // The seq counter lives with the log and moves in the write transaction (invariant 3).
    async ownSeq() {
      const [seq, held] = await Promise.all([log.ownSeq(), log.getMeta(FORGONE_SEQS_META_KEY)]);
      if (!Array.isArray(held) || held.length === 0) return seq;
      const forgone = new Set(held);
      let top = seq;
      while (top > 0 && forgone.has(top)) top -= 1;
      return top;
    },
    // Invariant 4: only what a peer acknowledged, so a restored replica hears of the world's
    // copies of its reused seqs.
    async announcedSeq() {
      const [own, acked] = await Promise.all([this.ownSeq(), log.getMeta(ACKED_META_KEY)]);
      let best = 0;
      if (typeof acked === 'object' && acked !== null && !Array.isArray(acked)) {
        for (const mark of Object.values(acked)) {
          const seq =
            typeof mark === 'object' && mark !== null && !Array.isArray(mark) ? mark.seq : 0;
          if (typeof seq === 'number' && seq > best) best = seq;
        }
      }
      return Math.min(own, best);
    },
    // Own events are signed right before they leave (store/signing.ts invariant 1). The page is
    // read again after a signing pass: WebCrypto awaits, and meanwhile the log may have moved
    // (an authority's rejection took an own event out, which must not be sent to a peer).
    // Appends made meanwhile are in the new read: the page ends before the first of them still
    // unsigned (signed at the next read), so that no own event ever leaves unsigned.
    async readByPos(afterPos, limit) {
      let records = await log.readByPos(afterPos, limit);
      const signer = internals.signer;
      if (signer === undefined) return records;
      for (let round = 0; signer.needsSigning(records) && round < 3; round++) {
        await signer.signPage(records);
        records = await log.readByPos(afterPos, limit);
      }
      const cut = signer.firstUnsigned(records);
      return cut < 0 ? records : records.slice(0, cut);
    },
    async trimmedPos() {
      return (await log.trimmedPos?.()) ?? 0;
    },
    async idAtPos(pos) {
      if (pos < 1) return undefined;
      const [record] = await log.readByPos(pos - 1, 1);
      return record?.pos === pos ? record.event.id : undefined;
    },
    async ingest(
      events: StoredEventRecord[],
      options?: SyncIngestOptions,
    ): Promise<SyncIngestResult> {
      const result = await internals.ingest(events, options);
      const { written, skewed, lost, lostTrimmed } = result;
      return { written, skewed, lost, ...(lostTrimmed !== undefined ? { lostTrimmed } : {}) };
    },
    async getCheckpoint(peer) {
      return toCheckpoint(await log.getMeta(CHECKPOINT_META_PREFIX + peer));
    },
    async setCheckpoint(peer, checkpoint) {
      const value: { [key: string]: JsonValue } = { epoch: checkpoint.epoch, pos: checkpoint.pos };
      if (checkpoint.id !== undefined) value.id = checkpoint.id;
      await log.setMeta(CHECKPOINT_META_PREFIX + peer, value);
    },
    onAppend(listener) {
      return internals.onChange(listener);
    },
    integrity: {
      requireSignatures: internals.requireSignatures ?? false,
      async eventAt(replica, seq) {
        const [record] = await log.eventsAtSlots([{ replica, seq }]);
        return record?.event;
      },
      async trimmedAt(replica, seq) {
        const [trimmed] = (await log.trimmedSlots?.([{ replica, seq }])) ?? [];
        return trimmed === true;
      },
      async keyOf(replica) {
        const own = internals.signer?.keyTextOf(replica);
        if (own !== undefined) return own;
        const key = await log.getMeta(REPLICA_KEY_META_PREFIX + replica);
        return typeof key === 'string' ? key : undefined;
      },
      noteLinks: (events, links, peer) => chain.note(events, links, peer),
      noteRefused: (tampering, peer) => chain.refused(tampering.event, tampering.reason, peer),
      async rememberKeys(keys) {
        // Durable before the batch that brought them is stored (session-receiver.ts invariant 5).
        await Promise.all(
          [...keys].map(([replica, key]) => log.setMeta(REPLICA_KEY_META_PREFIX + replica, key)),
        );
      },
    },
  };
}
