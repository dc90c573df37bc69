/**
 * Strict streams (issue 19), pure: a stream declared strict is ordered by an authority, the sync
 * server of its space. A replica appends to it tentatively; the authority accepts an event only
 * if it extends the stream's accepted chain, and rejects the rest, which their replica then takes
 * out of its log (store/strict-rejections.ts). Streams not declared strict keep merge-and-report.
 *
 * An event is strict when its meta says so (STRICT_META.strict), which the store sets on every
 * append to a stream the app declared strict (StoreOptions.strictStreams). Beside it the event
 * names the event it was decided after (STRICT_META.prev: the id of the stream's last event on
 * its replica then; absent for a stream's first). Both live in meta, so every layer that carries
 * events (storages, the wire, the server's tables) carries them unchanged.
 *
 * Invariants:
 * 1. The authority accepts a strict event of stream S iff S has no accepted strict event yet
 *    (invariant 10 says what may begin one), or the event's version is the head's + 1 AND its
 *    `prev` is the head's id. The id check is what refuses an event decided on a state that held
 *    a rejected one (its version may still fit).
 * 2. Once S has an accepted strict event, an event of S that is not strict is rejected: a writer
 *    that did not declare S strict cannot slip past its rule.
 * 3. Decisions run in the order of the batch, each accepted event moving the head: a batch may
 *    extend a chain by many events. They are taken inside the write transaction of the
 *    authority's storage, with the heads read there, so two writers never both extend one head.
 * 4. A rejection names the event by id and seq (a command re-run reuses its ids at new seqs) and
 *    the head it missed, so that its replica can tell when the winners have reached it.
 * 6. Another replica's strict event reaches a replica only once the authority accepted it (each
 *    replica holds its own tentative events back from every peer but the authority): an own
 *    event at the same version of the stream is rejected already, whatever message is late
 *    (forkedOwn). A replica must not decide on a state holding both.
 * 5. An own event whose `prev` chain leads to a rejected event is doomed (doomedAfter): its
 *    replica takes it out with the rejected one, before the authority says so, so that nothing
 *    is decided on it again. An event decided after a winner instead is not: the authority may
 *    accept it, and a replica that took it out would never get it back. Nor is one decided on a
 *    later run of the rejected event's command (invariant 4: the same id at another seq): a
 *    rejection that came late for the first run, once a fork had taken that run out and the
 *    command had run again, took out the second run's events, which the authority accepted
 *    (test/strict/strict.property.test.ts, seed 1486970605 path 6). A `prev` names an id, and a
 *    run reuses its command's ids: so only an event at the version right after the rejected
 *    one's was decided on it. A device restored from a backup holds a first run the authority
 *    rejected, while its former self's accepted events, decided on the accepted re-run of that
 *    id, come back under its own replica id: counted as doomed, they left the log and their
 *    commands ran twice (STRICT_RESTORE=1).
 * 7. A strict event the authority holds is accepted, and no copy of its id replaces it
 *    (acceptedCopies): another copy (invariant 4: a command's first run, come late after the
 *    re-run under the same id was accepted) is rejected, never resolved as copies collide
 *    (core/copies.ts), whose "first writer wins" took the accepted run out and left the head
 *    naming an event the authority no longer held. Nor does another id at its (replica, seq)
 *    that would win by that rule (a restored device, a hostile writer): it is rejected too.
 * 8. `prev` names an event by id, which a re-run reuses: an event of replica R whose `prev` is
 *    the head's id, when the head is R's own at a higher seq, was decided after another run of
 *    the head's command (R appends in seq order), and is rejected though its version fits. The
 *    head's origin is read with it where the authority holds it (StrictDecisionInput.origins);
 *    without it the id alone decides.
 * 9. The same on a replica: another replica's strict event that arrives under the id of an own
 *    one was accepted (invariant 6), and the authority keeps it (invariant 7), so the own one is
 *    rejected already, though it wins by the copies' rule (stamped first: one id appended on two
 *    devices, or a hostile writer) and the ingest kept it (beatenByCopies). It leaves as a
 *    rejection, and the accepted one is ingested again: before, the replica kept the own copy
 *    until the authority's rejection took it out, and never held the accepted one. So does an
 *    own strict event that kept its (replica, seq) or id against a strict event under the
 *    replica's own id from elsewhere: that one was written by an earlier self (the device was
 *    restored from a backup that predates it) or a clone, which held it back from every peer but
 *    the authority (invariant 6), so it was accepted. The ingest that met it moved the replica to
 *    a fresh id (core/append.ts invariant 8): the own one is rejected under the id it was written
 *    with, which its log must still take as its own (adapter.ts `discard`). "Own" takes in the
 *    log's former ids: a device restored from a backup again, after it had moved, holds its
 *    former self's first run of a command, rejected long ago, whose accepted re-run comes back
 *    under that former id at a later seq and lost to it by the copies' rule. Kept, the rejected
 *    run left with its rejection and the accepted one never came again: that replica lacked it
 *    for good (STRICT_RESTORE=1, seed 1975233183 path 54).
 * 10. With no head, a strict event that names a `prev` is accepted only where the authority
 *    holds that event in the same stream at the version before it (an event of the stream from
 *    before it was declared strict, read by the caller: StrictDecisionInput.predecessors; or one
 *    accepted earlier in the same decision). Else it is rejected with NO_HEAD, and its command
 *    runs again at once. Before, any strict event began a stream without a head: a device
 *    restored from a backup wrote the stream's version 1 under the canonical id of an event of
 *    another stream that its former self had written at that (replica, seq); invariant 7
 *    rejected it, and its version 2, decided on it, became the stream's first, at version 2
 *    (STRICT_RESTORE=1, seed 762316359 path 12).
 */
