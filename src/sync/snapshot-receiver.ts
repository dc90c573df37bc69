/**
 * The joining side's receipt of a snapshot sent in parts (protocol 10; snapshot-parts.ts splits
 * and assembles): a header, then its parts, with nothing else of the peer between them but
 * pings, pongs and errors, each part within a timeout of the one before.
 *
 * Invariants:
 * 1. Parts that do not hold together (a header the assembly refuses, a part out of place or of
 *    a wrong length, a whole that does not parse as a snapshot, another message between parts,
 *    or no part within the timeout) are refused once, through `refused`; whatever of them still
 *    arrives is then ignored, since the session pulled the whole log instead.
 * 2. The whole goes to `whole` only once every part came and it parsed as strictly as a snapshot
 *    in one message does (snapshot-messages.ts).
 * 3. The timeout's refusal runs in the session's order of messages (`queue`), never in the middle
 *    of the handling of one.
 */

import type { SnapshotMessage, SnapshotPartMessage } from './protocol.ts';
import { parseSnapshot } from './snapshot-messages.ts';
import { SnapshotAssembly, SnapshotPartsError } from './snapshot-parts.ts';

/** What may come between a snapshot's parts (protocol 10). */
const BESIDE_PARTS: ReadonlySet<string> = new Set(['snapshot-part', 'ping', 'pong', 'error']);

/** What the receipt needs of its session. */
export interface SnapshotPartsHost {
  schedule(fn: () => void, ms: number): () => void;
  /** The longest wait for the next part (ms). */
  timeoutMs: number;
  /** Runs `fn` after what the session is handling now (invariant 3). */
  queue(fn: () => Promise<void>): void;
  /** The parts do not hold (invariant 1): the session says so and pulls the whole log. */
  refused(error: unknown): Promise<void>;
  /** Every part came and parsed (invariant 2). */
  whole(message: SnapshotMessage): Promise<void>;
}

interface Receiving {
  assembly: SnapshotAssembly;
  id?: string;
  cancelTimer: () => void;
}

export class SnapshotPartsReceiver {
  private readonly host: SnapshotPartsHost;
  private current: Receiving | undefined;
  /** Parts were refused: any left of them are ignored (invariant 1). */
  private refusedOnce = false;

  constructor(host: SnapshotPartsHost) {
    this.host = host;
  }

  /** A header announcing `parts` parts of `length` characters in all, at most `maxBytes`. */
  begin(header: { parts: number; length: number; id?: string }, maxBytes: number): Promise<void> {
    let assembly: SnapshotAssembly;
    try {
      assembly = new SnapshotAssembly({ parts: header.parts, length: header.length }, maxBytes);
    } catch (error) {
      return this.refuse(error);
    }
    this.current = { assembly, cancelTimer: () => {} };
    if (header.id !== undefined) this.current.id = header.id;
    this.armTimer();
    return Promise.resolve();
  }

  /** A part; undefined when none was announced (the session fails the peer: PROTOCOL). */
  part(m: SnapshotPartMessage): Promise<void> | undefined {
    const receiving = this.current;
    if (receiving === undefined) return this.refusedOnce ? Promise.resolve() : undefined;
    let text: string | undefined;
    try {
      text = receiving.assembly.add(m.index, m.text);
    } catch (error) {
      return this.refuse(error);
    }
    if (text === undefined) {
      this.armTimer();
      return Promise.resolve();
    }
    receiving.cancelTimer();
    this.current = undefined;
    const whole: SnapshotMessage = { type: 'snapshot' };
    try {
      whole.snapshot = parseSnapshot(JSON.parse(text));
    } catch (error) {
      return this.refuse(
        new SnapshotPartsError(
          `its text does not parse: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
    if (receiving.id !== undefined) whole.id = receiving.id;
    return this.host.whole(whole);
  }

  /** A message of `type` arrived: one that may not come between parts refuses them. */
  async interrupt(type: string): Promise<void> {
    const receiving = this.current;
    if (receiving === undefined || BESIDE_PARTS.has(type)) return;
    const { count, parts } = receiving.assembly;
    await this.refuse(
      new SnapshotPartsError(`a ${type} message came after ${count} of ${parts} parts`),
    );
  }

  /** The session closed. */
  cancel(): void {
    this.current?.cancelTimer();
  }

  private refuse(error: unknown): Promise<void> {
    this.current?.cancelTimer();
    this.current = undefined;
    this.refusedOnce = true;
    return this.host.refused(error);
  }

  private armTimer(): void {
    const waiting = this.current;
    if (waiting === undefined) return;
    waiting.cancelTimer();
    const ms = this.host.timeoutMs;
    waiting.cancelTimer = this.host.schedule(() => {
      if (this.current !== waiting) return;
      this.host.queue(() =>
        this.refuse(
          new SnapshotPartsError(
            `no snapshot part for ${ms} ms after ${waiting.assembly.count} of ${waiting.assembly.parts}`,
          ),
        ),
      );
    }, ms);
  }
}
