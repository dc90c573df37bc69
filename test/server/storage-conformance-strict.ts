/**
 * ServerStorage conformance, strict streams (core/strict.ts; storage.ts): the server is the
 * authority of its space's strict streams. Run by runServerStorageConformance on SQLite and
 * PostgreSQL, with a second storage on the same database where there is one (two servers).
 */
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { STRICT_META } from '../../src/core/strict.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { storedEvent } from '../fixtures/events.ts';

let walls = 1_750_000_000_000;

/** A strict event of `stream` at `version`, decided after `prev`. */
function strict(
  replica: string,
  seq: number,
  stream: string,
  version: number,
  prev?: StoredEventRecord,
  id = `${replica}-${seq}`,
): StoredEventRecord {
  const meta: Record<string, string | boolean> = { [STRICT_META.strict]: true };
  if (prev !== undefined) meta[STRICT_META.prev] = prev.id;
  walls += 1;
  return storedEvent({
    replica,
    seq,
    wall: walls,
    stream,
    version,
    id,
    data: { version },
    meta,
  });
}

function plain(replica: string, seq: number, stream: string, version: number): StoredEventRecord {
  walls += 1;
  return storedEvent({ replica, seq, wall: walls, stream, version, id: `${replica}-${seq}` });
}

export function strictConformance(
  current: () => ServerStorage,
  second: () => ServerStorage | undefined,
  reopen: () => (() => Promise<ServerStorage>) | undefined,
): void {
  describe('strict streams (core/strict.ts)', () => {
    it('accepts a chain, rejects a second event at a taken version with the head it missed, and stores nothing of it (1, 3, 4)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      const a2 = strict('aaaaaaaaaaaaaaaa', 2, 'acct', 2, a1);
      const first = await log.ingest([a1, a2]);
      expect(first.written.map((r) => r.event.id)).toEqual([a1.id, a2.id]);
      expect(first.rejected ?? []).toEqual([]);
      // B decided on version 1 too, offline: its event and the one after it are refused.
      const b1 = strict('bbbbbbbbbbbbbbbb', 1, 'acct', 2, a1);
      const b2 = strict('bbbbbbbbbbbbbbbb', 2, 'acct', 3, b1);
      const other = plain('bbbbbbbbbbbbbbbb', 3, 'notes', 1);
      const second = await log.ingest([b1, b2, other]);
      expect(second.written.map((r) => r.event.id)).toEqual([other.id]);
      expect(second.written[0]!.pos).toBe(3);
      expect(second.rejected).toEqual([
        {
          id: b1.id,
          replica: b1.replica,
          seq: 1,
          stream: 'acct',
          version: 2,
          reason: 'stale',
          head: { version: 2, id: a2.id },
        },
        {
          id: b2.id,
          replica: b2.replica,
          seq: 2,
          stream: 'acct',
          version: 3,
          reason: 'stale',
          head: { version: 2, id: a2.id },
        },
      ]);
      expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual([a1.id, a2.id, other.id]);
      // Rebased on the head, B's next try is accepted; a resend of an accepted event is a
      // duplicate, never a rejection.
      const b4 = strict('bbbbbbbbbbbbbbbb', 4, 'acct', 3, a2);
      const third = await log.ingest([a2, b4]);
      expect(third.written.map((r) => r.event.id)).toEqual([b4.id]);
      expect(third.rejected ?? []).toEqual([]);
    });

    it('keeps each rejection until the replica says it knows, across a reopen (storage.ts rejectionsOf)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await log.ingest([a1]);
      const b1 = strict('bbbbbbbbbbbbbbbb', 1, 'acct', 1);
      const b2 = strict('bbbbbbbbbbbbbbbb', 2, 'acct', 2, b1);
      await log.ingest([b1, b2]);
      // A resend of an accepted event is no rejection.
      await log.ingest([a1]);
      expect((await log.rejectionsOf('bbbbbbbbbbbbbbbb', 0)).map((r) => r.id)).toEqual([
        b1.id,
        b2.id,
      ]);
      expect(await log.rejectionsOf('aaaaaaaaaaaaaaaa', 0)).toEqual([]);
      expect((await log.rejectionsOf('bbbbbbbbbbbbbbbb', 1)).map((r) => r.id)).toEqual([b2.id]);
      await log.forgetRejections('bbbbbbbbbbbbbbbb', 1);
      const again = reopen();
      const reopened = again === undefined ? log : await (await again()).openSpace('s');
      expect(await reopened.rejectionsOf('bbbbbbbbbbbbbbbb', 0)).toMatchObject([
        { id: b2.id, seq: 2, head: { version: 1, id: a1.id } },
      ]);
      await reopened.forgetRejections('bbbbbbbbbbbbbbbb', 2);
      expect(await reopened.rejectionsOf('bbbbbbbbbbbbbbbb', 0)).toEqual([]);
    });

    it('rejects the right version decided after an event it did not accept (1)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await log.ingest([a1]);
      const b1 = strict('bbbbbbbbbbbbbbbb', 1, 'acct', 2, a1);
      await log.ingest([b1]);
      const a2 = strict('aaaaaaaaaaaaaaaa', 2, 'acct', 2, a1);
      expect((await log.ingest([a2])).rejected?.map((r) => r.id)).toEqual([a2.id]);
      // A's next event, decided after its rejected one, fits the version but not the chain.
      const a3 = strict('aaaaaaaaaaaaaaaa', 3, 'acct', 3, a2);
      const result = await log.ingest([a3]);
      expect(result.written).toEqual([]);
      expect(result.rejected).toMatchObject([
        { id: a3.id, reason: 'stale', head: { version: 2, id: b1.id } },
      ]);
    });

    it('rejects an event that is not strict in a strict stream, and leaves other streams and spaces alone (2)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await log.ingest([a1]);
      const sneaky = plain('bbbbbbbbbbbbbbbb', 1, 'acct', 2);
      const fine = plain('bbbbbbbbbbbbbbbb', 2, 'other', 1);
      const result = await log.ingest([sneaky, fine]);
      expect(result.written.map((r) => r.event.id)).toEqual([fine.id]);
      expect(result.rejected).toMatchObject([{ id: sneaky.id, reason: 'not-strict' }]);
      // Another space has its own heads.
      const elsewhere = await current().openSpace('t');
      const plainThere = plain('cccccccccccccccc', 1, 'acct', 1);
      expect((await elsewhere.ingest([plainThere])).rejected ?? []).toEqual([]);
    });

    it('accepts one of two ingests handed over at once that extend one head (3)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await log.ingest([a1]);
      const tries = ['bbbbbbbbbbbbbbbb', 'cccccccccccccccc', 'dddddddddddddddd'].map((r) =>
        strict(r, 1, 'acct', 2, a1),
      );
      const results = await Promise.all(tries.map((e) => log.ingest([e])));
      expect(results.map((r) => r.written.length).sort()).toEqual([0, 0, 1]);
      expect(results.flatMap((r) => r.rejected ?? []).length).toBe(2);
      expect(await log.headPos()).toBe(2);
    });

    it('accepts one of two servers on one database extending one head at once (3)', async () => {
      const other = second();
      if (other === undefined) return;
      const [one, two] = await Promise.all([current().openSpace('s'), other.openSpace('s')]);
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await one.ingest([a1]);
      for (let round = 0; round < 5; round++) {
        const head = (await one.readByPos(0, 100)).filter((r) => r.event.stream === 'acct').pop()!;
        const version = head.event.version + 1;
        const b = strict('bbbbbbbbbbbbbbbb', round + 1, 'acct', version, head.event);
        const c = strict('cccccccccccccccc', round + 1, 'acct', version, head.event);
        const [rb, rc] = await Promise.all([one.ingest([b]), two.ingest([c])]);
        expect(rb.written.length + rc.written.length).toBe(1);
        expect((rb.rejected ?? []).length + (rc.rejected ?? []).length).toBe(1);
      }
      const versions = (await two.readByPos(0, 100)).map((r) => r.event.version);
      expect(versions).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it("keeps an accepted re-run when its command's first run, under the same id at an earlier seq, comes late: that one is rejected (4)", async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await log.ingest([a1]);
      // B's command ran offline on an empty stream (seq 1), was taken out when A's event reached
      // B, and ran again on it under the same id (seq 2). The second run reaches the authority
      // first (the first was in flight to another server, or a dropped connection's queue).
      const firstRun = strict('bbbbbbbbbbbbbbbb', 1, 'acct', 1, undefined, 'cmd-1:0');
      const rerun = strict('bbbbbbbbbbbbbbbb', 2, 'acct', 2, a1, 'cmd-1:0');
      expect((await log.ingest([rerun])).written.map((r) => r.event.seq)).toEqual([2]);
      const late = await log.ingest([firstRun]);
      expect(late.written).toEqual([]);
      expect(late.lost ?? []).toEqual([]);
      expect(late.rejected).toMatchObject([
        { id: 'cmd-1:0', seq: 1, reason: 'stale', head: { version: 2, id: 'cmd-1:0' } },
      ]);
      const held = (await log.readByPos(0, 10)).map((r) => `${r.event.id}@${r.event.seq}`);
      expect(held).toEqual([`${a1.id}@1`, 'cmd-1:0@2']);
      // The chain still ends at the re-run: the next event decided after it is accepted.
      const b3 = strict('bbbbbbbbbbbbbbbb', 3, 'acct', 3, rerun);
      expect((await log.ingest([b3])).written.map((r) => r.event.id)).toEqual([b3.id]);
    });

    it('rejects a late event decided after the first run of the head’s command, though its prev names the head’s id and its version fits (8)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      const winner = strict('cccccccccccccccc', 1, 'acct', 2, a1);
      await log.ingest([a1, winner]);
      // Offline, B decided z (seq 1) on a1, then x on z and y on x. The winner reached B (from a
      // peer), which took all three out and ran x's command again under its id on the winner
      // (seq 4, accepted); the commands of z and y were refused on the new state.
      const z = strict('bbbbbbbbbbbbbbbb', 1, 'acct', 2, a1);
      const x = strict('bbbbbbbbbbbbbbbb', 2, 'acct', 3, z, 'cmd-x:0');
      const y = strict('bbbbbbbbbbbbbbbb', 3, 'acct', 4, x);
      const rerun = strict('bbbbbbbbbbbbbbbb', 4, 'acct', 3, winner, 'cmd-x:0');
      expect((await log.ingest([rerun])).written.map((r) => r.event.seq)).toEqual([4]);
      // The first runs come late, in two batches: y's prev is the head's id, its version the
      // head's + 1, but it was decided after x's first run.
      expect((await log.ingest([z, x])).rejected?.map((r) => r.seq)).toEqual([1, 2]);
      const late = await log.ingest([y]);
      expect(late.written).toEqual([]);
      expect(late.rejected).toMatchObject([
        { id: y.id, seq: 3, reason: 'stale', head: { version: 3, id: 'cmd-x:0' } },
      ]);
      // What B and others decide after the re-run is accepted.
      const b5 = strict('bbbbbbbbbbbbbbbb', 5, 'acct', 4, rerun);
      const c2 = strict('cccccccccccccccc', 2, 'acct', 5, b5);
      expect((await log.ingest([b5, c2])).written.map((r) => r.event.id)).toEqual([b5.id, c2.id]);
    });

    it('keeps an accepted event when another id comes at its (replica, seq) stamped earlier: that one is rejected (7)', async () => {
      const log = await current().openSpace('s');
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await log.ingest([a1]);
      // A device restored from a backup, or a hostile writer, reuses A's seq 1 under another id,
      // stamped before a1: by the copies' rule (first in the total order wins) it would replace it.
      const forged = storedEvent({
        replica: 'aaaaaaaaaaaaaaaa',
        seq: 1,
        wall: walls - 1_000,
        stream: 'acct',
        version: 1,
        id: 'forged',
        data: { version: 1 },
        meta: { [STRICT_META.strict]: true },
      });
      expect(forged.cursor < a1.cursor).toBe(true);
      const late = await log.ingest([forged]);
      expect(late.written).toEqual([]);
      expect(late.lost ?? []).toEqual([]);
      expect(late.rejected).toMatchObject([
        { id: 'forged', seq: 1, reason: 'stale', head: { version: 1, id: a1.id } },
      ]);
      expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual([a1.id]);
      const a2 = strict('aaaaaaaaaaaaaaaa', 2, 'acct', 2, a1);
      expect((await log.ingest([a2])).written.map((r) => r.event.id)).toEqual([a2.id]);
    });

    it('begins a stream only with an event decided on nothing, or on the event it holds just before it in that stream (10)', async () => {
      const log = await current().openSpace('s');
      // A device restored from a backup wrote the column's version 1 under the id of an account
      // event its former self had written at that (replica, seq): that copy is rejected (7), and
      // so is version 2, decided on it, though the column has no head yet.
      const account = strict('aaaaaaaaaaaaaaaa', 3, 'acct', 1, undefined, 'dup');
      await log.ingest([account]);
      const c1 = strict('aaaaaaaaaaaaaaaa', 4, 'col', 1, undefined, 'dup');
      const c2 = strict('aaaaaaaaaaaaaaaa', 5, 'col', 2, c1);
      const lost = await log.ingest([c1, c2]);
      expect(lost.written).toEqual([]);
      expect(lost.rejected).toMatchObject([
        { id: 'dup', seq: 4, head: { version: 1, id: 'dup' } },
        { id: c2.id, seq: 5, reason: 'stale', head: { version: 0, id: '' } },
      ]);
      // Decided on an event the authority does not hold, or holds in another stream: rejected.
      const unknown = strict(
        'bbbbbbbbbbbbbbbb',
        1,
        'col',
        2,
        plain('zzzzzzzzzzzzzzzz', 9, 'col', 1),
      );
      const elsewhere = strict('bbbbbbbbbbbbbbbb', 2, 'col', 2, account);
      const refused = await log.ingest([unknown, elsewhere]);
      expect(refused.written).toEqual([]);
      expect(refused.rejected?.map((r) => [r.seq, r.head])).toEqual([
        [1, { version: 0, id: '' }],
        [2, { version: 0, id: '' }],
      ]);
      // A stream declared strict after it held plain events goes on from the last of them, held
      // from an earlier ingest or from the same one, at the version after it.
      const old1 = plain('cccccccccccccccc', 1, 'legacy', 1);
      const old2 = plain('cccccccccccccccc', 2, 'legacy', 2);
      await log.ingest([old1]);
      const skipped = strict('cccccccccccccccc', 3, 'legacy', 4, old1);
      expect((await log.ingest([old2, skipped])).rejected?.map((r) => r.id)).toEqual([skipped.id]);
      const next = strict('cccccccccccccccc', 4, 'legacy', 3, old2);
      const after = strict('cccccccccccccccc', 5, 'legacy', 4, next);
      expect((await log.ingest([next, after])).written.map((r) => r.event.id)).toEqual([
        next.id,
        after.id,
      ]);
      const same = await log.ingest([
        plain('dddddddddddddddd', 1, 'fresh', 1),
        strict('dddddddddddddddd', 2, 'fresh', 2, plain('dddddddddddddddd', 1, 'fresh', 1)),
      ]);
      expect(same.rejected ?? []).toEqual([]);
      expect(same.written.length).toBe(2);
      // The column begins from nothing still.
      const first = strict('bbbbbbbbbbbbbbbb', 3, 'col', 1);
      expect((await log.ingest([first])).written.map((r) => r.event.id)).toEqual([first.id]);
    });

    it('keeps the heads across a reopen', async () => {
      const again = reopen();
      if (again === undefined) return;
      const a1 = strict('aaaaaaaaaaaaaaaa', 1, 'acct', 1);
      await (await current().openSpace('s')).ingest([a1]);
      const storage = await again();
      const log = await storage.openSpace('s');
      const late = strict('bbbbbbbbbbbbbbbb', 1, 'acct', 1);
      expect((await log.ingest([late])).rejected).toMatchObject([
        { id: late.id, head: { version: 1, id: a1.id } },
      ]);
    });
  });
}