import { compareCopies, type LostCopy, sameCopy } from './copies.ts';
import type { JsonValue, LocalRecord, StoredEventRecord } from './events.ts';

/** The meta keys of a strict event. `$` keys are the library's own. */
export const STRICT_META = {
  strict: '$strict',
  prev: '$prev',
} as const;

/** The accepted end of a strict stream's chain, at the authority. */
export interface StrictHead {
  version: number;
  id: string;
}

/** The head a rejection names when its stream has no accepted strict event (invariant 10). */
export const NO_HEAD: Readonly<StrictHead> = Object.freeze({ version: 0, id: '' });

/** What the authority rejected (invariant 4). */
export interface StrictRejection {
  id: string;
  replica: string;
  seq: number;
  stream: string;
  version: number;
  /** Why: it did not extend the head (`stale`), or is not strict in a strict stream. */
  reason: 'stale' | 'not-strict';
  /** The stream's accepted head when it was rejected (NO_HEAD: it had none). */
  head: StrictHead;
}

/** The fields of an event the decision reads. */
export interface StrictCandidate {
  id: string;
  replica: string;
  seq: number;
  stream: string;
  version: number;
  meta?: { readonly [key: string]: JsonValue } | undefined;
}

export function isStrictEvent(event: Pick<StrictCandidate, 'meta'>): boolean {
  return event.meta?.[STRICT_META.strict] === true;
}

export function prevOf(event: Pick<StrictCandidate, 'meta'>): string | undefined {
  const prev = event.meta?.[STRICT_META.prev];
  return typeof prev === 'string' ? prev : undefined;
}

/**
 * Whether a batch needs the decision at all: the heads of its streams must be read when it holds
 * a strict event, or a stream the authority may hold as strict. The caller reads the heads of
 * `streamsOf(events)`; with no head and no strict event, everything is accepted.
 */
export function streamsOf(events: readonly Pick<StrictCandidate, 'stream'>[]): string[] {
  return [...new Set(events.map((e) => e.stream))];
}

/** Where an accepted event came from (invariant 8). */
export interface StrictOrigin {
  replica: string;
  seq: number;
}

/** What the authority knows beside the heads, for invariants 7 and 8. */
export interface StrictDecisionInput<T> {
  /** Events of the batch that copy an accepted event (acceptedCopies), with that event. */
  copies?: ReadonlyMap<T, StrictHead>;
  /** The origin of each stream's head as read, by stream, where it is held. */
  origins?: ReadonlyMap<string, StrictOrigin>;
  /**
   * Invariant 10: the held events that strict events of streams without a head name as `prev`
   * (predecessorsToRead), by id.
   */
  predecessors?: ReadonlyMap<string, StrictPlace>;
}

/** Where an event sits in its stream. */
export interface StrictPlace {
  stream: string;
  version: number;
}

export interface StrictDecision<T> {
  accepted: T[];
  rejected: StrictRejection[];
  /** The heads that moved (to be written with the accepted events). */
  moved: Map<string, StrictHead>;
}

/**
 * Invariant 10: the `prev` ids the authority looks up before deciding `events`: those named by
 * strict events of streams with no head (an event of the batch may bear one: the decision takes
 * it first when it accepted it).
 */
