/**
 * Projection invariants 1–3 (core/projection.ts) at the store level: whatever order synced events
 * arrive in, in whatever chunks, with reopens in between, state() equals the fold of read().
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import {
  defineProjection,
  type LooseEvents,
  memoryStorage,
  openStore,
  type StoredEvent,
} from '../../src/index.ts';
import { captureInternals } from './helpers.ts';

const ids = defineProjection<string[], LooseEvents<number>>({
  name: 'ids',
  version: 1,
  snapshotEvery: 3,
  initial: () => [],
  apply: (list, e) => [...list, e.id],
});

describe('projection rebase (property)', () => {
  it('state equals the fold of the ordered log for any arrival order, chunking and reopen', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ origin: fc.nat(2), skew: fc.integer({ min: -5000, max: 5000 }) }), {
          minLength: 1,
          maxLength: 25,
        }),
        fc.array(fc.nat(), { maxLength: 25 }),
        fc.array(fc.boolean(), { maxLength: 10 }),
        fc.nat(3),
        async (plan, shuffle, reopens, localCount) => {
          const base = Date.UTC(2026, 3, 1);
          // Three remote replicas make events with skewed clocks.
          const remotes = await Promise.all(
            [0, 1, 2].map(async (r) => {
              let t = base + r;
              return {
                store: await openStore<LooseEvents<number>>({
                  name: `r${r}`,
                  storage: memoryStorage(),
                  now: () => t,
                }),
                set: (ms: number) => {
                  t = ms;
                },
              };
            }),
          );
          const made: StoredEvent<LooseEvents<number>>[] = [];
          for (const [i, step] of plan.entries()) {
            const remote = remotes[step.origin]!;
            remote.set(base + 10_000 + step.skew);
            made.push(...(await remote.store.append(`s${i % 2}`, { type: 't', data: i })));
          }
          // Deliver in a shuffled order, in chunks, with local appends and reopens in between.
          const order = made.map((e, i) => ({ e, k: shuffle[i] ?? i })).sort((a, b) => a.k - b.k);
          const storage = memoryStorage();
          const capture = captureInternals();
          const open = () =>
            openStore<LooseEvents<number>>({
              name: 'local',
              storage,
              projections: [ids],
              now: () => base + 10_000,
              syncFactory: capture.factory,
            });
          let store = await open();
          for (let i = 0; i < localCount; i++) await store.append('local', { type: 't', data: -i });
          let chunk = 0;
          for (let i = 0; i < order.length; i += 1 + (chunk % 3)) {
            const part = order.slice(i, i + 1 + (chunk % 3)).map((x) => x.e);
            await capture.internals().ingest(part as unknown as StoredEventRecord[]);
            if (chunk % 2 === 0) await store.state('ids');
            if (reopens[chunk]) {
              await store.close();
              store = await open();
            }
            chunk++;
          }
          const expected = (await store.read()).map((e) => e.id);
          expect(await store.state('ids')).toEqual(expected);
          await store.close();
          for (const r of remotes) await r.store.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});
