/**
 * Seeded convergence (RELIABILITY.md case 22, in the style of Yjs's TestConnector): 3–5 replicas
 * and a hub peer (a replica on memory storage standing in for the server), random appends (also
 * concurrent appends to one stream), connects and disconnects, delayed, reordered, duplicated
 * and dropped messages, restarts from storage, clocks skewed by up to a day and jumping back.
 * Then the network heals, and every replica must hold the same events, exactly once, in the same
 * total order, with the same projected state, and nothing pending.
 *
 * Everything runs on virtual time, so a failing seed replays exactly; fast-check prints the seed
 * and the scenario, and the assertion message holds the history of the run.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import type { StorageAdapter } from '../../src/storage/adapter.ts';
import type { SyncController } from '../../src/store/internal.ts';
import { createSyncController } from '../../src/sync/controller.ts';
import {
  type MemoryFaults,
  type MemoryTransport,
  memoryTransportPair,
} from '../../src/sync/transports/memory.ts';
import { makeInternals, memoryReplica, type TestInternals } from './helpers.ts';
import { VirtualTime } from './virtual-time.ts';

const DAY = 24 * 60 * 60 * 1000;
const BASE_TIME = Date.UTC(2026, 0, 1);

type Action =
  | { kind: 'append'; replica: number; stream: number; count: number }
  | { kind: 'connect'; replica: number }
  | { kind: 'disconnect'; replica: number }
  | { kind: 'restart'; replica: number } // replica index n is the hub
  | { kind: 'clock'; replica: number; skew: number }
  | { kind: 'run'; ms: number };

interface Scenario {
  replicas: number;
  skews: number[];
  faults: MemoryFaults;
  seed: number;
  actions: Action[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 3, max: 5 }).chain((replicas) =>
  fc.record({
    replicas: fc.constant(replicas),
    skews: fc.array(fc.integer({ min: -DAY, max: DAY }), {
      minLength: replicas,
      maxLength: replicas,
    }),
    faults: fc.record({
      delayMs: fc.integer({ min: 0, max: 30 }),
      reorder: fc.constantFrom(0, 0, 0.02, 0.05),
      duplicate: fc.constantFrom(0, 0.1, 0.3),
      drop: fc.constantFrom(0, 0, 0.02),
      disconnect: fc.constantFrom(0, 0.01, 0.03),
    }),
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    actions: fc.array(
      fc.oneof(
        {
          weight: 5,
          arbitrary: fc.record({
            kind: fc.constant('append' as const),
            replica: fc.nat(replicas - 1),
            stream: fc.nat(2),
            count: fc.integer({ min: 1, max: 8 }),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant('connect' as const),
            replica: fc.nat(replicas - 1),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant('disconnect' as const),
            replica: fc.nat(replicas - 1),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            kind: fc.constant('restart' as const),
            replica: fc.nat(replicas),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            kind: fc.constant('clock' as const),
            replica: fc.nat(replicas - 1),
            skew: fc.integer({ min: -DAY, max: DAY }),
          }),
        },
        {
          weight: 3,
          arbitrary: fc.record({
            kind: fc.constant('run' as const),
            ms: fc.integer({ min: 1, max: 200 }),
          }),
        },
      ),
      { minLength: 5, maxLength: 40 },
    ),
  }),
);

interface Node {
  storage: StorageAdapter;
  internals: TestInternals;
  controller: SyncController;
  skew: number;
  server: boolean;
}

/** A simple projection folded over the ordered log: per stream, the data in order and a count. */
function project(events: StoredEventRecord[]): Record<string, { count: number; items: unknown[] }> {
  const state: Record<string, { count: number; items: unknown[] }> = {};
  for (const e of events) {
    const s = state[e.stream] ?? { count: 0, items: [] };
    state[e.stream] = s;
    s.count += 1;
    s.items.push(e.data);
  }
  return state;
}

