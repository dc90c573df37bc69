/**
 * Joining from a snapshot against replaying, over random schedules (protocol.ts invariant 10,
 * core/space-join.ts): random writers and streams, a snapshot at a random position, late events
 * (below the snapshot's cursor) before and after the device joins, events after it. Whatever
 * the schedule, the device that joined ends with the same projection states, the same reads,
 * the same stream versions and the same conflicts as one that replayed the whole log. Seeded:
 * a failure prints its seed and path.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { defineProjection, type EventStore } from '../../src/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { waitFor } from './helpers.ts';
import { foldingSource, startJoinServer, storeOn } from './join-helpers.ts';

type Board = Record<string, string[]>;
const board = defineProjection<Board>({
  name: 'board',
  version: 1,
  snapshotEvery: 7,
  initial: () => ({}),
  apply: (state, e) => ({ ...state, [e.stream]: [...(state[e.stream] ?? []), e.id] }),
});
const projections = [board];

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const REPLICAS = ['propaaaaaaaaaaaa', 'propbbbbbbbbbbbb', 'propcccccccccccc'];
const T0 = 1_700_000_000_000;

/** Events of a schedule: each replica's seqs dense, stream versions per replica as appends. */
class Writer {
  private readonly seqs = new Map<string, number>();
  private readonly versions = new Map<string, number>();

  event(replica: string, stream: string, wall: number): StoredEventRecord {
    const seq = (this.seqs.get(replica) ?? 0) + 1;
    this.seqs.set(replica, seq);
    // A replica appends after what it holds: mostly the next version, sometimes a rival one.
    const version = (this.versions.get(stream) ?? 0) + 1;
    this.versions.set(stream, version);
    return storedEvent({ replica, seq, wall, stream, version, data: { seq } });
  }
}

const arbStep = fc.record({
  replica: fc.integer({ min: 0, max: 2 }),
  stream: fc.integer({ min: 0, max: 3 }),
  rival: fc.boolean(),
});

const headOf = (store: EventStore) =>
  (store as unknown as { log: { headPos(): Promise<number> } }).log;

describe('joining from a snapshot, over random schedules', () => {
  it('converges with replaying whatever the schedule', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbStep, { minLength: 1, maxLength: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(arbStep, { maxLength: 10 }),
        async (before, at, lateBefore, lateAfter, after) => {
          const writer = new Writer();
          let wall = T0 + 1_000_000;
          const make = (steps: typeof before) =>
            steps.map((s) => {
              wall += 1000;
              const stream = `card-${s.stream}`;
              const e = writer.event(REPLICAS[s.replica]!, stream, wall);
              // A rival: the same version written concurrently by another replica (a conflict).
              return s.rival ? { ...e, version: Math.max(1, e.version - 1) } : e;
            });
          let lateSeq = 0;
          const late = (n: number) =>
            Array.from({ length: n }, () => {
              lateSeq += 1;
              return storedEvent({
                replica: 'proplateeeeeeeee',
                seq: lateSeq,
                wall: T0 + 1_000_000 + lateSeq * 1500 - 700,
                stream: 'card-1',
                version: 1,
                data: { late: lateSeq },
              });
            });
          const s = await startJoinServer({
            snapshots: (st) => foldingSource(st, projections, (head) => Math.floor(head * at)),
          });
          cleanups.push(() => s.close());
          const first = make(before);
          await s.space.ingest(first);
          await s.space.ingest(late(lateBefore));
          const joined = await storeOn(s.url, { name: 'joined', projections, join: 'snapshot' });
          const replayed = await storeOn(s.url, { name: 'replayed', projections });
          cleanups.push(
            () => joined.close(),
            () => replayed.close(),
          );
          await waitFor(() => joined.sync.status().state === 'idle');
          await s.space.ingest(late(lateAfter));
          await s.space.ingest(make(after));
          const total = await s.space.headPos();
          const [last] = await s.space.readByPos(total - 1, 1);
          for (const store of [joined, replayed]) {
            await waitFor(async () =>
              (await store.read({ reverse: true, limit: 50 })).some((e) => e.id === last!.event.id),
            );
            await waitFor(async () => (await store.read()).length === total);
          }
          const ids = (events: { id: string }[]) => events.map((e) => e.id);
          expect(await joined.state('board')).toEqual(await replayed.state('board'));
          expect(ids(await joined.read())).toEqual(ids(await replayed.read()));
          expect(ids(await joined.read({ reverse: true, limit: 5 }))).toEqual(
            ids(await replayed.read({ reverse: true, limit: 5 })),
          );
          const conflicts = async (store: EventStore) =>
            (await store.conflicts()).map((c) => [c.stream, c.version]);
          expect(await conflicts(joined)).toEqual(await conflicts(replayed));
          for (let k = 0; k < 4; k++) {
            const stream = `card-${k}`;
            const log = (store: EventStore) =>
              (store as unknown as { log: { streamVersion(s: string): Promise<number> } }).log;
            expect(await log(joined).streamVersion(stream)).toBe(
              await log(replayed).streamVersion(stream),
            );
          }
          // The device that joined received only what follows the snapshot's position.
          expect(await headOf(joined).headPos()).toBeLessThanOrEqual(total);
          await joined.close();
          await replayed.close();
          await s.close();
          cleanups.splice(0);
        },
      ),
      { numRuns: 5, verbose: true },
    );
  }, 120_000);
});
