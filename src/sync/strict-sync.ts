/**
 * The Syncer's part in strict streams (core/strict.ts): which peers are authorities, which own
 * events are still tentative, and the hold that keeps them from other replicas until accepted.
 *
 * Invariants:
 * 1. The authorities are the peers whose hello said `server`; their ids are kept in meta
 *    `sync.authorities`, so that a reload with the server down still tells tentative events.
 * 2. An own strict event is tentative while no authority acknowledged it: own events are sent
 *    in seq order, so it is tentative iff its seq is above the highest own seq an authority
 *    holds (the controller's acked marks). The authority's ack means "stored, or rejected"
 *    (protocol 8), and a rejected event has left the log before the ack is handled.
 * 3. To a peer that is not a server nothing is sent from the first tentative event on
 *    (`holdBack`): it would reach other replicas before the authority decided on it. The hold
 *    is lifted when an authority acknowledges more (`poke` the sessions).
 * 4. `tentative()` counts them by reading the own events after the authority's mark, at most
 *    COUNT_LIMIT of the log; it is counted again after every change of the log or of a mark,
 *    reading only what was added since while the mark stays, and not at all in a store that
 *    declares no strict stream.
 */
import type { JsonValue } from '../core/events.ts';
import { isStrictEvent } from '../core/strict.ts';
import type { StoreInternals } from '../store/internal.ts';
import type { HelloMessage } from './protocol.ts';
import type { AckedMark } from './sync-meta.ts';

export const AUTHORITIES_META_KEY = 'sync.authorities';
/** Records read at most to count tentative events (invariant 4). */
const COUNT_LIMIT = 20_000;

export interface StrictSync {
  /** A peer's hello: a server becomes an authority (invariant 1). */
  noteHello(hello: HelloMessage): void;
  /** Whether `event` must wait before it is sent to `peer` (invariant 3). */
  holdBack(event: { replica: string; seq: number; meta?: unknown }, peer: HelloMessage): boolean;
  /** Own strict events not accepted yet (invariant 4), as last counted. */
  tentative(): number;
  /**
   * Counts again; `changed` is called when the count moved. `full` after events left the log
   * (a count made before may hold them).
   */
  recount(full?: boolean): void;
}

export function strictSync(
  internals: StoreInternals,
  acked: () => Readonly<Record<string, AckedMark>>,
  changed: () => void,
): StrictSync {
  let authorities = new Set<string>();
  let count = 0;
  let counting = false;
  let again = false;
  let fullAgain = false;
  const declared = internals.strictDeclared === true;

  const loaded = internals.log.getMeta(AUTHORITIES_META_KEY).then(
    (value) => {
      if (Array.isArray(value)) {
        for (const id of value) if (typeof id === 'string') authorities.add(id);
      }
    },
    () => {},
  );

  const accepted = (): AckedMark => {
    let best: AckedMark = { pos: 0, seq: 0 };
    const marks = acked();
    for (const id of authorities) {
      const mark = marks[id];
      if (mark !== undefined && mark.seq > best.seq) best = mark;
    }
    return best;
  };

  /** Where the last count stopped, and under which mark and replica id it was made. */
  let counted = { replica: '', markPos: -1, markSeq: -1, pos: 0, n: 0 };

  /**
   * Invariant 4, incrementally: while the authority's mark and the replica id stay the same,
   * only the positions after the last count are read (one more append: one record); otherwise,
   * or after a discard (`full`), from the mark again.
   */
  const countNow = async (full: boolean): Promise<number> => {
    await loaded;
    const me = internals.replicaId;
    const mark = accepted();
    const same =
      !full &&
      counted.replica === me &&
      counted.markPos === mark.pos &&
      counted.markSeq === mark.seq;
    let n = same ? counted.n : 0;
    let pos = same ? counted.pos : mark.pos;
    for (let read = 0; read < COUNT_LIMIT; ) {
      const page = await internals.log.readByPos(pos, 500);
      if (page.length === 0) break;
      for (const r of page) {
        if (r.event.replica === me && r.event.seq > mark.seq && isStrictEvent(r.event)) n += 1;
        pos = r.pos;
      }
      read += page.length;
    }
    counted = { replica: me, markPos: mark.pos, markSeq: mark.seq, pos, n };
    return n;
  };

  return {
    noteHello(hello) {
      if (hello.server !== true || authorities.has(hello.replica)) return;
      authorities = new Set([...authorities, hello.replica]);
      const value: JsonValue[] = [...authorities];
      void internals.log.setMeta(AUTHORITIES_META_KEY, value).catch(() => {});
    },
    holdBack(event, peer) {
      if (peer.server === true || event.replica !== internals.replicaId) return false;
      return (
        isStrictEvent(event as { meta?: { [key: string]: JsonValue } }) &&
        event.seq > accepted().seq
      );
    },
    tentative: () => count,
    recount(full = false) {
      // A store that declares no strict stream appends no strict event: nothing to count.
      if (!declared) return;
      fullAgain ||= full;
      if (counting) {
        again = true;
        return;
      }
      counting = true;
      void (async () => {
        try {
          do {
            again = false;
            const whole = fullAgain;
            fullAgain = false;
            const n = await countNow(whole);
            if (n !== count) {
              count = n;
              changed();
            }
          } while (again);
        } finally {
          // In the same turn as the last check of `again`: a recount asked for after it starts
          // a count of its own (a `.finally` a turn later lost it).
          counting = false;
        }
      })().catch(() => {});
    },
  };
}
