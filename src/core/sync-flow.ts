/**
 * The sender's flow window of sync/protocol.ts: what is in flight, what an ack frees, and what a
 * per-event refusal rewinds. Pure, like the rest of core/sync.ts (which re-exports it); the
 * invariant numbers are that file's:
 * 4. The flow window always lets one batch through when it is empty (no deadlock on a batch
 *    bigger than the byte budget); otherwise it holds at most maxInFlightBatches batches and
 *    stops adding once maxInFlightBytes are in flight.
 * 5. An ack never removes a batch whose `to` is past the ack.
 * 7. A per-event refusal rewinds the sender to the refused batch's `from`; the batches before it
 *    stay in flight. It names a batch in flight and an event that batch carried, or it is invalid.
 */

export interface FlowLimits {
  maxInFlightBatches: number;
  maxInFlightBytes: number;
}

export interface InFlightBatch {
  to: number;
  bytes: number;
  ownSeq: number;
  /** Where it starts, and the events it carried: what a per-event refusal may name (invariant 7). */
  from?: number;
  events?: readonly { id: string }[];
}

export interface FlowWindow {
  readonly batches: readonly InFlightBatch[];
  readonly bytes: number;
}

export const EMPTY_WINDOW: FlowWindow = { batches: [], bytes: 0 };

/** Whether one more batch may be sent; `bufferedBytes` is what the transport has not written. */
export function windowAllows(window: FlowWindow, limits: FlowLimits, bufferedBytes = 0): boolean {
  if (window.batches.length === 0) return true;
  return (
    window.batches.length < limits.maxInFlightBatches &&
    window.bytes + bufferedBytes < limits.maxInFlightBytes
  );
}

export function windowPush(window: FlowWindow, batch: InFlightBatch): FlowWindow {
  return { batches: [...window.batches, batch], bytes: window.bytes + batch.bytes };
}

export type AckDecision =
  | { kind: 'advance'; window: FlowWindow; ackedPos: number; ownSeq: number }
  | { kind: 'duplicate' }
  /** An ack past anything sent: the peer is broken (error PROTOCOL). */
  | { kind: 'invalid'; sentPos: number };

/**
 * What an `ack { to }` does, given what was acknowledged and sent so far. Acks are cumulative;
 * an ack at an empty batch's position (from == to) still frees that batch's window slot.
 */
export function classifyAck(
  window: FlowWindow,
  sender: { ackedPos: number; sentPos: number },
  to: number,
): AckDecision {
  if (to > sender.sentPos) return { kind: 'invalid', sentPos: sender.sentPos };
  let ownSeq = 0;
  let bytes = window.bytes;
  const rest: InFlightBatch[] = [];
  for (const batch of window.batches) {
    if (batch.to <= to) {
      bytes -= batch.bytes;
      if (batch.ownSeq > ownSeq) ownSeq = batch.ownSeq;
    } else rest.push(batch);
  }
  if (rest.length === window.batches.length && to <= sender.ackedPos) return { kind: 'duplicate' };
  return {
    kind: 'advance',
    window: { batches: rest, bytes },
    ackedPos: Math.max(sender.ackedPos, to),
    ownSeq,
  };
}

export type RefusalDecision =
  /** Send again from `sentPos` (the refused batch's from), with only `window` in flight. */
  | { kind: 'rewind'; window: FlowWindow; sentPos: number }
  /** The same refusal again (a duplicated frame): nothing to do. */
  | { kind: 'duplicate' }
  /** It names no batch in flight, or an event that batch did not carry (error PROTOCOL). */
  | { kind: 'invalid'; reason: string };

/**
 * What a per-event refusal of the batch starting at `from` does to the sender (invariant 7).
 * `alreadyRefused`: the event was refused before in this session.
 */
export function classifyRefusal(
  window: FlowWindow,
  from: number,
  eventId: string,
  alreadyRefused: boolean,
): RefusalDecision {
  if (alreadyRefused) return { kind: 'duplicate' };
  const batch = window.batches.find((b) => b.from === from && b.to > from);
  if (batch === undefined) {
    return { kind: 'invalid', reason: `no batch from ${from} is waiting for an ack` };
  }
  if (!batch.events?.some((e) => e.id === eventId)) {
    return { kind: 'invalid', reason: `the batch from ${from} did not carry event ${eventId}` };
  }
  const kept = window.batches.filter((b) => b.to <= from);
  const bytes = kept.reduce((n, b) => n + b.bytes, 0);
  return { kind: 'rewind', window: { batches: kept, bytes }, sentPos: from };
}
