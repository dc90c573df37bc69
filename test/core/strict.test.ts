/** src/core/strict.ts: the authority's decision, doomed events and the declaration, pure. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type LostCopy, resolveCopies } from '../../src/core/copies.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import {
  acceptedCopies,
  beatenByCopies,
  decideStrict,
  doomedAfter,
  forkedOwn,
  NO_HEAD,
  predecessorsToRead,
  STRICT_META,
  type StrictCandidate,
  type StrictHead,
  strictMatcher,
} from '../../src/core/strict.ts';
import { storedEvent } from '../fixtures/events.ts';

let n = 0;
function ev(
  stream: string,
  version: number,
  prev?: string,
  strict = true,
  replica = 'r',
): StrictCandidate {
  n += 1;
  const meta: Record<string, string | boolean> = {};
  if (strict) meta[STRICT_META.strict] = true;
  if (prev !== undefined) meta[STRICT_META.prev] = prev;
  return { id: `e${n}`, replica, seq: n, stream, version, meta };
}

describe('decideStrict', () => {
  it('starts a chain, extends it within a batch, and rejects what misses the head by version or by prev (1, 3)', () => {
    const a1 = ev('s', 1);
    const a2 = ev('s', 2, a1.id);
    const stale = ev('s', 2, a1.id);
    const wrongPrev = ev('s', 3, 'elsewhere');
    const decision = decideStrict([a1, a2, stale, wrongPrev], new Map());
    expect(decision.accepted).toEqual([a1, a2]);
    expect(decision.rejected.map((r) => [r.id, r.reason, r.head])).toEqual([
      [stale.id, 'stale', { version: 2, id: a2.id }],
      [wrongPrev.id, 'stale', { version: 2, id: a2.id }],
    ]);
    expect(decision.moved).toEqual(new Map([['s', { version: 2, id: a2.id }]]));
  });

  it('rejects an event that is not strict once the stream has a head, and leaves other streams alone (2)', () => {
    const heads = new Map<string, StrictHead>([['s', { version: 4, id: 'h' }]]);
    const plain = ev('s', 5, 'h', false);
    const elsewhere = ev('t', 9, undefined, false);
    const decision = decideStrict([plain, elsewhere], heads);
    expect(decision.accepted).toEqual([elsewhere]);
    expect(decision.rejected).toMatchObject([{ id: plain.id, reason: 'not-strict' }]);
    expect(decision.moved.size).toBe(0);
  });

  it('rejects an event of the head’s replica below the head’s seq, though it names the head and fits its version (8)', () => {
    const heads = new Map<string, StrictHead>([['s', { version: 3, id: 'cmd:0' }]]);
    const origins = new Map([['s', { replica: 'b', seq: 4 }]]);
    // Decided after the command's first run (seq 2), sent at seq 3: before the re-run (seq 4).
    const late = { ...ev('s', 4, 'cmd:0', true, 'b'), seq: 3 };
    const afterRerun = { ...ev('s', 4, 'cmd:0', true, 'b'), seq: 5 };
    const other = { ...ev('s', 5, afterRerun.id, true, 'c'), seq: 1 };
    const decision = decideStrict([late, afterRerun, other], heads, { origins });
    expect(decision.rejected.map((r) => [r.seq, r.head])).toEqual([
      [3, { version: 3, id: 'cmd:0' }],
    ]);
    expect(decision.accepted).toEqual([afterRerun, other]);
    // Without the head's origin, the id alone decides.
    expect(decideStrict([late], heads).accepted).toEqual([late]);
  });

  it('begins a stream without a head only from nothing, or from the event held just before it in that stream (10)', () => {
    // Version 2 decided on a version 1 the authority turned away (here: unknown to it).
    const orphan = ev('s', 2, 'lost');
    // Decided on an event the authority holds, but in another stream, or not just before it.
    const elsewhere = ev('s', 2, 'acct-1');
    const skipped = ev('s', 4, 'old-2');
    const predecessors = new Map([
      ['acct-1', { stream: 'acct', version: 1 }],
      ['old-2', { stream: 's', version: 2 }],
    ]);
    const refused = decideStrict([orphan, elsewhere, skipped], new Map(), { predecessors });
    expect(refused.accepted).toEqual([]);
    expect(refused.rejected.map((r) => [r.id, r.reason, r.head])).toEqual([
      [orphan.id, 'stale', NO_HEAD],
      [elsewhere.id, 'stale', NO_HEAD],
      [skipped.id, 'stale', NO_HEAD],
    ]);
    expect(refused.moved.size).toBe(0);
    // A stream declared strict after plain events goes on from the last of them, held or
    // accepted earlier in the batch; a first event decided on nothing needs no lookup.
    const next = ev('s', 3, 'old-2');
    const plain = ev('t', 1, undefined, false);
    const fromPlain = ev('t', 2, plain.id);
    const fresh = ev('u', 1);
    const decision = decideStrict([next, plain, fromPlain, fresh], new Map(), { predecessors });
    expect(decision.rejected).toEqual([]);
    expect(decision.accepted).toEqual([next, plain, fromPlain, fresh]);
    expect(predecessorsToRead([orphan, plain, fromPlain, fresh, next], new Map())).toEqual([
      'lost',
      plain.id,
      'old-2',
    ]);
    expect(predecessorsToRead([orphan], new Map([['s', { version: 1, id: 'h' }]]))).toEqual([]);
  });

  it('accepts exactly one event per version of a chain, whatever the batches (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 4 })), {
          maxLength: 40,
        }),
        fc.integer({ min: 1, max: 5 }),
        (tries, batchSize) => {
          // Writers decide on what they believe the head is: some right, some stale.
          const heads = new Map<string, StrictHead>();
          const accepted: StrictCandidate[] = [];
          const known: StrictCandidate[] = [];
          for (let i = 0; i < tries.length; i += batchSize) {
            const batch = tries.slice(i, i + batchSize).map(([lag, writer]) => {
              const base = known[known.length - 1 - lag];
              return ev('s', (base?.version ?? 0) + 1, base?.id, true, `w${writer}`);
            });
            const decision = decideStrict(batch, heads);
            for (const [stream, head] of decision.moved) heads.set(stream, head);
            accepted.push(...decision.accepted);
            known.push(...decision.accepted);
            expect(decision.accepted.length + decision.rejected.length).toBe(batch.length);
          }
          expect(accepted.map((e) => e.version)).toEqual(accepted.map((_, i) => i + 1));
          accepted.forEach((e, i) => {
            if (i > 0) expect(e.meta?.[STRICT_META.prev]).toBe(accepted[i - 1]!.id);
          });
        },
      ),
    );
  });
});

describe('acceptedCopies', () => {
  it('hands another copy of an accepted strict event to the decision, which rejects it, and leaves a resent one alone (7)', () => {
    const meta = (prev?: string) => ({
      $strict: true,
      ...(prev === undefined ? {} : { $prev: prev }),
    });
    const a1 = storedEvent({
      replica: 'a',
      seq: 1,
      wall: 1,
      stream: 's',
      version: 1,
      meta: meta(),
    });
    // A command's first run (seq 1) come late after its re-run (seq 2, same id) was accepted.
    const first = storedEvent({
      replica: 'b',
      seq: 1,
      wall: 2,
      stream: 's',
      version: 1,
      id: 'c:0',
      meta: meta(),
    });
    const rerun = storedEvent({
      replica: 'b',
      seq: 2,
      wall: 3,
      stream: 's',
      version: 2,
      id: 'c:0',
      meta: meta(a1.id),
    });
    const plain = storedEvent({ replica: 'b', seq: 3, wall: 4, stream: 't', version: 1, id: 'p' });
    const held = { event: rerun, pos: 2 };
    const copies = acceptedCopies([first, rerun, plain], [held, held, undefined]);
    expect([...copies]).toEqual([[first, { version: 2, id: 'c:0' }]]);
    const heads = new Map([['s', { version: 2, id: 'c:0' }]]);
    const decision = decideStrict([first], heads, { copies });
    expect(decision.accepted).toEqual([]);
    expect(decision.rejected).toMatchObject([
      { id: 'c:0', seq: 1, reason: 'stale', head: { version: 2, id: 'c:0' } },
    ]);
    // Even one that would fit the head is not accepted over the held copy.
    const fits = storedEvent({
      replica: 'b',
      seq: 9,
      wall: 5,
      stream: 's',
      version: 3,
      id: 'c:0',
      meta: meta('c:0'),
    });
    const again = acceptedCopies([fits], [held]);
    expect(decideStrict([fits], heads, { copies: again }).rejected).toMatchObject([{ seq: 9 }]);
    // A copy of a held event that is not strict is the copies' rule's to resolve.
    expect(acceptedCopies([{ ...plain, data: 'other' }], [{ event: plain, pos: 3 }]).size).toBe(0);
  });
});

describe('doomedAfter', () => {
  it('finds own events whose prev chain leads to a rejected one, and not those decided after a winner (5)', () => {
    const head = ev('s', 1);
    const mine = ev('s', 2, head.id, true, 'me');
    const after = ev('s', 3, mine.id, true, 'me');
    const afterAfter = ev('s', 4, after.id, true, 'me');
    const winner = ev('s', 2, head.id, true, 'other');
    const onWinner = ev('s', 3, winner.id, true, 'me');
    const theirs = ev('s', 3, mine.id, true, 'other');
    const rejection = {
      id: mine.id,
      replica: 'me',
      seq: mine.seq,
      stream: 's',
      version: 2,
      reason: 'stale' as const,
      head: { version: 2, id: winner.id },
    };
    const doomed = doomedAfter(
      [rejection],
      [head, mine, winner, after, onWinner, theirs, afterAfter],
      'me',
    );
    expect(doomed.map((d) => d.id)).toEqual([after.id, afterAfter.id]);
    expect(doomed.every((d) => d.head.id === winner.id)).toBe(true);
  });

  it('dooms nothing decided on a later run of the rejected event’s command (5)', () => {
    // The first run's event (id `cmd:0`, seq 1) was taken out already (a fork); the command ran
    // again: the same id at seq 5, then an event on it. The rejection of the first run came late.
    const winner = ev('s', 1, undefined, true, 'other');
    const rerun = { ...ev('s', 2, winner.id, true, 'me'), id: 'cmd:0', seq: 5 };
    const onRerun = ev('s', 3, 'cmd:0', true, 'me');
    const late = {
      id: 'cmd:0',
      replica: 'me',
      seq: 1,
      stream: 's',
      version: 1,
      reason: 'stale' as const,
      head: { version: 1, id: winner.id },
    };
    expect(doomedAfter([late], [winner, rerun, onRerun], 'me')).toEqual([]);
    // The same rejection while the first run is still held at seq 1 dooms what was decided on it.
    const first = { ...ev('s', 1, undefined, true, 'me'), id: 'cmd:0', seq: 1 };
    const onFirst = ev('s', 2, 'cmd:0', true, 'me');
    expect(doomedAfter([late], [first, onFirst], 'me').map((d) => d.id)).toEqual([onFirst.id]);
  });

  it('dooms only what sits at the version right after the rejected event: a restored device (5)', () => {
    // A restored backup holds the first run (`cmd:0`, seq 1, version 1), rejected long ago; its
    // former self's accepted re-run took `cmd:0` at version 2, and its next event, decided on
    // that re-run (prev `cmd:0`, version 3), comes back under the own id. The first run is
    // still held when the rejection is handled, so the id alone cannot tell the two runs apart.
    const first = { ...ev('s', 1, undefined, true, 'me'), id: 'cmd:0', seq: 1 };
    const onFirst = ev('s', 2, 'cmd:0', true, 'me');
    const onRerun = { ...ev('s', 3, 'cmd:0', true, 'me'), seq: 7 };
    const late = {
      id: 'cmd:0',
      replica: 'me',
      seq: 1,
      stream: 's',
      version: 1,
      reason: 'stale' as const,
      head: { version: 1, id: 'winner' },
    };
    expect(doomedAfter([late], [first, onFirst, onRerun], 'me').map((d) => d.id)).toEqual([
      onFirst.id,
    ]);
  });
});

describe('forkedOwn', () => {
  it('finds own events beside another replica’s at one version, and only those (6)', () => {
    const head = ev('s', 1, undefined, true, 'other');
    const mine = ev('s', 2, head.id, true, 'me');
    const theirs = ev('s', 2, head.id, true, 'other');
    const alone = ev('s', 3, mine.id, true, 'me');
    const plain = ev('s', 3, undefined, false, 'other');
    expect(forkedOwn([head, mine, theirs, alone, plain], 'me')).toEqual([
      {
        id: mine.id,
        replica: 'me',
        seq: mine.seq,
        stream: 's',
        version: 2,
        reason: 'stale',
        head: { version: 2, id: theirs.id },
      },
    ]);
    expect(forkedOwn([head, mine], 'me')).toEqual([]);
  });
});

describe('beatenByCopies', () => {
  const ME = 'mmmmmmmmmmmmmmmm';
  const THEM = 'tttttttttttttttt';
  const strictMeta = { [STRICT_META.strict]: true };
  /** A strict event of `replica` under id `id`, stamped at `wall`. */
  const copy = (replica: string, seq: number, wall: number, id: string, strict = true) =>
    storedEvent({
      replica,
      seq,
      wall,
      stream: 'acct',
      version: seq,
      id,
      ...(strict ? { meta: strictMeta } : {}),
    });
  /** What a replica's ingest of `incoming` reports lost while it holds `held`. */
  const lostOf = (incoming: StoredEventRecord[], held: LocalRecord[]): LostCopy[] => {
    const resolution = resolveCopies({
      events: incoming,
      heldById: incoming.map((e) => held.find((h) => h.event.id === e.id)),
      heldBySlot: incoming.map(() => undefined),
    });
    if (resolution.kind !== 'resolved') throw new Error('refused');
    return resolution.lost;
  };

  it('rejects an own strict event that kept its id against another replica’s, which is ingested again (9)', () => {
    // Stamped first, the own copy wins by the copies' rule; the accepted one was not stored.
    const own: LocalRecord = { pos: 1, event: copy(ME, 1, 1000, 'k') };
    const accepted = copy(THEM, 4, 2000, 'k');
    const lost = lostOf([accepted], [own]);
    expect(lost).toMatchObject([{ code: 'ID_CONFLICT', held: false, keptReplica: ME }]);
    expect(beatenByCopies(lost, [own], ME)).toEqual({
      rejected: [
        {
          id: 'k',
          replica: ME,
          seq: 1,
          stream: 'acct',
          version: 1,
          reason: 'stale',
          head: { version: 4, id: 'k' },
        },
      ],
      accepted: [accepted],
    });
    // The authority's rejection took the own one out meanwhile: the accepted one comes in.
    expect(beatenByCopies(lost, [undefined], ME)).toEqual({ rejected: [], accepted: [accepted] });
  });

  it('rejects an own strict event that kept its (replica, seq) or id against a copy under the own id (9: a restored backup)', () => {
    const own: LocalRecord = { pos: 1, event: copy(ME, 2, 1000, 'deposit') };
    // Written at the same (replica, seq) before the backup was restored, and accepted.
    const accepted = copy(ME, 2, 2000, 'withdrawal');
    const resolution = resolveCopies({
      events: [accepted],
      heldById: [undefined],
      heldBySlot: [own],
    });
    if (resolution.kind !== 'resolved') throw new Error('refused');
    expect(resolution.lost).toMatchObject([
      { code: 'SEQ_CONFLICT', held: false, keptId: 'deposit', keptReplica: ME },
    ]);
    expect(beatenByCopies(resolution.lost, [own], ME)).toEqual({
      rejected: [
        {
          id: 'deposit',
          replica: ME,
          seq: 2,
          stream: 'acct',
          version: 2,
          reason: 'stale',
          head: { version: 2, id: 'withdrawal' },
        },
      ],
      accepted: [accepted],
    });
    // The same id at another seq of the own id: one command run before and after the backup.
    const rerun: LocalRecord = { pos: 1, event: copy(ME, 3, 1000, 'k') };
    const first = copy(ME, 2, 2000, 'k');
    const lost = lostOf([first], [rerun]);
    expect(lost).toMatchObject([{ code: 'ID_CONFLICT', held: false, keptReplica: ME }]);
    expect(beatenByCopies(lost, [rerun], ME).accepted).toEqual([first]);
    // Another own event under that id now (the own one left and a re-run took it): not it.
    const other: LocalRecord = { pos: 2, event: copy(ME, 3, 1000, 'other') };
    expect(beatenByCopies(resolution.lost, [other], ME)).toEqual({ rejected: [], accepted: [] });
  });

  it('rejects an own strict event under a former id that kept its id against the accepted re-run under that id (9: restored, then moved)', () => {
    // The backup holds a command's first run (FORMER, 1), rejected long ago; its accepted
    // re-run (FORMER, 4) comes back. The device has moved to ME since the backup was restored.
    const FORMER = 'ffffffffffffffff';
    const first: LocalRecord = { pos: 1, event: copy(FORMER, 1, 1000, 'seed-0:0') };
    const rerun = copy(FORMER, 4, 2000, 'seed-0:0');
    const lost = lostOf([rerun], [first]);
    expect(lost).toMatchObject([{ code: 'ID_CONFLICT', held: false, keptReplica: FORMER }]);
    // Asked with the current id alone, the former self's copy is not recognised as own.
    expect(beatenByCopies(lost, [first], ME)).toEqual({ rejected: [], accepted: [] });
    const ownIds = (id: string) => id === ME || id === FORMER;
    expect(beatenByCopies(lost, [first], ownIds)).toEqual({
      rejected: [
        {
          id: 'seed-0:0',
          replica: FORMER,
          seq: 1,
          stream: 'acct',
          version: 1,
          reason: 'stale',
          head: { version: 4, id: 'seed-0:0' },
        },
      ],
      accepted: [rerun],
    });
  });

  it('leaves alone what the copies’ rule decided rightly: a held loser, another replica’s kept copy, non-strict copies (9)', () => {
    const own: LocalRecord = { pos: 1, event: copy(ME, 1, 3000, 'k') };
    // The own copy stamped later lost and left: nothing to do.
    const earlier = copy(THEM, 4, 2000, 'k');
    const heldLoser = lostOf([earlier], [own]);
    expect(heldLoser).toMatchObject([{ held: true }]);
    expect(beatenByCopies(heldLoser, [undefined], ME)).toEqual({ rejected: [], accepted: [] });
    // Another replica's copy kept: not this replica's to reject.
    const theirs: LocalRecord = { pos: 1, event: copy('oooooooooooooooo', 1, 1000, 'k') };
    const later = copy(THEM, 4, 2000, 'k');
    const lostToThem = lostOf([later], [theirs]);
    expect(beatenByCopies(lostToThem, [theirs], ME)).toEqual({ rejected: [], accepted: [] });
    // A non-strict arrival was not decided by the authority.
    const plainOwn: LocalRecord = { pos: 1, event: copy(ME, 1, 1000, 'p', false) };
    const plain = copy(THEM, 4, 2000, 'p', false);
    expect(beatenByCopies(lostOf([plain], [plainOwn]), [plainOwn], ME)).toEqual({
      rejected: [],
      accepted: [],
    });
  });
});

describe('strictMatcher', () => {
  it('matches names exactly and prefixes ending in *', () => {
    const strict = strictMatcher(['ledger', 'account-*']);
    expect(['ledger', 'account-1', 'account-'].map(strict)).toEqual([true, true, true]);
    expect(['ledger-2', 'accounts', 'Ledger'].map(strict)).toEqual([false, false, false]);
    expect(strictMatcher()('anything')).toBe(false);
  });
});
