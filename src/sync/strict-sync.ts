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
 * 5. Own events written under an id the log had before a move (a restored backup: core/append.ts
 *    invariant 8) stay own: the marks of the old id were dropped with the move (controller.ts
 *    invariant 10), so such a strict event is tentative while it sits above every authority's
 *    acked position (an authority holds this log through that position: stored or rejected).
 *    The former ids are the store's (`formerIds`) and those of the log's stored identity (one
 *    nonce each), read when the replica id changed. The count of invariant 4 lists them; until it
 *    has, under the current id, or where it stopped at COUNT_LIMIT, every strict event of a
 *    former id is held, and so is every strict event before the stored identity was read (which
 *    ids are former is not known yet). When the list shrinks, `released` pokes the sessions; an
 *    authority's acked position moving counts again while the list holds anything.
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
  /** Own strict events not accepted yet (invariants 4 and 5), as last counted. */
  tentative(): number;
  /** Whether strict events of a former replica id may be held (invariant 5). */
  holdsFormer(): boolean;
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
  /** Strict events of a former id were let go (invariant 5): the sessions may send more. */
  released: () => void = () => {},
): StrictSync {
  let authorities = new Set<string>();
  let count = 0;
  let counting = false;
  let again = false;
  let fullAgain = false;
  const declared = internals.strictDeclared === true;
  /** The former ids the stored identity names, and the replica id it was read under. */
  let storedFormer: { replica: string; ids: ReadonlySet<string> } | undefined;

  /** Invariant 5: the stored identity's ids but the current one, read again after a move. */
  const readFormerIds = async (me: string): Promise<ReadonlySet<string>> => {
    if (storedFormer?.replica !== me) {
      const identity = await internals.log.identity().catch(() => undefined);
      const ids = new Set(Object.keys(identity?.nonces ?? {}).filter((id) => id !== me));
      storedFormer = { replica: me, ids };
    }
    return storedFormer.ids;
  };

  const loaded = Promise.all([
    internals.log.getMeta(AUTHORITIES_META_KEY).then(
      (value) => {
        if (Array.isArray(value)) {
          for (const id of value) if (typeof id === 'string') authorities.add(id);
        }
      },
      () => {},
    ),
    // What holdBack held while the former ids were not known may go now (invariant 5).
    readFormerIds(internals.replicaId).then(released),
  ]);
  const isFormer = (replica: string): boolean =>
    internals.formerIds?.has(replica) === true || storedFormer?.ids.has(replica) === true;

  /** The authorities' mark with the highest own seq (the highest position among equals). */
  const accepted = (): AckedMark => {
    let best: AckedMark = { pos: 0, seq: 0 };
    const marks = acked();
    for (const id of authorities) {
      const mark = marks[id];
      if (mark === undefined) continue;
      if (mark.seq > best.seq || (mark.seq === best.seq && mark.pos > best.pos)) best = mark;
    }
    return best;
  };
  /** How far some authority holds this log (invariant 5). */
  const authorityPos = (): number => {
    let pos = 0;
    const marks = acked();
    for (const id of authorities) pos = Math.max(pos, marks[id]?.pos ?? 0);
    return pos;
  };
  const slotOf = (event: { replica: string; seq: number }) => `${event.seq}@${event.replica}`;

  /**
   * Where the last count stopped, and under which marks and replica id it was made; `former`:
   * the slots of the former ids' strict events above the authorities (invariant 5), undefined
   * where the count stopped at COUNT_LIMIT before the head.
   */
  let counted: {
    replica: string;
    markPos: number;
    markSeq: number;
    authorityPos: number;
    pos: number;
    n: number;
    former: Set<string> | undefined;
  } = { replica: '', markPos: -1, markSeq: -1, authorityPos: -1, pos: 0, n: 0, former: undefined };

  /**
   * Invariant 4, incrementally: while the authority's mark and the replica id stay the same,
   * only the positions after the last count are read (one more append: one record); otherwise,
   * or after a discard (`full`), from the mark again.
   */
  const countNow = async (full: boolean): Promise<number> => {
    await loaded;
    const me = internals.replicaId;
    await readFormerIds(me);
    const mark = accepted();
    const above = authorityPos();
    const same =
      !full &&
      counted.replica === me &&
      counted.markPos === mark.pos &&
      counted.markSeq === mark.seq &&
      counted.authorityPos === above;
    let n = same ? counted.n : 0;
    let pos = same ? counted.pos : mark.pos;
    const held = same ? counted.former : new Set<string>();
    let whole = false;
    for (let read = 0; read < COUNT_LIMIT; ) {
      const page = await internals.log.readByPos(pos, 500);
      if (page.length === 0) {
        whole = true;
        break;
      }
      for (const r of page) {
        const e = r.event;
        if (e.replica === me) {
          if (e.seq > mark.seq && isStrictEvent(e)) n += 1;
        } else if (r.pos > above && isFormer(e.replica) && isStrictEvent(e)) {
          n += 1;
          held?.add(slotOf(e));
        }
        pos = r.pos;
      }
      read += page.length;
    }
    const before = counted.replica === me ? counted.former : undefined;
    counted = {
      replica: me,
      markPos: mark.pos,
      markSeq: mark.seq,
      authorityPos: above,
      pos,
      n,
      former: whole ? held : undefined,
    };
    const after = counted.former;
    if (after !== undefined && (before === undefined || [...before].some((s) => !after.has(s)))) {
      released();
    }
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
      if (peer.server === true) return false;
      if (!isStrictEvent(event as { meta?: { [key: string]: JsonValue } })) return false;
      const me = internals.replicaId;
      if (event.replica === me) return event.seq > accepted().seq;
      // Invariant 5: which ids are former is not known before the stored identity was read.
      if (storedFormer === undefined) return true;
      // A store that declares no strict stream counts nothing (invariant 4): as before a move.
      if (!declared || !isFormer(event.replica)) return false;
      const held = counted.replica === me ? counted.former : undefined;
      return held === undefined || held.has(slotOf(event));
    },
    tentative: () => count,
    holdsFormer: () => declared && (counted.former === undefined || counted.former.size > 0),
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
