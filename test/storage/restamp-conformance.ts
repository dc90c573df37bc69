/**
 * The re-stamp part of the storage conformance suite (storageConformance calls it for every
 * adapter: memory, fake-indexeddb, real Chromium IndexedDB). Names cite src/core/restamp.ts
 * (R1..R6) and src/storage/adapter.ts (A1..A5). Imports only vitest, src and test/fixtures.
 */
import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { hlcWall } from '../../src/core/hlc.ts';
import { EventId, ReplicaId } from '../../src/core/ids.ts';
import type { EventLog } from '../../src/storage/adapter.ts';
import { parseRewrites, REWRITES_META_KEY } from '../../src/storage/rewrites.ts';
import { storedEvent } from '../fixtures/events.ts';

const REMOTE = ReplicaId.parse('remote0000000009');
const DAY = 24 * 60 * 60 * 1000;
const YEAR = 365 * DAY;
/** The true time of these tests; the wrong clock reads a year later. */
const NOW = 1_000_000_000;
const AHEAD = 5 * 60_000;

let ids = 0;

async function appendAt(log: EventLog, stream: string, now: number, n = 1): Promise<LocalRecord[]> {
  const result = await log.appendLocal({
    stream,
    events: Array.from({ length: n }, () => ({
      id: EventId.parse(`restamp-${++ids}`),
      type: 'Added',
      data: { n: ids },
      schema: 1,
    })),
    expectedVersion: 'any',
    now,
  });
  if (result.kind !== 'written') throw new Error('expected a write');
  return result.records;
}

async function ingestAt(log: EventLog, seq: number, wall: number, stream = 'r'): Promise<void> {
  await log.ingest({
    events: [storedEvent({ replica: REMOTE, seq, wall, stream, data: { remote: seq } })],
    now: wall,
    maxClockDriftMs: DAY,
  });
}

async function all(log: EventLog): Promise<LocalRecord[]> {
  return log.readByCursor({ limit: 10_000 });
}

