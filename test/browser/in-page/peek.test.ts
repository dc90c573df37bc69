/**
 * peekState (src/client/peek.ts, src/storage/idb-peek.ts) on real Chromium and Firefox IndexedDB: it gives
 * the store's state at the head it read (client invariant 1, idb-peek invariant 3), or undefined
 * and nothing created (idb-peek invariants 1, 4), and its connection never blocks an upgrade (2).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../../src/core/events.ts';
import {
  defineProjection,
  type EventStore,
  indexedDbStorage,
  type LooseEvents,
  memoryStorage,
  openStore,
  peekState,
  type Upcaster,
} from '../../../src/index.ts';
import { peekLog } from '../../../src/storage/idb-peek.ts';
import { SCHEMA_VERSION } from '../../../src/storage/idb-schema.ts';
import { captureInternals } from '../../store/helpers.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let databases = 0;
const fresh = () => `peek-${run}-${++databases}`;

const ids = (version: number, snapshotEvery = 3) =>
  defineProjection<string[], LooseEvents<number>>({
    name: 'ids',
    version,
    snapshotEvery,
    initial: () => [],
    apply: (list, e) => [...list, `${e.id}:${String(e.data)}:v${version}`],
  });
/** Events of type 't' stored at schema 1 are read as data × 10. */
const upcasters: Upcaster[] = [{ type: 't', fromSchema: 1, up: (d) => (d as number) * 10 }];
const base = Date.UTC(2026, 3, 1);

async function listed(name: string): Promise<boolean> {
  return (await indexedDB.databases()).some((d) => d.name === name);
}

/** Remote events with skewed clocks, to ingest as late ones. */
async function remoteEvents(skews: number[]) {
  let t = base;
  const remote = await openStore<LooseEvents<number>>({
    name: 'remote',
    storage: memoryStorage(),
    now: () => t,
  });
  const out: StoredEventRecord[] = [];
  for (const [i, skew] of skews.entries()) {
    t = base + 10_000 + skew;
    out.push(...((await remote.append(`r${i % 2}`, { type: 't', data: i })) as never[]));
  }
  await remote.close();
  return out;
}

function opener(db: string, version = 1) {
  const capture = captureInternals();
  let t = base + 10_000;
  const open = () =>
    openStore<LooseEvents<number>>({
      name: db,
      storage: indexedDbStorage(db),
      projections: [ids(version)],
      upcasters,
      now: () => {
        t += 1;
        return t;
      },
      syncFactory: capture.factory,
    });
  return { open, ingest: (e: StoredEventRecord[]) => capture.internals().ingest(e) };
}

