/**
 * The discard part of the storage conformance suite (storageConformance calls it for every
 * adapter: memory, fake-indexeddb, real Chromium and Firefox IndexedDB): own events that the
 * authority of their strict stream rejected leave the log (src/storage/adapter.ts `discard`).
 * Imports only vitest, src and test/fixtures.
 */
import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { ReplicaId } from '../../src/core/ids.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { parseRewrites, REWRITES_META_KEY } from '../../src/storage/rewrites.ts';
import { storedEvent } from '../fixtures/events.ts';

const OTHER = ReplicaId.parse('discard000000009');
const NOW = 1_700_000_000_000;

async function append(log: EventLog, stream: string, n: number, now = NOW): Promise<LocalRecord[]> {
  const result = await log.appendLocal({
    stream,
    events: Array.from({ length: n }, (_, i) => ({ type: 'Added', data: { i }, schema: 1 })),
    expectedVersion: 'any',
    now,
  });
  if (result.kind !== 'written') throw new Error('expected a write');
  return result.records;
}

const named = (records: readonly LocalRecord[]) =>
  records.map((r) => ({ id: r.event.id as string, seq: r.event.seq as number }));

export function discardConformance(
  fresh: () => Promise<{ adapter: StorageAdapter; log: EventLog }>,
  reopen: (adapter: StorageAdapter) => Promise<EventLog>,
): void {
  const open = async () => (await fresh()).log;
  describe('discard (events the authority of a strict stream rejected, issue 19)', () => {
    it('takes own events out, leaves holes in receive order, and gives their streams back the version they still hold', async () => {
      const log = await open();
      const kept = await append(log, 'a', 2);
      const other = await append(log, 'b', 1);
      const rejected = await append(log, 'a', 2);
      const after = await append(log, 'b', 1);
      expect(await log.streamVersion('a')).toBe(4);
      const removed = await log.discard(named(rejected));
      expect(removed.map((r) => r.pos)).toEqual(rejected.map((r) => r.pos));
      expect(await log.streamVersion('a')).toBe(2);
      expect(await log.streamVersion('b')).toBe(2);
      const byPos = await log.readByPos(0, 100);
      expect(byPos.map((r) => r.pos)).toEqual([...kept, ...other, ...after].map((r) => r.pos));
      expect((await log.readByCursor({ stream: 'a', limit: 100 })).map((r) => r.event.id)).toEqual(
        kept.map((r) => r.event.id),
      );
      expect(await log.getByIds(rejected.map((r) => r.event.id))).toEqual([undefined, undefined]);
      expect(await log.headPos()).toBe(after[0]!.pos);
      // The next append takes the version back and a new position; the seq moves on.
      const [next] = await append(log, 'a', 1);
      expect(next!.event.version).toBe(3);
      expect(next!.pos).toBe(after[0]!.pos + 1);
      expect(next!.event.seq).toBe(after[0]!.event.seq + 1);
      // A page over the holes still holds `limit` records when that many follow (A3).
      expect((await log.readByPos(0, 4)).length).toBe(4);
    });

    it('skips what it must not take: an id not held, a held id at another seq, another replica’s event', async () => {
      const log = await open();
      const [mine] = await append(log, 'a', 1);
      const theirs = storedEvent({
        replica: OTHER,
        seq: 1,
        wall: NOW - 1000,
        stream: 'a',
        version: 2,
      });
      await log.ingest({ events: [theirs], now: NOW, maxClockDriftMs: 60_000 });
      const removed = await log.discard([
        { id: 'not-held', seq: 1 },
        { id: mine!.event.id, seq: mine!.event.seq + 1 },
        { id: theirs.id, seq: 1 },
      ]);
      expect(removed).toEqual([]);
      expect((await log.readByPos(0, 10)).length).toBe(2);
      expect(await log.discard([])).toEqual([]);
    });

    it('takes out an own event under the replica id the log had before it moved to a fresh one, when named with it', async () => {
      const log = await open();
      const [mine] = await append(log, 'a', 1);
      const old = log.replicaId;
      // Another copy of the own (replica, seq), stamped later (a restored backup's earlier
      // self): the own copy stays, and the log moves to a fresh id (core/append.ts invariant 8).
      const earlier = storedEvent({
        replica: old,
        seq: 1,
        wall: NOW + 1000,
        stream: 'a',
        version: 1,
      });
      await log.ingest({
        events: [{ ...earlier, id: 'earlier-self' as typeof earlier.id }],
        now: NOW + 2000,
        maxClockDriftMs: 60_000,
      });
      expect(log.replicaId).not.toBe(old);
      expect(await log.discard(named([mine!]))).toEqual([]);
      const removed = await log.discard([{ id: mine!.event.id, seq: 1, replica: old }]);
      expect(removed.map((r) => r.event.id)).toEqual([mine!.event.id]);
      expect(await log.getByIds([mine!.event.id])).toEqual([undefined]);
      expect(await log.streamVersion('a')).toBe(0);
    });

    it('comes back down past a version an ingest flagged as a possible conflict', async () => {
      const log = await open();
      await append(log, 'a', 1);
      const [tentative] = await append(log, 'a', 1);
      // The authority's winner at the same version arrives before the rejection.
      const winner = storedEvent({
        replica: OTHER,
        seq: 1,
        wall: NOW - 500,
        stream: 'a',
        version: 2,
      });
      await log.ingest({ events: [winner], now: NOW, maxClockDriftMs: 60_000 });
      const [later] = await append(log, 'a', 1);
      expect(later!.event.version).toBe(3);
      await log.discard(named([tentative!, later!]));
      expect(await log.streamVersion('a')).toBe(2);
      const left = await log.readByCursor({ stream: 'a', limit: 10 });
      expect(left.map((r) => r.event.replica).sort()).toEqual([log.replicaId, OTHER].sort());
    });

    it('another handle on the database (another tab) appends at the version given back', async () => {
      const { adapter, log } = await fresh();
      const other = await reopen(adapter);
      await append(other, 'a', 1);
      const records = await append(other, 'a', 2);
      // A later write of that handle: the discard leaves the head and the largest cursor as
      // they were, so only the check of the handle's cached versions can see it.
      await append(other, 'b', 1);
      await log.discard(named(records));
      const [next] = await append(other, 'a', 1);
      expect(next!.event.version).toBe(2);
    });

    it('tells another handle on the database where its folds may no longer hold (adapter.ts onRemoteWrite)', async () => {
      const { adapter, log } = await fresh();
      const other = await reopen(adapter);
      const heard: (string | undefined)[] = [];
      other.onRemoteWrite((_head, rewrittenFrom) => heard.push(rewrittenFrom));
      await append(log, 'a', 1);
      const records = await append(log, 'a', 2);
      await log.discard(named(records));
      const deadline = Date.now() + 2000;
      while (!heard.some((f) => f !== undefined) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(heard.filter((f) => f !== undefined)).toEqual([records[0]!.event.cursor]);
      // And in the log, for a handle whose notice was lost (storage/rewrites.ts).
      const rewrites = parseRewrites(await other.getMeta(REWRITES_META_KEY));
      expect(rewrites.at(-1)).toEqual({ n: rewrites.length, from: records[0]!.event.cursor });
    });

    it('survives a reopen of the same database', async () => {
      const { adapter, log } = await fresh();
      const records = await append(log, 'a', 3);
      await log.discard(named(records.slice(1)));
      const again = await reopen(adapter);
      expect((await again.readByPos(0, 10)).map((r) => r.event.id)).toEqual([records[0]!.event.id]);
      expect(await again.streamVersion('a')).toBe(1);
    });
  });
}
