/**
 * The snapshotter on a SQLite file (snapshotter-suite.ts), a file made by the previous code
 * opening with the snapshot table added (sqlite-snapshots.ts 1), and a property: with random
 * batches, late events among them, every snapshot is the fold of its positions in cursor order.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Snapshotter } from '../../src/server/snapshotter.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { tempDir } from './helpers.ts';
import {
  countsProjection,
  events,
  referenceFold,
  snapshotterSuite,
  stateOf,
} from './snapshotter-suite.ts';

const dirs: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});

describe('snapshotter on a SQLite file', () => {
  snapshotterSuite(() => {
    const tmp = tempDir();
    dirs.push(tmp.cleanup);
    const path = join(tmp.dir, 'server.sqlite');
    return { open: () => sqliteStorage(path) };
  });
});

describe('the snapshot table on a SQLite file', () => {
  it('is added to a file made without it, whose events stay', async () => {
    const tmp = tempDir();
    dirs.push(tmp.cleanup);
    const path = join(tmp.dir, 'server.sqlite');
    const first = sqliteStorage(path);
    await (await first.openSpace('s1')).ingest(events('replicaa', 1, 5));
    await first.close();
    // As the previous code left it: no snapshot table.
    const db = new Database(path);
    db.exec('DROP TABLE space_snapshots');
    db.close();
    const second = sqliteStorage(path);
    try {
      const log = await second.openSpace('s1');
      expect(await log.headPos()).toBe(5);
      expect(await second.snapshots!.list('s1')).toEqual([]);
    } finally {
      await second.close();
    }
  });
});

describe('snapshots under random batches with late events (property)', () => {
  it('are each the fold of the events at positions up to it, in cursor order', async () => {
    const batch = fc.record({
      size: fc.integer({ min: 1, max: 6 }),
      // A late batch sorts below what came before (by up to 40 s of HLC).
      lateBy: fc.option(fc.integer({ min: 1, max: 40_000 }), { nil: undefined }),
      replica: fc.constantFrom('replicaa', 'replicab', 'replicac'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(batch, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 2, max: 8 }),
        async (batches, every) => {
          const storage = sqliteStorage(':memory:');
          const snapshotter = new Snapshotter(
            storage,
            { projections: [countsProjection()], every, lateDelayMs: 0 },
            { log: () => {} },
          );
          snapshotter.start();
          try {
            const log = await storage.openSpace('p');
            const seqs = new Map<string, number>();
            let clock = 1_800_000_000_000;
            for (const b of batches) {
              const first = (seqs.get(b.replica) ?? 0) + 1;
              seqs.set(b.replica, first + b.size - 1);
              clock += 10_000;
              const at = b.lateBy === undefined ? clock : clock - b.lateBy;
              await log.ingest(events(b.replica, first, b.size, { at }));
              await snapshotter.whenIdle();
              const snapshot = await snapshotter.latest('p', [{ name: 'counts', version: 1 }]);
              const head = await log.headPos();
              if (snapshot === undefined) {
                expect(head).toBeLessThan(every);
                continue;
              }
              expect(head - snapshot.pos).toBeLessThan(every);
              expect(stateOf(snapshot, 'counts')).toEqual(
                await referenceFold(log, countsProjection(), snapshot.pos),
              );
              const vector: Record<string, number> = {};
              for (const { event, pos } of await log.readByPos(0, 10_000)) {
                if (pos <= snapshot.pos)
                  vector[event.replica] = Math.max(vector[event.replica] ?? 0, event.seq);
              }
              expect(snapshot.vector).toEqual(vector);
            }
          } finally {
            await snapshotter.close();
            await storage.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
