/**
 * Seeded property (RELIABILITY.md case 37): two openStore replicas with random, different limits
 * (batch size, event size, in-flight window), events of random sizes appended on both sides
 * before and during sync, over a memory link that duplicates frames and drops connections. After
 * healing, each side holds exactly the other's events that fit its limit; every event left out
 * is listed in the sender's `refused` with the peer's id; nothing is pending; no session wedged.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStore, memoryStorage, memoryTransportPair, openStore } from '../../src/index.ts';
import type { MemoryFaults } from '../../src/sync/transports/memory.ts';
import { until } from './helpers.ts';

const KiB = 1024;
const RUNS = Number(process.env.LIMITS_PROPERTY_RUNS ?? 12);

const arbSide = fc.record({
  maxEventBytes: fc.constantFrom(2 * KiB, 8 * KiB, 1024 * KiB),
  maxBatchEvents: fc.constantFrom(1, 2, 5, 2000),
  maxInFlightBatches: fc.constantFrom(1, 2, 4),
  sizes: fc.array(fc.constantFrom(10, 3 * KiB, 10 * KiB), { minLength: 1, maxLength: 12 }),
  later: fc.array(fc.constantFrom(10, 3 * KiB, 10 * KiB), { maxLength: 4 }),
});

const stores: EventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
});

type Side = typeof arbSide extends fc.Arbitrary<infer T> ? T : never;

async function replica(name: string, side: Side): Promise<EventStore> {
  const store = await openStore({
    name,
    storage: memoryStorage(),
    // Appends up to 1 MiB before anything is learnt: some will be too large for the peer.
    limits: { maxEventBytes: 1024 * KiB },
    syncOptions: {
      limits: {
        maxEventBytes: side.maxEventBytes,
        maxBatchEvents: side.maxBatchEvents,
        maxInFlightBatches: side.maxInFlightBatches,
      },
      backoff: { initialMs: 2, maxMs: 10, healthyAfterMs: 1000 },
    },
  });
  stores.push(store);
  return store;
}

async function appendAll(store: EventStore, sizes: number[], tag: string): Promise<void> {
  for (const [i, size] of sizes.entries()) {
    // Once a peer limit is learnt, an append over it is refused: that is expected.
    await store
      .append(`s-${tag}`, { type: 't', data: 'x'.repeat(Math.max(0, size - 2)) })
      .catch((error: { code?: string }) => {
        if (error.code !== 'VALIDATION') throw error;
      });
    if (i % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

describe('limits exchange, seeded (case 37)', () => {
  it('delivers every event that fits, reports every one that does not, and leaves nothing pending', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbSide,
        arbSide,
        fc.integer({ min: 1, max: 2 ** 30 }),
        async (sa, sb, seed) => {
          const a = await replica('a', sa);
          const b = await replica('b', sb);
          await appendAll(a, sa.sizes, 'a');
          await appendAll(b, sb.sizes, 'b');
          const faults: MemoryFaults = { duplicate: 0.2, disconnect: 0.03 };
          const [ta, tb] = memoryTransportPair({ seed, faults });
          const ca = a.sync.connect(ta);
          const cb = b.sync.connect(tb);
          await Promise.all([appendAll(a, sa.later, 'a'), appendAll(b, sb.later, 'b')]);
          faults.duplicate = 0;
          faults.disconnect = 0;
          const quiet = (s: EventStore) =>
            s.sync.status().state === 'idle' && s.sync.status().pending === 0;
          await until(() => quiet(a) && quiet(b), 4000);
          const limit = Math.min(sa.maxEventBytes, sb.maxEventBytes);
          for (const [from, to] of [
            [a, b],
            [b, a],
          ] as const) {
            const own = (await from.read()).filter((e) => e.replica === from.replicaId);
            const held = new Set((await to.read()).map((e) => e.id));
            const refused = new Set(
              (from.sync.status().refused ?? [])
                .filter((r) => r.peer === to.replicaId)
                .map((r) => r.eventId),
            );
            for (const event of own) {
              const bytes = JSON.stringify(event.data).length;
              if (bytes <= limit) expect(held.has(event.id)).toBe(true);
              else {
                expect(held.has(event.id)).toBe(false);
                expect(refused.has(event.id)).toBe(true);
              }
            }
          }
          await ca.close();
          await cb.close();
          for (const s of stores.splice(0)) await s.close();
        },
      ),
      { numRuns: RUNS, seed: Number(process.env.LIMITS_PROPERTY_SEED ?? 1237) },
    );
  }, 120_000);
});