export function predecessorsToRead(
  events: readonly StrictCandidate[],
  heads: ReadonlyMap<string, StrictHead>,
): string[] {
  const out = new Set<string>();
  for (const event of events) {
    const prev = prevOf(event);
    if (prev !== undefined && !heads.has(event.stream) && isStrictEvent(event)) out.add(prev);
  }
  return [...out];
}

/**
 * Invariants 1–3, 7, 8, 10: the events of one ingest, in order, against the heads held. A copy
 * of an accepted event names that event as the head when its own stream has none.
 */
export function decideStrict<T extends StrictCandidate>(
  events: readonly T[],
  heads: ReadonlyMap<string, StrictHead>,
  known: StrictDecisionInput<T> = {},
): StrictDecision<T> {
  const { copies, predecessors } = known;
  const origins = new Map(known.origins);
  // Invariant 10: the places of the events this decision accepted, by id.
  const placed = new Map<string, StrictPlace>();
  const moved = new Map<string, StrictHead>();
  const accepted: T[] = [];
  const rejected: StrictRejection[] = [];
  for (const event of events) {
    const head = moved.get(event.stream) ?? heads.get(event.stream);
    const strict = isStrictEvent(event);
    const reject = (reason: StrictRejection['reason'], at: StrictHead) =>
      rejected.push({
        id: event.id,
        replica: event.replica,
        seq: event.seq,
        stream: event.stream,
        version: event.version,
        reason,
        head: at,
      });
    const copied = copies?.get(event);
    if (copied !== undefined) {
      reject('stale', head ?? copied);
      continue;
    }
    if (head === undefined) {
      const prev = strict ? prevOf(event) : undefined;
      if (prev !== undefined) {
        const before = placed.get(prev) ?? predecessors?.get(prev);
        if (before?.stream !== event.stream || before.version !== event.version - 1) {
          reject('stale', NO_HEAD);
          continue;
        }
      }
      accepted.push(event);
      placed.set(event.id, { stream: event.stream, version: event.version });
      if (strict) {
        moved.set(event.stream, { version: event.version, id: event.id });
        origins.set(event.stream, { replica: event.replica, seq: event.seq });
      }
      continue;
    }
    if (!strict) {
      reject('not-strict', head);
      continue;
    }
    const origin = origins.get(event.stream);
    if (
      event.version !== head.version + 1 ||
      prevOf(event) !== head.id ||
      (origin?.replica === event.replica && event.seq < origin.seq)
    ) {
      reject('stale', head);
      continue;
    }
    accepted.push(event);
    placed.set(event.id, { stream: event.stream, version: event.version });
    moved.set(event.stream, { version: event.version, id: event.id });
    origins.set(event.stream, { replica: event.replica, seq: event.seq });
  }
  return { accepted, rejected, moved };
}

/**
 * Invariant 7, at the authority: the incoming events whose id it holds as a strict event, as
 * another copy (a resent copy is a duplicate, left to core/copies.ts), and those under another
 * id at a held strict event's (replica, seq) that would win over it (a restored device, a hostile
 * writer; one that would lose stays a SEQ_CONFLICT), each with the held one as a head.
 * `heldById` is the held record of each event's id, in the order of `events`.
 */
export function acceptedCopies(
  events: readonly StoredEventRecord[],
  heldById: readonly (LocalRecord | undefined)[],
  /** The held record at each event's (replica, seq), in the order of `events`. */
  heldBySlot: readonly (LocalRecord | undefined)[] = [],
): Map<StoredEventRecord, StrictHead> {
  const out = new Map<StoredEventRecord, StrictHead>();
  events.forEach((event, i) => {
    const held = heldById[i]?.event;
    if (held !== undefined && isStrictEvent(held) && !sameCopy(held, event)) {
      out.set(event, { version: held.version, id: held.id });
      return;
    }
    // Another id at an accepted event's (replica, seq) that the copies' rule would let win.
    const atSlot = heldBySlot[i]?.event;
    if (
      atSlot !== undefined &&
      atSlot.id !== event.id &&
      isStrictEvent(atSlot) &&
      compareCopies(event, atSlot) < 0
    ) {
      out.set(event, { version: atSlot.version, id: atSlot.id });
    }
  });
  return out;
}

/**
 * The own events of a stream decided after a rejected one (invariant 5): their `prev` chain
 * leads to it, so the authority can never accept them. `records` are the stream's, in the total
 * order; each doomed one gets the rejection of the event its chain leads to.
 */
