/**
 * The base part of the storage conformance suite (src/storage/adapter.ts invariant 7): a server
 * snapshot laid under an empty log, for a device that joins its space from one
 * (docs/storage-growth.md, core/space-join.ts). storageConformance runs it for the adapters that
 * install bases (memory, IndexedDB, the SQLite replica). Imports only vitest, src and
 * test/fixtures.
 */
import { describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../../src/core/errors.ts';
import { decodeHlc } from '../../src/core/hlc.ts';
import { ReplicaId } from '../../src/core/ids.ts';
import type { EventLog, LogBase, StorageAdapter } from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';

const A = ReplicaId.parse('baseremote000001');
const B = ReplicaId.parse('baseremote000002');
const C = ReplicaId.parse('baselate00000001');
const NOW = 1_700_000_000_000;
const drift = { now: NOW, maxClockDriftMs: 60_000 };

/** What a server snapshot of A:1..3 (stream 'x') and B:1..2 (stream 'y', conflicted) holds. */
function baseOf(): { base: LogBase; covered: ReturnType<typeof storedEvent>[] } {
  const covered = [
    storedEvent({ replica: A, seq: 1, wall: NOW - 9_000, stream: 'x', version: 1 }),
    storedEvent({ replica: A, seq: 2, wall: NOW - 8_000, stream: 'x', version: 2 }),
    storedEvent({ replica: B, seq: 1, wall: NOW - 7_500, stream: 'y', version: 1 }),
    storedEvent({ replica: A, seq: 3, wall: NOW - 7_000, stream: 'x', version: 3 }),
    storedEvent({ replica: B, seq: 2, wall: NOW - 6_000, stream: 'y', version: 1 }),
  ];
  const horizon = covered[4]!.cursor;
  return {
    covered,
    base: {
      horizon,
      vector: { [A]: 3, [B]: 2 },
      streams: [
        { stream: 'x', version: 3, conflict: false },
        { stream: 'y', version: 1, conflict: true },
      ],
      snapshots: [
        { projection: 'count', version: 2, cursor: horizon, pos: 0, count: 5, state: { n: 5 } },
      ],
      meta: { 'sync.checkpoint.server': { epoch: 'e1', pos: 5, id: covered[4]!.id } },
    },
  };
}

function install(log: EventLog, base: LogBase): Promise<boolean> {
  if (log.installBase === undefined) throw new Error('this adapter does not install bases');
  return log.installBase(base);
}

export function baseConformance(
  fresh: () => Promise<{ adapter: StorageAdapter; log: EventLog }>,
  reopen: (adapter: StorageAdapter) => Promise<EventLog>,
): void {
  describe('installing a server snapshot as a base (a device joining from one, issue 18)', () => {
    it('lays the horizon, vector, stream heads, clock, snapshots and meta under an empty log', async () => {
      const { log } = await fresh();
      const { base } = baseOf();
      expect(await install(log, base)).toBe(true);
      expect(await log.horizon?.()).toBe(base.horizon);
      expect(await log.baseVector?.()).toEqual(base.vector);
      expect(await log.headPos()).toBe(0);
      expect(await log.readByCursor({ limit: 10 })).toEqual([]);
      expect(await log.streamVersion('x')).toBe(3);
      expect(await log.streamVersion('y')).toBe(1);
      expect(await log.conflictStreams()).toEqual(['y']);
      const clock = await log.clock();
      expect(clock.wall).toBeGreaterThanOrEqual(decodeHlc(base.horizon.split('.')[0]!).wall);
      expect(await log.listSnapshots('count', 2)).toEqual([
        { projection: 'count', version: 2, cursor: base.horizon, pos: 0, count: 5 },
      ]);
      expect((await log.getSnapshot('count', 2, base.horizon))?.state).toEqual({ n: 5 });
      expect(await log.getMeta('sync.checkpoint.server')).toEqual(
        base.meta['sync.checkpoint.server'],
      );
    });

    it('skips every received event the vector covers, and stores the rest from position 1', async () => {
      const { log } = await fresh();
      const { base, covered } = baseOf();
      await install(log, base);
      const next = storedEvent({ replica: A, seq: 4, wall: NOW - 1_000, stream: 'x', version: 4 });
      // A rival copy at a covered slot (another id) is the server's business: skipped too.
      const rival = storedEvent({ replica: B, seq: 2, wall: NOW - 500, stream: 'y', id: 'other' });
      const result = await log.ingest({ events: [...covered, rival, next], ...drift });
      expect(result.written.map((r) => [r.event.id, r.pos])).toEqual([[next.id, 1]]);
      expect(await log.headPos()).toBe(1);
      expect(await log.streamVersion('x')).toBe(4);
      // A copy of a covered event re-sent later by a peer is still recognised.
      expect((await log.ingest({ events: [covered[0]!], ...drift })).written).toEqual([]);
    });

    it('finds a conflict with a stream head the base holds (same version, another replica)', async () => {
      const { log } = await fresh();
      await install(log, baseOf().base);
      const rival = storedEvent({ replica: C, seq: 1, wall: NOW - 6_500, stream: 'x', version: 3 });
      const result = await log.ingest({ events: [rival], ...drift });
      // Stored: it is new, and it sorts below the horizon (a late event; history rebases it).
      expect(result.written.map((r) => r.event.id)).toEqual([rival.id]);
      expect(await log.conflictStreams()).toEqual(['x', 'y']);
      expect(await log.minCursorSince(0)).toBe(rival.cursor);
    });

    it('gives a local append on a base stream the next version, and checks expectedVersion against it', async () => {
      const { log } = await fresh();
      const { base } = baseOf();
      await install(log, base);
      const event = { type: 'Added', data: { i: 1 }, schema: 1 };
      const stale = await log
        .appendLocal({ stream: 'x', events: [event], expectedVersion: 2, now: NOW })
        .catch((error: unknown) => error);
      expect(stale).toBeInstanceOf(ConcurrencyError);
      const result = await log.appendLocal({
        stream: 'x',
        events: [event],
        expectedVersion: 3,
        now: NOW - 60_000,
      });
      if (result.kind !== 'written') throw new Error('expected a write');
      const [record] = result.records;
      expect(record!.event.version).toBe(4);
      expect(record!.pos).toBe(1);
      // The clock rose to the horizon: sorts after every event of the base, whatever `now` said.
      expect(record!.event.cursor > base.horizon).toBe(true);
    });

    it('refuses a base on a log that holds an event, or has one already, and writes nothing', async () => {
      const { log } = await fresh();
      const { base } = baseOf();
      await log.appendLocal({
        stream: 'x',
        events: [{ type: 'Added', data: null, schema: 1 }],
        expectedVersion: 'any',
        now: NOW,
      });
      expect(await install(log, base)).toBe(false);
      expect(await log.horizon?.()).toBeUndefined();
      expect(await log.streamVersion('x')).toBe(1);
      expect(await log.listSnapshots('count', 2)).toEqual([]);
      expect(await log.getMeta('sync.checkpoint.server')).toBeUndefined();

      const other = (await fresh()).log;
      expect(await install(other, base)).toBe(true);
      const again = { ...base, horizon: `${base.horizon}z`, vector: { [C]: 9 } };
      expect(await install(other, again)).toBe(false);
      expect(await other.horizon?.()).toBe(base.horizon);
      expect(await other.baseVector?.()).toEqual(base.vector);
    });

    it('keeps the base for every handle and across a reopen', async () => {
      const { adapter, log } = await fresh();
      const { base, covered } = baseOf();
      await install(log, base);
      const second = await reopen(adapter);
      expect(await second.horizon?.()).toBe(base.horizon);
      expect(await second.streamVersion('x')).toBe(3);
      expect((await second.ingest({ events: covered, ...drift })).written).toEqual([]);
    });
  });
}
