/**
 * Crypto-shredding under random schedules (fast-check): three encrypted replicas in a line
 * (0 – 1 – 2) append to four streams and shred some of them, while links go down and come
 * back and messages are delayed, duplicated, reordered and dropped. Once every link is up and
 * nothing is pending, every replica holds one log (same ids, same order), a stream that any
 * replica shredded reads as shredded everywhere, every other event reads as written, each
 * projection equals the fold of what read() returns, and no storage holds a shredded stream's
 * key any more.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { namesKey } from '../../src/core/keyring.ts';
import { streamPseudonym } from '../../src/core/sealing.ts';
import {
  defineProjection,
  type EventStore,
  generateEncryptionKey,
  type LooseEvents,
  type MemoryTransport,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type StorageAdapter,
  type SyncConnection,
} from '../../src/index.ts';
import { propertyParameters } from '../sync/convergence-scenario.ts';
import { until } from '../sync/helpers.ts';

type Events = LooseEvents<{ n: number }>;

const sums = defineProjection<Record<string, number[]>, Events>({
  name: 'sums',
  version: 1,
  snapshotEvery: 3,
  initial: () => ({}),
  apply: (s, e) => ({ ...s, [e.stream]: [...(s[e.stream] ?? []), e.data.n] }),
});

type Action =
  | { kind: 'append'; replica: number; stream: number; count: number }
  | { kind: 'shred'; replica: number; stream: number }
  | { kind: 'link'; link: number; up: boolean }
  | { kind: 'wait'; ms: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      replica: fc.nat(2),
      stream: fc.nat(3),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('shred' as const),
      replica: fc.nat(2),
      stream: fc.nat(3),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('link' as const), link: fc.nat(1), up: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.nat(20) }) },
);

const scenarioArb = fc.record({
  seed: fc.nat(),
  faults: fc.record({
    delayMs: fc.nat(3),
    reorder: fc.constantFrom(0, 0.05),
    duplicate: fc.constantFrom(0, 0.1),
    drop: fc.constantFrom(0, 0.02),
  }),
  actions: fc.array(actionArb, { minLength: 5, maxLength: 30 }),
});

interface Link {
  ends: [number, number];
  pair: [MemoryTransport, MemoryTransport];
  conns: SyncConnection[];
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('store.shred under random schedules', () => {
  it.each([
    ['', undefined],
    [', stream names and types hidden', generateEncryptionKey()],
  ])(
    'converges on one log where every shredded stream reads shredded everywhere%s',
    async (_label, names) => {
      const key = generateEncryptionKey();
      await fc.assert(
        fc.asyncProperty(scenarioArb, async ({ seed, faults, actions }) => {
          const storages: StorageAdapter[] = [memoryStorage(), memoryStorage(), memoryStorage()];
          const stores: EventStore<Events>[] = await Promise.all(
            storages.map((storage, i) =>
              openStore<Events>({
                name: `p${i}`,
                storage,
                projections: [sums],
                encryption: { key, ...(names && { names }) },
              }),
            ),
          );
          const links: Link[] = [
            [0, 1],
            [1, 2],
          ].map(([a, b], i) => ({
            ends: [a!, b!],
            pair: memoryTransportPair({ seed: seed + i, faults }),
            conns: [],
          }));
          const up = (link: Link) => {
            if (link.conns.length > 0) return;
            link.conns = link.ends.map((n, i) => stores[n]!.sync.connect(link.pair[i]!));
          };
          const down = async (link: Link) => {
            const conns = link.conns.splice(0);
            await Promise.all(conns.map((c) => c.close()));
          };
          for (const link of links) up(link);
          const shredded = new Set<string>();
          let n = 0;
          try {
            for (const action of actions) {
              if (action.kind === 'append') {
                const stream = `s${action.stream}`;
                const events = Array.from({ length: action.count }, () => ({
                  type: 'added',
                  data: { n: ++n },
                }));
                await stores[action.replica]!.append(stream, events).catch((error: unknown) => {
                  // Appending to a stream this replica knows to be shredded is refused.
                  if ((error as { code?: string }).code !== 'VALIDATION') throw error;
                });
              } else if (action.kind === 'shred') {
                const stream = `s${action.stream}`;
                shredded.add(stream);
                await stores[action.replica]!.shred(stream);
              } else if (action.kind === 'link') {
                const link = links[action.link]!;
                if (action.up) up(link);
                else await down(link);
              } else {
                await wait(action.ms);
              }
            }
            // Heal: no more faults, every link up, until nothing moves.
            for (const link of links) {
              await down(link);
              link.pair = memoryTransportPair({ seed: seed + 7 });
              up(link);
            }
            await until(async () => {
              const logs = await Promise.all(stores.map((s) => s.read()));
              const keyrings = await Promise.all(stores.map((s) => s.read({ stream: '$keyring' })));
              const same = (lists: { id: string; data: unknown }[][]) =>
                lists.every((l) => JSON.stringify(l) === JSON.stringify(lists[0]));
              return (
                stores.every((s) => s.sync.status().pending === 0) &&
                same(logs.map((l) => l.map((e) => ({ id: e.id, data: e.data })))) &&
                same(keyrings.map((l) => l.map((e) => ({ id: e.id, data: e.data }))))
              );
            }, 4000);

            const logs = await Promise.all(stores.map((s) => s.read()));
            const log = logs[0]!;
            // With names hidden a shredded event shows its pseudonym: map it back.
            const hidden = new Map<string, string>();
            if (names !== undefined) {
              const secret = await namesKey(names);
              for (const stream of ['s0', 's1', 's2', 's3']) {
                hidden.set(await streamPseudonym(secret, stream), stream);
              }
            }
            const streamOf = (e: { stream: string }) => hidden.get(e.stream) ?? e.stream;
            for (const e of log) {
              if (shredded.has(streamOf(e))) {
                expect(e, `${e.id} of shredded ${e.stream}`).toMatchObject({
                  data: null,
                  meta: { $shredded: true },
                });
              } else {
                expect(typeof (e.data as { n?: unknown }).n).toBe('number');
              }
            }
            const expected: Record<string, number[]> = {};
            for (const e of log) {
              if (shredded.has(streamOf(e))) continue;
              expected[e.stream] = [...(expected[e.stream] ?? []), (e.data as { n: number }).n];
            }
            for (const store of stores) expect(await store.state(sums)).toEqual(expected);
            // No storage holds a shredded stream's key.
            for (const store of stores) {
              const keys = (await store.read({ stream: '$keyring' })).filter(
                (e) => e.type === 'StreamKey',
              );
              for (const k of keys) {
                const stored = (k.data as { stream?: string } | null)?.stream;
                const stream = stored === undefined ? undefined : (hidden.get(stored) ?? stored);
                expect(stream === undefined || !shredded.has(stream), `key of ${stream}`).toBe(
                  true,
                );
              }
            }
          } finally {
            for (const link of links) await down(link);
            await Promise.all(stores.map((s) => s.close()));
          }
        }),
        propertyParameters(25),
      );
    },
    300_000,
  );
});