export function restampConformance(open: () => Promise<EventLog>): void {
  describe('restamp (a clock found ahead, issue 12)', () => {
    it('moves own unshared events stamped ahead back by the shift, after what they followed, and sets the clock back (R1-R4)', async () => {
      const log = await open();
      await ingestAt(log, 1, NOW - 60_000);
      const ahead = await appendAt(log, 'mine', NOW + YEAR - 30_000, 2);
      await ingestAt(log, 2, NOW - 10_000);
      const [later] = await appendAt(log, 'mine', NOW + YEAR - 5_000);
      const result = await log.restamp({
        sharedSeq: 0,
        now: NOW,
        maxClockAheadMs: AHEAD,
        shift: -YEAR,
      });
      expect(result.changed.map((r) => r.pos)).toEqual([2, 3, 5]);
      expect(result.changed.map((r) => r.event.time)).toEqual([
        NOW - 30_000,
        NOW - 30_000,
        NOW - 5_000,
      ]);
      expect(result.from).toBe(result.changed[0]!.event.cursor);
      // Kept in the log for a handle that missed the notice (storage/rewrites.ts).
      expect(parseRewrites(await log.getMeta(REWRITES_META_KEY))).toEqual([
        { n: 1, from: result.from },
      ]);
      // Same ids, data, positions, seqs; only hlc, time and cursor changed.
      const moved = [...ahead, later!];
      for (const [i, r] of result.changed.entries()) {
        const { hlc: _h, time: _t, cursor: _c, ...rest } = r.event;
        const { hlc: _h2, time: _t2, cursor: _c2, ...before } = moved[i]!.event;
        expect(rest).toEqual(before);
        expect(r.pos).toBe(moved[i]!.pos);
      }
      const order = (await all(log)).map((r) => r.pos);
      expect(order).toEqual([1, 2, 3, 4, 5]);
      expect((await log.readByPos(0, 10)).map((r) => r.event.hlc)).toEqual(
        (await all(log)).sort((a, b) => a.pos - b.pos).map((r) => r.event.hlc),
      );
      expect((await log.getByIds([later!.event.id]))[0]?.event.time).toBe(NOW - 5_000);
      expect((await log.readByCursor({ stream: 'mine', limit: 10 })).map((r) => r.pos)).toEqual([
        2, 3, 5,
      ]);
      expect((await log.clock()).wall).toBe(NOW - 5_000);
      const [next] = await appendAt(log, 'mine', NOW + 1);
      expect(next!.event.time).toBe(NOW + 1);
    });

    it('keeps causal order: a shifted event lands after every event at a lower position (R2, R5)', async () => {
      const log = await open();
      const [a] = await appendAt(log, 'mine', NOW + YEAR);
      await ingestAt(log, 1, NOW - 1_000);
      const [b] = await appendAt(log, 'mine', NOW + YEAR + 1);
      const { changed } = await log.restamp({
        sharedSeq: 0,
        now: NOW,
        maxClockAheadMs: AHEAD,
        shift: -YEAR - 60_000,
      });
      expect(changed.map((r) => r.event.id)).toEqual([a!.event.id, b!.event.id]);
      const order = (await all(log)).map((r) => r.event.id);
      expect(order).toEqual(
        [a!.event.id, `remote-1`, b!.event.id].map((id) => (id === 'remote-1' ? order[1]! : id)),
      );
      expect(order[1]).not.toBe(a!.event.id);
      expect(changed[1]!.event.cursor > changed[0]!.event.cursor).toBe(true);
      const remote = (await all(log)).find((r) => r.event.replica === REMOTE)!;
      expect(changed[1]!.event.cursor > remote.event.cursor).toBe(true);
    });

    it('never moves shared own events, remote events or events within the tolerance, and is idempotent (R1, R6)', async () => {
      const log = await open();
      await appendAt(log, 'mine', NOW - 1_000, 2);
      await appendAt(log, 'mine', NOW + YEAR);
      await log.ingest({
        events: [storedEvent({ replica: REMOTE, seq: 1, wall: NOW + YEAR + 5, stream: 'r' })],
        now: NOW + YEAR,
        maxClockDriftMs: DAY,
      });
      const before = await all(log);
      const first = await log.restamp({ sharedSeq: 2, now: NOW, maxClockAheadMs: AHEAD });
      expect(first.changed.map((r) => r.event.seq)).toEqual([3]);
      // Without a server's shift the latest candidate lands at now.
      expect(first.changed[0]!.event.time).toBe(NOW);
      const after = await all(log);
      const unchanged = (r: LocalRecord) => r.event.seq !== 3 || r.event.replica === REMOTE;
      expect(after.filter(unchanged)).toEqual(before.filter(unchanged));
      expect(after.map((r) => r.pos)).toEqual([1, 2, 3, 4]);
      const again = await log.restamp({ sharedSeq: 2, now: NOW, maxClockAheadMs: AHEAD });
      expect(again.changed).toEqual([]);
      expect(await all(log)).toEqual(after);
      const none = await log.restamp({ sharedSeq: 0, now: NOW + 2 * YEAR, maxClockAheadMs: AHEAD });
      expect(none.changed).toEqual([]);
    });

    it('keeps the followers of a shared own event after it, however far ahead it is (R2)', async () => {
      const log = await open();
      await appendAt(log, 'mine', NOW + YEAR, 3);
      const { changed } = await log.restamp({
        sharedSeq: 2,
        now: NOW,
        maxClockAheadMs: AHEAD,
        shift: -YEAR,
      });
      expect(changed).toEqual([]);
    });

    it('splits a stored segment that moved events now fall inside, and reads stay whole (A3, A4)', async () => {
      const log = await open();
      await appendAt(log, 'mine', NOW + YEAR - 300, 3);
      await log.ingest({
        events: [-500, -400, -200, -100, -50].map((d, i) =>
          storedEvent({ replica: REMOTE, seq: i + 1, wall: NOW + d, stream: 'r' }),
        ),
        now: NOW,
        maxClockDriftMs: DAY,
      });
      const { changed } = await log.restamp({
        sharedSeq: 0,
        now: NOW,
        maxClockAheadMs: AHEAD,
        shift: -YEAR,
      });
      expect(changed.map((r) => r.event.seq)).toEqual([1, 2, 3]);
      for (const r of changed) expect(hlcWall(r.event.hlc)).toBe(NOW - 300);
      const byCursor = await all(log);
      expect(byCursor.map((r) => r.pos)).toEqual([4, 5, 1, 2, 3, 6, 7, 8]);
      const cursors = byCursor.map((r) => r.event.cursor);
      expect([...cursors].sort()).toEqual(cursors);
      const byPos = await log.readByPos(0, 100);
      expect(byPos.map((r) => r.pos)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(byPos.slice(0, 3).map((r) => r.event.cursor)).toEqual(
        changed.map((r) => r.event.cursor),
      );
      const remote = await log.readByCursor({ stream: 'r', limit: 100 });
      expect(remote.map((r) => r.event.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(await log.minCursorSince(3)).toBe(byCursor[0]!.event.cursor);
      const reversed = await log.readByCursor({ reverse: true, limit: 100 });
      expect(reversed.map((r) => r.event.cursor)).toEqual([...cursors].reverse());
      const page = await log.readByCursor({ after: cursors[1]!, limit: 2 });
      expect(page.map((r) => r.pos)).toEqual([1, 2]);
    });
  });
}