describe('peekState', () => {
  it('gives the store state() for any mix of appends, late remote events, folds and reopens', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 1, max: 5 }) }),
            fc.record({
              kind: fc.constant('remote' as const),
              skews: fc.array(fc.integer({ min: -5000, max: 5000 }), {
                minLength: 1,
                maxLength: 3,
              }),
            }),
            fc.record({ kind: fc.constant('state' as const) }),
            fc.record({ kind: fc.constant('reopen' as const) }),
          ),
          { maxLength: 12 },
        ),
        async (steps) => {
          const db = fresh();
          const { open, ingest } = opener(db);
          let store: EventStore<LooseEvents<number>> = await open();
          let appended = 0;
          try {
            for (const step of steps) {
              if (step.kind === 'append') {
                const events = Array.from({ length: step.n }, () => ({
                  type: 't',
                  data: appended++,
                }));
                await store.append('local', events);
              } else if (step.kind === 'remote') {
                await ingest(await remoteEvents(step.skews));
              } else if (step.kind === 'state') {
                await store.state('ids');
              } else {
                await store.close();
                store = await open();
              }
            }
            // Peek first: the state() below may write a snapshot at the head.
            const peeked = await peekState({ name: db, projection: ids(1), upcasters });
            expect(peeked).toEqual(await store.state('ids'));
          } finally {
            await store.close();
            indexedDB.deleteDatabase(db);
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it('starts from the newest snapshot and folds the events after it', async () => {
    const db = fresh();
    const { open } = opener(db);
    const store = await open();
    for (let i = 0; i < 4; i++) await store.append('s', [{ type: 't', data: i }]);
    await store.state('ids'); // snapshot after 3 events
    await store.append('s', [{ type: 't', data: 9 }]);
    const log = await peekLog({ name: db }, ids(1));
    expect(log?.snapshot?.count).toBe(3);
    expect(log?.events.map((r) => r.event.data)).toEqual([3, 9]);
    expect(await peekState({ name: db, projection: ids(1), upcasters })).toEqual(
      await store.state('ids'),
    );
    await store.close();
  });

  it('skips a snapshot that a late remote event sorts before, as the store does', async () => {
    const db = fresh();
    const { open, ingest } = opener(db);
    const store = await open();
    for (let i = 0; i < 7; i++) await store.append('s', [{ type: 't', data: i }]);
    await store.state('ids'); // snapshots after 3 and 6 events
    const [late] = await remoteEvents([-9000]); // sorts before every local event
    await ingest([late!]);
    const log = await peekLog({ name: db }, ids(1));
    expect(log?.snapshot).toBeUndefined();
    expect(log?.events[0]?.event.id).toBe(late!.id);
    expect(await peekState({ name: db, projection: ids(1), upcasters })).toEqual(
      await store.state('ids'),
    );
    await store.close();
  });

  it('follows a projection version change either way, as the store does', async () => {
    const db = fresh();
    const v1 = opener(db, 1);
    let store = await v1.open();
    for (let i = 0; i < 5; i++) await store.append('s', [{ type: 't', data: i }]);
    await store.state('ids');
    const peekedV2 = await peekState({ name: db, projection: ids(2), upcasters });
    expect(peekedV2?.[0]).toMatch(/:v2$/);
    await store.close();
    store = await opener(db, 2).open();
    expect(peekedV2).toEqual(await store.state('ids'));
    await store.append('s', [{ type: 't', data: 5 }]);
    await store.state('ids');
    // The store last ran version 2: version 1's snapshots are gone, v1 folds from initial().
    const peekedV1 = await peekState({ name: db, projection: ids(1), upcasters });
    await store.close();
    store = await v1.open();
    expect(peekedV1).toEqual(await store.state('ids'));
    await store.close();
  });

  it('resolves undefined past maxEvents to fold, with or without a snapshot', async () => {
    const db = fresh();
    const store = await opener(db).open();
    await store.append(
      's',
      [1, 2, 3, 4, 5].map((data) => ({ type: 't', data })),
    );
    const noSnapshot = ids(1, 0);
    expect(await peekState({ name: db, projection: noSnapshot, maxEvents: 4 })).toBeUndefined();
    expect(await peekState({ name: db, projection: noSnapshot, maxEvents: 5 })).toHaveLength(5);
    await store.state('ids'); // a snapshot after 3 events: 2 after it
    await store.append('s', [{ type: 't', data: 6 }]);
    expect(await peekState({ name: db, projection: ids(1), maxEvents: 2 })).toBeUndefined();
    expect(await peekState({ name: db, projection: ids(1), maxEvents: 3 })).toHaveLength(6);
    await store.close();
  });

  it('resolves undefined for a missing database and creates none', async () => {
    const db = fresh();
    expect(await peekState({ name: db, projection: ids(1) })).toBeUndefined();
    expect(await listed(db)).toBe(false);
  });

  it('lets a store create the database while a peek finds none', async () => {
    const db = fresh();
    const peeking = peekState({ name: db, projection: ids(1) });
    const store = await opener(db).open();
    await store.append('s', [{ type: 't', data: 1 }]);
    const peeked = await peeking;
    expect(peeked === undefined || peeked.length <= 1).toBe(true);
    expect(await peekState({ name: db, projection: ids(1), upcasters })).toEqual(
      await store.state('ids'),
    );
    await store.close();
  });

  it('resolves undefined for a database of an older or a newer schema version', async () => {
    for (const version of [1, 3]) {
      const db = fresh();
      await new Promise<void>((resolve, reject) => {
        const open = indexedDB.open(db, version);
        open.onupgradeneeded = () => open.result.createObjectStore('meta');
        open.onsuccess = () => {
          open.result.close();
          resolve();
        };
        open.onerror = () => reject(open.error);
      });
      expect(await peekState({ name: db, projection: ids(1) })).toBeUndefined();
      const check = indexedDB.open(db);
      const seen = await new Promise<number>((resolve) => {
        check.onsuccess = () => {
          check.result.close();
          resolve(check.result.version);
        };
      });
      expect(seen).toBe(version);
      indexedDB.deleteDatabase(db);
    }
  });

  it('never blocks an upgrade asked for the moment a peek resolves (its transaction still committing)', async () => {
    // Chromium answers `blocked` to an upgrade whose versionchange reaches a connection closed
    // while its transaction still commits: a peek must close only once its reads have committed.
    let blockedRuns = 0;
    for (let run = 0; run < 20; run += 1) {
      const db = fresh();
      const store = await opener(db).open();
      await store.append('s', [{ type: 't', data: run }]);
      await store.close();
      expect(await peekState({ name: db, projection: ids(1), upcasters })).toHaveLength(1);
      const blocked = await new Promise<boolean>((resolve, reject) => {
        let wasBlocked = false;
        const open = indexedDB.open(db, SCHEMA_VERSION + 1);
        open.onblocked = () => {
          wasBlocked = true;
        };
        open.onsuccess = () => {
          open.result.close();
          resolve(wasBlocked);
        };
        open.onerror = () => reject(open.error);
      });
      if (blocked) blockedRuns += 1;
      indexedDB.deleteDatabase(db);
    }
    expect(blockedRuns).toBe(0);
  });

  it('never blocks another tab upgrading the database, during or after a peek', async () => {
    const db = fresh();
    const store = await opener(db).open();
    await store.append('s', [{ type: 't', data: 1 }]);
    await store.close();
    // The store's own connection closes once its last transactions end, a moment after close().
    await new Promise((resolve) => setTimeout(resolve, 500));
    const peeking = peekState({ name: db, projection: ids(1) });
    let blocked = false;
    const upgraded = await new Promise<number>((resolve, reject) => {
      const open = indexedDB.open(db, SCHEMA_VERSION + 1);
      open.onblocked = () => {
        blocked = true;
      };
      open.onsuccess = () => {
        open.result.close();
        resolve(open.result.version);
      };
      open.onerror = () => reject(open.error);
    });
    expect(upgraded).toBe(SCHEMA_VERSION + 1);
    expect(blocked).toBe(false);
    // Read before the upgrade, or refused after it: never a state of another schema.
    const peeked = await peeking;
    expect(peeked === undefined || peeked.length === 1).toBe(true);
    indexedDB.deleteDatabase(db);
  });
});