export function doomedAfter(
  rejections: readonly StrictRejection[],
  records: readonly StrictCandidate[],
  replica: string,
): StrictRejection[] {
  // Invariant 5: the rejection of an id this replica now holds at another seq is of an earlier
  // run of its command, and dooms nothing decided on the later run.
  const heldSeq = new Map<string, number>();
  for (const e of records) if (e.replica === replica) heldSeq.set(e.id, e.seq);
  const rootOf = new Map<string, StrictRejection>();
  for (const r of rejections) {
    const seq = heldSeq.get(r.id);
    if (seq === undefined || seq === r.seq) rootOf.set(r.id, r);
  }
  const out: StrictRejection[] = [];
  for (const event of records) {
    if (event.replica !== replica || rootOf.has(event.id) || !isStrictEvent(event)) continue;
    const prev = prevOf(event);
    const root = prev === undefined ? undefined : rootOf.get(prev);
    if (root === undefined || event.version !== root.version + 1) continue;
    const doomed: StrictRejection = {
      id: event.id,
      replica: event.replica,
      seq: event.seq,
      stream: event.stream,
      version: event.version,
      reason: root.reason,
      head: root.head,
    };
    rootOf.set(event.id, doomed);
    out.push(doomed);
  }
  return out;
}

/**
 * Own events that share a version with another replica's strict event (invariant 6): the other
 * came through the authority, which accepted it, so the own one will be rejected. `records` are
 * the end of one stream, in the total order.
 */
export function forkedOwn(records: readonly StrictCandidate[], replica: string): StrictRejection[] {
  const accepted = new Map<number, StrictCandidate>();
  for (const e of records)
    if (e.replica !== replica && isStrictEvent(e)) accepted.set(e.version, e);
  const out: StrictRejection[] = [];
  for (const e of records) {
    const winner = accepted.get(e.version);
    if (e.replica !== replica || winner === undefined || !isStrictEvent(e)) continue;
    out.push({
      id: e.id,
      replica,
      seq: e.seq,
      stream: e.stream,
      version: e.version,
      reason: 'stale',
      head: { version: winner.version, id: winner.id },
    });
  }
  return out;
}

/**
 * Invariant 9, after an ingest: of its lost copies, strict events from elsewhere that lost to an
 * own strict event: another replica's under their id, or one under `replica` itself at its
 * (replica, seq) or id. `replica` is the log's id when the ingest began (it may have moved on).
 * `held` is the held record of each lost copy's kept id, in the order of `lost`, read after the
 * ingest. Returns the own events, rejected with the accepted one as the head (the command runs
 * again once it is held), and the accepted events, to be ingested again once the own ones left
 * (or at once where the own one left meanwhile: the authority's rejection may come while the
 * ingest runs).
 */
export function beatenByCopies(
  lost: readonly LostCopy[],
  held: readonly (LocalRecord | undefined)[],
  /** This log's replica id, or a predicate that also takes its former ids (a restored device). */
  replica: string | ((id: string) => boolean),
): { rejected: StrictRejection[]; accepted: StoredEventRecord[] } {
  const own = typeof replica === 'string' ? (id: string) => id === replica : replica;
  const rejected: StrictRejection[] = [];
  const accepted: StoredEventRecord[] = [];
  lost.forEach((copy, i) => {
    // Another replica's copy can only have lost by its id; one under the own id, by either.
    if (copy.held || !own(copy.keptReplica) || !isStrictEvent(copy.event)) return;
    const mine = held[i]?.event;
    // Gone already (the authority's rejection came meanwhile): the id is free.
    if (mine === undefined) {
      accepted.push(copy.event);
      return;
    }
    if (mine.id !== copy.keptId || !own(mine.replica) || !isStrictEvent(mine)) return;
    rejected.push({
      id: mine.id,
      replica: mine.replica,
      seq: mine.seq,
      stream: mine.stream,
      version: mine.version,
      reason: 'stale',
      head: { version: copy.event.version, id: copy.event.id },
    });
    accepted.push(copy.event);
  });
  return { rejected, accepted };
}

/**
 * A declaration of strict streams (StoreOptions.strictStreams): exact names, or prefixes ending
 * in `*` ('account-*').
 */
export function strictMatcher(patterns: readonly string[] = []): (stream: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  if (exact.size === 0 && prefixes.length === 0) return () => false;
  return (stream) => exact.has(stream) || prefixes.some((p) => stream.startsWith(p));
}
