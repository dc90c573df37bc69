/**
 * Storage conformance, colliding copies (RELIABILITY 34 and 35; core/copies.ts C1..C4): one id
 * with two payloads, or one (replica, seq) under two ids, reach a replica from peers. Every
 * adapter keeps the same copy whatever the arrival order, stores the rest of the batch, reports
 * the loser, and keeps positions readable across the hole a removed loser leaves (adapter.ts A3).
 * Called from storageConformance, so it runs on memory, fake-indexeddb and Chromium IndexedDB.
 */
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';

const DAY = 86_400_000;
const PEER = 'peerreplica00001';

function ingest(log: EventLog, events: StoredEventRecord[]) {
  return log.ingest({ events, now: 1_000, maxClockDriftMs: DAY });
}

const ids = async (log: EventLog) => (await log.readByPos(0, 100)).map((r) => r.event.id);

export function copyConformance(
  factory: () => StorageAdapter,
  options: { opaquePayloads?: boolean } = {},
): void {
  const open = () => factory().open();

  describe('colliding copies (RELIABILITY 34, 35)', () => {
    it('C1: refuses no batch over a reused (replica, seq): keeps the copy first in the total order and stores the rest', async () => {
      // A hostile or restored writer: two ids at (PEER, 1) with the same wall time, and a
      // correct event after them. IndexedDB used to fail every such batch ("two different
      // events share the cursor") and its replica reconnected for ever.
      const a = storedEvent({ replica: PEER, seq: 1, wall: 2_000, id: 'evt-a', data: 'a' });
      const b = storedEvent({ replica: PEER, seq: 1, wall: 2_000, id: 'evt-b', data: 'b' });
      const next = storedEvent({ replica: PEER, seq: 2, wall: 2_001, id: 'evt-next' });
      const kept: string[][] = [];
      for (const order of [
        [a, b, next],
        [b, a, next],
      ]) {
        const log = await open();
        const result = await ingest(log, order);
        // Equal cursors: the canonical JSON decides ("evt-a" sorts first).
        const held = await ids(log);
        kept.push(held);
        const winner = options.opaquePayloads ? held[0] : 'evt-a';
        const loser = winner === 'evt-a' ? 'evt-b' : 'evt-a';
        expect(held).toEqual([winner, 'evt-next']);
        expect(result.lost.map((l) => [l.code, l.event.id])).toEqual([['SEQ_CONFLICT', loser]]);
        await log.close();
      }
      expect(kept[0]).toEqual(kept[1]);
    });

    it('C1: a reused (replica, seq) arriving in a later batch keeps the same copy in either order', async () => {
      const early = storedEvent({ replica: PEER, seq: 3, wall: 2_000, id: 'early' });
      const late = storedEvent({ replica: PEER, seq: 3, wall: 9_000, id: 'late' });
      const other = storedEvent({ replica: PEER, seq: 4, wall: 9_001, id: 'other' });
      for (const [first, second] of [
        [early, late],
        [late, early],
      ] as const) {
        const log = await open();
        await ingest(log, [first]);
        const result = await ingest(log, [second, other]);
        expect((await log.readByCursor({ limit: 10 })).map((r) => r.event.id)).toEqual([
          'early',
          'other',
        ]);
        expect(result.lost).toMatchObject([
          { code: 'SEQ_CONFLICT', keptId: 'early', held: first === late },
        ]);
        expect((await log.getByIds(['late']))[0]).toBeUndefined();
        await log.close();
      }
    });

    it('C1: two ids sharing one cursor in two batches (a server written before SEQ_CONFLICT) keep the same copy in either order', async () => {
      const a = storedEvent({ replica: PEER, seq: 9, wall: 2_000, id: 'evt-a', data: 'a' });
      const b = storedEvent({ replica: PEER, seq: 9, wall: 2_000, id: 'evt-b', data: 'b' });
      const after = storedEvent({ replica: PEER, seq: 10, wall: 2_001, id: 'after' });
      const kept: string[][] = [];
      for (const [first, second] of [
        [a, b],
        [b, a],
      ] as const) {
        const log = await open();
        await ingest(log, [first]);
        const result = await ingest(log, [second, after]);
        const ids = (await log.readByCursor({ limit: 10 })).map((r) => r.event.id);
        kept.push(ids);
        const winner = options.opaquePayloads ? ids[0] : 'evt-a';
        expect(ids).toEqual([winner, 'after']);
        expect(result.lost).toMatchObject([{ code: 'SEQ_CONFLICT', keptId: winner }]);
        await log.close();
      }
      expect(kept[0]).toEqual(kept[1]);
    });

    it('C1, C3: one id with two payloads ends as the same copy in either order; a held loser leaves and the winner takes a new position', async () => {
      // A and C append `doc-title-v1` offline; A's copy sorts first.
      const fromA = storedEvent({
        replica: 'replicaaaaaaaaaa',
        seq: 1,
        wall: 2_000,
        id: 'doc-title-v1',
        data: { title: 'from A' },
      });
      const fromC = storedEvent({
        replica: 'replicacccccccccc',
        seq: 1,
        wall: 3_000,
        id: 'doc-title-v1',
        data: { title: 'from C' },
      });
      const before = storedEvent({ replica: PEER, seq: 1, wall: 1_500, id: 'before' });
      for (const order of [
        [fromA, fromC],
        [fromC, fromA],
      ]) {
        const log = await open();
        await ingest(log, [before, order[0]!]);
        const result = await ingest(log, [order[1]!]);
        const [held] = await log.getByIds(['doc-title-v1']);
        expect(held?.event.data).toEqual({ title: 'from A' });
        expect(result.lost).toMatchObject([
          { code: 'ID_CONFLICT', keptId: 'doc-title-v1', held: order[0] === fromC },
        ]);
        expect(result.lost[0]?.event.data).toEqual({ title: 'from C' });
        if (order[0] === fromC) {
          // The loser sat at position 2: the winner is at 3, and position 2 is a hole.
          expect(held?.pos).toBe(3);
          expect(result.removed.map((r) => r.pos)).toEqual([2]);
          expect(result.written.map((r) => r.pos)).toEqual([3]);
        } else {
          expect(held?.pos).toBe(2);
        }
        expect((await log.readByPos(0, 10)).map((r) => r.event.data)).toEqual([
          null,
          { title: 'from A' },
        ]);
        expect((await log.readByCursor({ limit: 10 })).map((r) => r.event.data)).toEqual([
          null,
          { title: 'from A' },
        ]);
        await log.close();
      }
    });

    it("append invariant 9: a held strict event that loses to a copy takes its stream's version down with it; a plain loser's stream keeps it", async () => {
      // A restored device wrote `enter` at a slot its former self had used for `withdraw`,
      // which the server holds and which comes back: the restored copy loses the slot.
      const strict = { $strict: true };
      const enter = storedEvent({
        replica: PEER,
        seq: 3,
        wall: 9_000,
        stream: 'column-doing',
        version: 1,
        meta: strict,
      });
      const withdraw = storedEvent({
        replica: PEER,
        seq: 3,
        wall: 2_000,
        stream: 'account-0',
        version: 2,
        meta: strict,
      });
      const adapter = factory();
      const log = await adapter.open();
      await ingest(log, [enter]);
      expect(await log.streamVersion('column-doing')).toBe(1);
      const result = await ingest(log, [withdraw]);
      expect(result.lost).toMatchObject([{ held: true, event: { stream: 'column-doing' } }]);
      expect(await log.streamVersion('column-doing')).toBe(0);
      expect(await log.streamVersion('account-0')).toBe(2);
      await log.close();
      // Reopened from storage: the version stays down.
      const again = await adapter.open();
      expect(await again.streamVersion('column-doing')).toBe(0);
      await again.close();

      // Not strict: the stream keeps the version the loser gave it (append invariant 4).
      const plain = await open();
      const { meta: _enterMeta, ...plainEnter } = enter;
      const { meta: _withdrawMeta, ...plainWithdraw } = withdraw;
      await ingest(plain, [plainEnter]);
      await ingest(plain, [plainWithdraw]);
      expect(await plain.streamVersion('column-doing')).toBe(1);
      await plain.close();
    });

    it('A3: pages through receive order across the holes of removed losers, a short page only at the head', async () => {
      const log = await open();
      const event = (seq: number, wall: number, id = `e${seq}`, data: string | null = null) =>
        storedEvent({ replica: PEER, seq, wall, id, data });
      // Positions 1..6, then the copies at 2 and 4 lose to earlier copies of their ids.
      await ingest(
        log,
        [1, 2, 3, 4, 5, 6].map((seq) => event(seq, 5_000 + seq)),
      );
      await ingest(log, [
        storedEvent({ replica: 'otherreplica0001', seq: 1, wall: 1_000, id: 'e2', data: 'w2' }),
        storedEvent({ replica: 'otherreplica0001', seq: 2, wall: 1_001, id: 'e4', data: 'w4' }),
      ]);
      const all = await log.readByPos(0, 100);
      expect(all.map((r) => [r.event.id, r.pos])).toEqual([
        ['e1', 1],
        ['e3', 3],
        ['e5', 5],
        ['e6', 6],
        ['e2', 7],
        ['e4', 8],
      ]);
      // Every page is full but the last, whatever the holes inside it.
      expect((await log.readByPos(0, 2)).map((r) => r.pos)).toEqual([1, 3]);
      expect((await log.readByPos(1, 2)).map((r) => r.pos)).toEqual([3, 5]);
      expect((await log.readByPos(3, 3)).map((r) => r.pos)).toEqual([5, 6, 7]);
      expect((await log.readByPos(7, 3)).map((r) => r.pos)).toEqual([8]);
      expect(await log.headPos()).toBe(8);
      // The winners sort first: the smallest cursor received after position 6 is theirs.
      expect(await log.minCursorSince(6)).toBe(all[4]!.event.cursor);
      await log.close();
    });

    it('append invariant 8: two copies of one of its own events move the replica to a fresh id for every handle, seq restarting at 1', async () => {
      const adapter = factory();
      const log = await adapter.open();
      const other = await adapter.open();
      const me = log.replicaId;
      const mine = await log.appendLocal({
        stream: 's',
        events: [{ type: 'Added', data: 'restored', schema: 1 }],
        expectedVersion: 'any',
        now: 5_000,
      });
      expect(mine).toMatchObject({ kind: 'written', records: [{ event: { seq: 1 } }] });
      // The world's copy of (me, 1), stamped earlier: the original of a restored backup.
      const original = storedEvent({ replica: me, seq: 1, wall: 1_000, data: 'original' });
      const result = await ingest(log, [original]);
      expect(result.lost).toMatchObject([{ code: 'ID_CONFLICT', held: true }]);
      expect(log.replicaId).not.toBe(me);
      const next = await other.appendLocal({
        stream: 's',
        events: [{ type: 'Added', data: 'after', schema: 1 }],
        expectedVersion: 'any',
        now: 6_000,
      });
      expect(next).toMatchObject({
        kind: 'written',
        records: [{ event: { replica: log.replicaId, seq: 1 } }],
      });
      expect(other.replicaId).toBe(log.replicaId);
      await log.close();
      await other.close();
      const reopened = await adapter.open();
      expect(reopened.replicaId).toBe(
        next.kind === 'written' ? next.records[0]!.event.replica : '',
      );
      await reopened.close();
    });

    it('C3: a held loser reopened from storage stays gone, and its slot and id belong to the winner', async () => {
      const adapter = factory();
      const log = await adapter.open();
      const late = storedEvent({ replica: PEER, seq: 1, wall: 9_000, id: 'x', data: 'late' });
      const early = storedEvent({
        replica: 'otherreplica0001',
        seq: 1,
        wall: 1_000,
        id: 'x',
        data: 'early',
      });
      await ingest(log, [late]);
      await ingest(log, [early]);
      await log.close();
      const again = await adapter.open();
      // The same copies again change nothing.
      const result = await ingest(again, [late, early]);
      expect(result.written).toEqual([]);
      expect(result.lost).toMatchObject([{ code: 'ID_CONFLICT', held: false, event: late }]);
      expect((await again.readByPos(0, 10)).map((r) => r.event.data)).toEqual(['early']);
      // The freed slot (PEER, 1) takes a new event.
      const reuse = storedEvent({ replica: PEER, seq: 1, wall: 9_500, id: 'y' });
      expect((await ingest(again, [reuse])).written.map((r) => r.event.id)).toEqual(['y']);
      await again.close();
    });
  });
}
