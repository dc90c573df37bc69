/**
 * The ServerStorage conformance suite (src/server/storage.ts). Every implementation runs it:
 * add yours to the list in storage.test.ts. Test names cite the invariants of storage.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors.ts';
import type { StoredEventRecord } from '../../src/core/events.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvent, makeEvents } from './events.ts';
import { copyConformance } from './storage-conformance-copies.ts';
import { publishingConformance } from './storage-conformance-publishing.ts';
import { strictConformance } from './storage-conformance-strict.ts';

export interface StorageFixture {
  storage: ServerStorage;
  /** Closes `storage` and opens the same database again; absent for non-persistent ones. */
  reopen?: () => Promise<ServerStorage>;
  /** Another storage on the same database (a second server), where there can be one. */
  second?: () => ServerStorage;
  cleanup(): Promise<void>;
}

export interface StorageImplementation {
  name: string;
  make(): Promise<StorageFixture>;
}

export function runServerStorageConformance(implementations: StorageImplementation[]): void {
  describe.each(implementations)('ServerStorage conformance: $name', (impl) => {
    let fixture: StorageFixture;
    let storage: ServerStorage;

    beforeEach(async () => {
      fixture = await impl.make();
      storage = fixture.storage;
    });
    afterEach(async () => {
      await storage.close().catch(() => {});
      await fixture.cleanup();
    });

    copyConformance(() => storage);
    strictConformance(
      () => storage,
      () => fixture.second?.(),
      () =>
        fixture.reopen === undefined
          ? undefined
          : async () => {
              storage = await fixture.reopen!();
              return storage;
            },
    );

    publishingConformance(
      () => storage,
      () =>
        fixture.reopen === undefined
          ? undefined
          : async () => {
              storage = await fixture.reopen!();
              return storage;
            },
    );

    it('gives each space its own replica id and epoch, and one shared log per space (2, 5)', async () => {
      const a = await storage.openSpace('a');
      const b = await storage.openSpace('b');
      expect(await storage.openSpace('a')).toBe(a);
      expect(a.space).toBe('a');
      expect(a.replicaId).not.toBe(b.replicaId);
      expect(await a.epoch()).not.toBe(await b.epoch());
      expect(await a.headPos()).toBe(0);
      expect(await a.ownSeq()).toBe(0);
      expect(await a.idAtPos(1)).toBeUndefined();
    });

    it('stores new events at dense positions from 1 and pages through them (3)', async () => {
      const log = await storage.openSpace('s');
      const events = makeEvents(5);
      const first = await log.ingest(events.slice(0, 3));
      expect(first.written.map((r) => r.pos)).toEqual([1, 2, 3]);
      expect(first.skewed).toBe(false);
      const second = await log.ingest(events.slice(3));
      expect(second.written.map((r) => r.pos)).toEqual([4, 5]);
      expect(await log.headPos()).toBe(5);
      const page = await log.readByPos(1, 2);
      expect(page.map((r) => r.pos)).toEqual([2, 3]);
      expect(page.map((r) => r.event)).toEqual(events.slice(1, 3));
      expect(await log.readByPos(5, 10)).toEqual([]);
      expect(await log.idAtPos(4)).toBe(events[3]!.id);
      expect(await log.idAtPos(6)).toBeUndefined();
    });

    it('stores an id once, however often and however late it is sent (3)', async () => {
      const log = await storage.openSpace('s');
      const [a, b, c] = makeEvents(3);
      await log.ingest([a!, b!]);
      const again = await log.ingest([b!, a!, c!, c!]);
      expect(again.written.map((r) => [r.event.id, r.pos])).toEqual([[c!.id, 3]]);
      expect((await log.ingest([a!, b!, c!])).written).toEqual([]);
      expect(await log.headPos()).toBe(3);
    });

    it('dedupes and numbers a large batch across lookup and insert chunks (3)', async () => {
      const log = await storage.openSpace('s');
      const events = makeEvents(150);
      const held = events.filter((_, i) => i % 7 === 0);
      await log.ingest(held);
      // Held ones scattered through the batch, and repeats of new ones in it.
      const batch = [...events, ...events.slice(100, 110)];
      const again = await log.ingest(batch);
      const fresh = events.filter((_, i) => i % 7 !== 0);
      expect(again.written.map((r) => r.event.id)).toEqual(fresh.map((e) => e.id));
      expect(again.written.map((r) => r.pos)).toEqual(fresh.map((_, i) => held.length + i + 1));
      const all = await log.readByPos(0, 1000);
      expect(all.map((r) => r.pos)).toEqual(events.map((_, i) => i + 1));
      expect(new Set(all.map((r) => r.event.id)).size).toBe(150);
    });

    it('stores a batch whose only held id comes last, after whole insert chunks, exactly once (3)', async () => {
      const log = await storage.openSpace('s');
      const events = makeEvents(101);
      await log.ingest([events[100]!]);
      const again = await log.ingest(events);
      expect(again.written.map((r) => r.pos)).toEqual(events.slice(0, 100).map((_, i) => i + 2));
      expect(await log.headPos()).toBe(101);
      const all = await log.readByPos(0, 1000);
      expect(all.map((r) => r.event.id)).toEqual([
        events[100]!.id,
        ...events.slice(0, 100).map((e) => e.id),
      ]);
      expect(all.map((r) => r.pos)).toEqual(events.map((_, i) => i + 1));
    });

    it('stores an id sent by two ingests at once once, for the one handed over first (3)', async () => {
      const log = await storage.openSpace('s');
      const [x, y, z] = makeEvents(3);
      const [first, second] = await Promise.all([log.ingest([x!, y!]), log.ingest([y!, z!, x!])]);
      expect(first.written.map((r) => [r.event.id, r.pos])).toEqual([
        [x!.id, 1],
        [y!.id, 2],
      ]);
      expect(second.written.map((r) => [r.event.id, r.pos])).toEqual([[z!.id, 3]]);
      expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual([x!.id, y!.id, z!.id]);
    });

    it('writes ingests handed over together each whole or not at all: one failing stores nothing, the others take dense positions (3, 5)', async () => {
      const a = await storage.openSpace('a');
      const b = await storage.openSpace('b');
      const heads: number[] = [];
      a.onAppend((head) => heads.push(head));
      // No storage can store an event without an id: that ingest fails where it is written.
      const broken = { ...makeEvent({ replica: 'three', seq: 3 }), id: undefined as never };
      const results = await Promise.allSettled([
        a.ingest(makeEvents(3, { replica: 'one' })),
        b.ingest(makeEvents(2, { replica: 'two' })),
        a.ingest([...makeEvents(2, { replica: 'three' }), broken]),
        a.ingest(makeEvents(1, { replica: 'four' })),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect(results[2]).toMatchObject({ reason: { code: 'STORAGE' } });
      expect(heads).toEqual([3, 4]);
      const expected = [
        [1, 'one'],
        [2, 'one'],
        [3, 'one'],
        [4, 'four'],
      ];
      const check = async (s: ServerStorage) => {
        const stored = await (await s.openSpace('a')).readByPos(0, 10);
        expect(stored.map((r) => [r.pos, r.event.replica])).toEqual(expected);
        expect(await (await s.openSpace('a')).headPos()).toBe(4);
        expect(await (await s.openSpace('b')).headPos()).toBe(2);
      };
      await check(storage);
      if (fixture.reopen === undefined) return;
      storage = await fixture.reopen();
      await check(storage);
    });

    it('commits the ingests handed over before close() (graceful shutdown)', async () => {
      const log = await storage.openSpace('s');
      const events = makeEvents(3);
      const pending = log.ingest(events);
      await storage.close();
      expect((await pending).written.map((r) => r.pos)).toEqual([1, 2, 3]);
      if (fixture.reopen === undefined) return;
      storage = await fixture.reopen();
      expect((await (await storage.openSpace('s')).readByPos(0, 10)).map((r) => r.event)).toEqual(
        events,
      );
    });

    it('keeps spaces disjoint (1)', async () => {
      const a = await storage.openSpace('a');
      const b = await storage.openSpace('b');
      const [event] = makeEvents(1);
      await a.ingest([event!]);
      expect(await b.headPos()).toBe(0);
      expect(await b.readByPos(0, 10)).toEqual([]);
      // The same id in another space is a different event slot.
      expect((await b.ingest([event!])).written.map((r) => r.pos)).toEqual([1]);
      await a.setCheckpoint('peer', { epoch: 'e', pos: 1, id: event!.id });
      expect(await b.getCheckpoint('peer')).toBeUndefined();
    });

    it('round-trips events exactly, with meta, schema and __proto__ keys as plain data (case 28)', async () => {
      const log = await storage.openSpace('s');
      const data = JSON.parse(
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"list":[1,"two",null,{"deep":[true]}]}',
      );
      const event = {
        ...makeEvent({ data, meta: JSON.parse('{"__proto__":{"admin":true}}') }),
        schema: 3,
      };
      await log.ingest([event]);
      const check = (stored: StoredEventRecord) => {
        expect(stored).toEqual(event);
        const storedData = stored.data as Record<string, unknown>;
        expect(Object.hasOwn(storedData, '__proto__')).toBe(true);
        expect(Object.getPrototypeOf(storedData)).toBe(Object.prototype);
        expect(JSON.stringify(stored)).toBe(JSON.stringify(event));
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(({} as Record<string, unknown>).admin).toBeUndefined();
      };
      check((await log.readByPos(0, 1))[0]!.event);
      if (fixture.reopen === undefined) return;
      // From the database itself, not from what the storage keeps of its last writes.
      storage = await fixture.reopen();
      check((await (await storage.openSpace('s')).readByPos(0, 1))[0]!.event);
    });

    it('round-trips ids, streams and types holding NUL and emoji, and data holding lone surrogates, exactly', async () => {
      const log = await storage.openSpace('s');
      // Names with lone surrogates are refused by validation (validate.ts); data may hold them.
      const odd = 'a\u0000b😀c';
      const data = { odd, lone: 'x\ud800y\udfffz' };
      const event = {
        ...makeEvent({ data }),
        id: `id-${odd}`,
        stream: `stream-${odd}`,
        type: `type-${odd}`,
      };
      await log.ingest([event as never]);
      expect((await log.readByPos(0, 1))[0]!.event).toEqual(event);
      if (fixture.reopen === undefined) return;
      // From the database itself, not from what the storage keeps of its last writes.
      storage = await fixture.reopen();
      const again = await storage.openSpace('s');
      expect((await again.readByPos(0, 1))[0]!.event).toEqual(event);
    });

    it('keeps checkpoints per peer', async () => {
      const log = await storage.openSpace('s');
      expect(await log.getCheckpoint('p1')).toBeUndefined();
      await log.setCheckpoint('p1', { epoch: 'e1', pos: 3, id: 'x' });
      await log.setCheckpoint('p2', { epoch: 'e2', pos: 0 });
      await log.setCheckpoint('p1', { epoch: 'e1', pos: 7, id: 'y' });
      expect(await log.getCheckpoint('p1')).toEqual({ epoch: 'e1', pos: 7, id: 'y' });
      expect(await log.getCheckpoint('p2')).toEqual({ epoch: 'e2', pos: 0 });
    });

    it('tells every listener of the space its new head after a write, not after a duplicate (5)', async () => {
      const log = await storage.openSpace('s');
      const heads: number[] = [];
      const other: number[] = [];
      const stop = log.onAppend((h) => heads.push(h));
      (await storage.openSpace('s')).onAppend((h) => other.push(h));
      const events = makeEvents(3);
      await log.ingest(events.slice(0, 2));
      await log.ingest(events.slice(0, 2));
      stop();
      await log.ingest(events.slice(2));
      expect(heads).toEqual([2]);
      expect(other).toEqual([2, 3]);
    });

    it('reports events whose clock is more than a day ahead as skewed, and stores them', async () => {
      const log = await storage.openSpace('s');
      const future = makeEvent({ wall: Date.now() + 3 * 24 * 3600 * 1000 });
      const result = await log.ingest([future]);
      expect(result.skewed).toBe(true);
      expect(result.written).toHaveLength(1);
    });

    it('gives a replica to the first subject that writes it and refuses it to others (4)', async () => {
      const log = await storage.openSpace('s');
      const alice = makeEvents(2, { replica: 'alicereplica0001' });
      expect(await log.claimOrigins('alice', alice)).toEqual({ ok: true });
      expect(await log.ownerOf('alicereplica0001')).toBe('alice');
      expect(await log.claimOrigins('alice', alice)).toEqual({ ok: true });
      const forged = makeEvent({ replica: 'alicereplica0001', seq: 3 });
      expect(await log.claimOrigins('mallory', [forged])).toEqual({
        ok: false,
        eventId: forged.id,
        replica: 'alicereplica0001',
      });
    });

    it('claims nothing from a refused batch (4)', async () => {
      const log = await storage.openSpace('s');
      await log.claimOrigins('alice', [makeEvent({ replica: 'alicereplica0001' })]);
      const batch = [
        makeEvent({ replica: 'freshreplica0001' }),
        makeEvent({ replica: 'alicereplica0001' }),
      ];
      expect((await log.claimOrigins('mallory', batch)).ok).toBe(false);
      expect(await log.ownerOf('freshreplica0001')).toBeUndefined();
    });

    it('never refuses events the space already holds: clients send back what they received (4)', async () => {
      const log = await storage.openSpace('s');
      const alice = makeEvents(2, { replica: 'alicereplica0001' });
      await log.claimOrigins('alice', alice);
      await log.ingest(alice);
      expect(await log.claimOrigins('bob', alice)).toEqual({ ok: true });
    });

    it("refuses another copy of a held event of another subject's replica: it could replace it (4)", async () => {
      const log = await storage.openSpace('s');
      const [original] = makeEvents(1, { replica: 'alicereplica0001' });
      await log.claimOrigins('alice', [original!]);
      await log.ingest([original!]);
      // Same id and origin, stamped earlier: the copy first in the total order would win.
      const forged = makeEvent({
        id: original!.id,
        replica: 'alicereplica0001',
        seq: original!.seq,
        wall: 1,
        data: { forged: true },
      });
      expect(await log.claimOrigins('mallory', [forged])).toEqual({
        ok: false,
        eventId: original!.id,
        replica: 'alicereplica0001',
      });
      // The very copy it holds is still never refused.
      expect(await log.claimOrigins('mallory', [original!])).toEqual({ ok: true });
    });

    it("refuses every subject events claiming the space's own replica id (4)", async () => {
      const log = await storage.openSpace('s');
      const forged = makeEvent({ replica: log.replicaId });
      expect((await log.claimOrigins('alice', [forged])).ok).toBe(false);
    });

    it('keeps ownership per space (1, 4)', async () => {
      const a = await storage.openSpace('a');
      const b = await storage.openSpace('b');
      const events = makeEvents(1, { replica: 'alicereplica0001' });
      await a.claimOrigins('alice', events);
      expect(await b.claimOrigins('bob', events)).toEqual({ ok: true });
      expect(await b.ownerOf('alicereplica0001')).toBe('bob');
    });

    it('persists ids, epoch, events, checkpoints and owners across a reopen (2)', async () => {
      if (fixture.reopen === undefined) return;
      const log = await storage.openSpace('s');
      const events = makeEvents(3, { replica: 'alicereplica0001' });
      await log.claimOrigins('alice', events);
      await log.ingest(events);
      await log.setCheckpoint('peer', { epoch: 'e', pos: 2, id: 'z' });
      const before = { replica: log.replicaId, epoch: await log.epoch() };
      storage = await fixture.reopen();
      const again = await storage.openSpace('s');
      expect({ replica: again.replicaId, epoch: await again.epoch() }).toEqual(before);
      expect(await again.headPos()).toBe(3);
      expect((await again.readByPos(0, 10)).map((r) => r.event)).toEqual(events);
      expect(await again.getCheckpoint('peer')).toEqual({ epoch: 'e', pos: 2, id: 'z' });
      expect(await again.ownerOf('alicereplica0001')).toBe('alice');
      expect((await again.ingest(events)).written).toEqual([]);
      expect(
        (await again.ingest(makeEvents(1, { replica: 'x', firstSeq: 9 }))).written[0]!.pos,
      ).toBe(4);
    });

    it('rejects calls after close with a StorageError', async () => {
      const log = await storage.openSpace('s');
      await storage.close();
      await expect(log.headPos()).rejects.toBeInstanceOf(StorageError);
      await expect(log.ingest(makeEvents(1))).rejects.toBeInstanceOf(StorageError);
      await expect(storage.openSpace('s')).rejects.toBeInstanceOf(StorageError);
    });

    it('refuses an empty or overlong space name', async () => {
      await expect(storage.openSpace('')).rejects.toBeInstanceOf(StorageError);
      await expect(storage.openSpace('x'.repeat(129))).rejects.toBeInstanceOf(StorageError);
    });
  });
}