async function runScenario(scenario: Scenario): Promise<void> {
  const time = new VirtualTime();
  const history: string[] = [];
  const faults: MemoryFaults = { ...scenario.faults };
  let rngState = scenario.seed;
  const random = () => {
    rngState = (rngState * 48271) % 2147483647;
    return rngState / 2147483647;
  };
  // The hub stands in for the server: it announces itself as one, so the replicas correct their
  // clocks to it and re-stamp what they stamped ahead (controller.ts invariants 4 and 8).
  const controllerFor = (internals: TestInternals, server = false) =>
    createSyncController(internals, {
      server,
      timers: time,
      random,
      backoff: { initialMs: 20, maxMs: 400, healthyAfterMs: 1000 },
      // Small batches and a narrow window: catch-up spans many batches and waits for acks.
      limits: { maxBatchEvents: 3, maxInFlightBatches: 2 },
    });
  const makeNode = async (skew: number, server = false): Promise<Node> => {
    const node = { skew } as Node;
    const { storage, internals } = await memoryReplica({
      clock: () => BASE_TIME + time.now + node.skew,
    });
    node.storage = storage;
    node.internals = internals;
    node.controller = controllerFor(internals, server);
    node.server = server;
    return node;
  };
  const replicas: Node[] = [];
  for (let i = 0; i < scenario.replicas; i++) replicas.push(await makeNode(scenario.skews[i]!));
  const hub = await makeNode(0, true);

  const pairs: [MemoryTransport, MemoryTransport][] = replicas.map((_, i) =>
    memoryTransportPair({ seed: scenario.seed + i, faults, schedule: time.schedule }),
  );
  const clientConnections = replicas.map(() => undefined as { close(): Promise<void> } | undefined);
  const hubConnections = pairs.map((pair) => hub.controller.connect(pair[1]));
  const appended = new Set<string>();

  const restart = async (n: Node) => {
    await n.controller.close();
    await n.internals.shutdown();
    await n.internals.log.close();
    const log = await n.storage.open();
    n.internals = makeInternals(log, { clock: () => BASE_TIME + time.now + n.skew });
    n.controller = controllerFor(n.internals, n.server);
  };

  const connect = (i: number) => {
    if (clientConnections[i] === undefined) {
      clientConnections[i] = replicas[i]!.controller.connect(pairs[i]![0]);
    }
  };

  try {
    for (const action of scenario.actions) {
      history.push(JSON.stringify(action));
      switch (action.kind) {
        case 'append': {
          const events = await replicas[action.replica]!.internals.append(
            `stream-${action.stream}`,
            ...Array.from({ length: action.count }, (_, k) => ({ by: action.replica, k })),
          );
          for (const e of events) appended.add(e.id);
          break;
        }
        case 'connect':
          connect(action.replica);
          break;
        case 'disconnect':
          await clientConnections[action.replica]?.close();
          clientConnections[action.replica] = undefined;
          break;
        case 'restart':
          if (action.replica === scenario.replicas) {
            await restart(hub);
            for (let i = 0; i < pairs.length; i++)
              hubConnections[i] = hub.controller.connect(pairs[i]![1]);
          } else {
            const wasConnected = clientConnections[action.replica] !== undefined;
            clientConnections[action.replica] = undefined;
            await restart(replicas[action.replica]!);
            if (wasConnected) connect(action.replica);
          }
          break;
        case 'clock':
          replicas[action.replica]!.skew = action.skew;
          break;
        case 'run':
          await time.run(10_000, time.now + action.ms);
          break;
        default: {
          const never: never = action;
          throw new Error(`unknown action ${JSON.stringify(never)}`);
        }
      }
    }
    // Heal: no more faults, everyone connected, run until quiet.
    history.push('heal');
    faults.delayMs = 0;
    faults.reorder = 0;
    faults.duplicate = 0;
    faults.drop = 0;
    faults.disconnect = 0;
    for (let i = 0; i < replicas.length; i++) connect(i);
    await time.run(200_000, time.now + 60_000);

    const all = [...replicas, hub];
    const logs = await Promise.all(all.map((n) => n.internals.all()));
    const ids = logs.map((events) => events.map((e) => e.id));
    const context = `history:\n${history.join('\n')}`;
    for (let i = 1; i < ids.length; i++) expect(ids[i], context).toEqual(ids[0]);
    expect(new Set(ids[0]).size, context).toBe(ids[0]!.length);
    expect([...appended].sort(), context).toEqual([...ids[0]!].sort());
    const states = logs.map(project);
    for (let i = 1; i < states.length; i++) expect(states[i], context).toEqual(states[0]);
    stats.runs++;
    stats.events += ids[0]!.length;
    for (const n of all) {
      const status = n.controller.status();
      expect(status.pending, `${context}\n${JSON.stringify(status)}`).toBe(0);
    }
  } finally {
    for (const c of clientConnections) await c?.close();
    for (const n of [...replicas, hub]) await n.controller.close();
  }
}

const stats = { runs: 0, events: 0 };

describe('convergence (seeded, RELIABILITY case 22)', () => {
  it('replicas and a hub converge on one log, one order and one state after any history', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: 200 });
    // The runs did sync something (guards against a vacuous pass).
    expect(stats.events / stats.runs).toBeGreaterThan(5);
    console.log(`convergence: ${stats.runs} runs, ${stats.events} events converged`);
  }, 120_000);
});
