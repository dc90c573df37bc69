/**
 * Seeded convergence over the public API (RELIABILITY.md case 22, issue 12 "Convergence tests
 * that can fail"): 2–5 openStore replicas on memory or fake-indexeddb storage, each with
 * projections that snapshot every 1–5 events, joined as a star through a hub store, a mesh of
 * peers, or a mix, over memoryTransportPair with seeded delays, reordering, duplicates, drops and
 * disconnects, plus partitions, closed and reopened connections, restarts with appends in flight,
 * appends with every kind of expectedVersion, and clocks moved within or beyond maxClockDrift.
 * Then the network heals and convergence-checks.ts holds every node to one log, in one order,
 * with nothing lost or doubled, projections equal to the fold of read() (now, at earlier points,
 * and after reopening), and the same conflicts().
 *
 * Sync runs on virtual time (memory transports and controllers take its timers), so a schedule
 * replays from fast-check's seed; fake-indexeddb and random replica ids (the tie-break between
 * equal HLCs) are the only things a replay does not fix. Knobs: convergence-scenario.ts
 * (CHRONICLE_PROPERTY_RUNS for long runs, CHRONICLE_PROPERTY_SEED/PATH to replay,
 * CHRONICLE_PROPERTY_ENABLE for generators of known open defects).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryTransportPair } from '../../src/index.ts';
import { seededRandom } from '../../src/sync/transports/memory.ts';
import { checkConverged, checkNode } from './convergence-checks.ts';
import { World } from './convergence-harness.ts';
import { enabled, propertyParameters, type Scenario, scenarioArb } from './convergence-scenario.ts';
import { VirtualTime } from './virtual-time.ts';

const BASE_TIME = Date.UTC(2026, 0, 1);
let runs = 0;
const stats = { runs: 0, events: 0, appends: 0, refused: 0, midRunChecks: 0 };

/** Runs virtual time until nothing is scheduled and every node is idle with nothing pending. */
async function quiesce(time: VirtualTime, world: World): Promise<boolean> {
  for (let round = 0; round < 200; round++) {
    await time.run(100_000);
    // fake-indexeddb works in macrotasks that virtual time does not see: let them finish.
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    if (time.pending > 0) continue;
    const quiet = world.nodes.every((n) => {
      const s = n.store!.sync.status();
      return s.state === 'idle' && s.pending === 0;
    });
    if (!quiet) {
      await time.run(1, time.now + 50);
      continue;
    }
    const logs = await Promise.all(world.nodes.map(async (n) => (await n.store!.read()).length));
    if (logs.every((l) => l === logs[0]) && time.pending === 0) return true;
    await time.run(1, time.now + 50);
  }
  return false;
}

async function runScenario(scenario: Scenario): Promise<void> {
  const time = new VirtualTime();
  const random = seededRandom(scenario.seed);
  const world = new World({
    runId: `conv${++runs}`,
    kinds: scenario.kinds,
    skews: scenario.skews,
    now: () => BASE_TIME + time.now,
    maxClockDriftMs: scenario.maxClockDriftMs,
    snapshotEvery: scenario.snapshotEvery,
    syncOptions: (node) => ({
      timers: time,
      random,
      backoff: { initialMs: 20, maxMs: 400, healthyAfterMs: 1000 },
      // Small batches and a narrow window: catch-up spans many batches and waits for acks.
      limits: { maxBatchEvents: scenario.batch[node]!, maxInFlightBatches: 2 },
    }),
  });
  const faults = { ...scenario.faults };
  world.log(
    `topology ${scenario.topology}, links ${JSON.stringify(scenario.links)}, kinds ${scenario.kinds}, skews ${scenario.skews}`,
  );
  scenario.links.forEach(([a, b], i) => {
    const pair = memoryTransportPair({ seed: scenario.seed + i, faults, schedule: time.schedule });
    world.addLink(a, b, pair, () => pair[0].kill('test kill'));
  });
  const replica = (n: number) => n < scenario.replicas;
  try {
    await world.openAll();
    for (const action of scenario.actions) {
      world.log(JSON.stringify(action));
      switch (action.kind) {
        case 'append':
          await world.append(
            action.replica,
            `s${action.stream}`,
            action.count,
            action.mode,
            action.ids,
          );
          break;
        case 'retry':
          await world.retry(action.replica);
          break;
        case 'restart':
          await world.restart(action.node, action.inflight, replica(action.node));
          break;
        case 'kill':
          world.links[action.link]!.kill();
          break;
        case 'toggle':
          await world.toggle(world.links[action.link]!, action.end);
          break;
        case 'partition':
          world.partition(action.mask);
          break;
        case 'heal':
          world.heal();
          break;
        case 'clock':
          world.nodes[action.replica]!.skew = action.skew;
          break;
        case 'check':
          if (await checkNode(world.store(action.node), world.history.join('\n'))) {
            stats.midRunChecks++;
          }
          break;
        case 'collide':
          if (action.a !== action.b) await world.collide(action.a, action.b, `s${action.stream}`);
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
    world.log('heal: no more faults, every link up');
    Object.assign(faults, { delayMs: 0, reorder: 0, duplicate: 0, drop: 0, disconnect: 0 });
    world.heal();
    world.connectAll();
    const quiet = await quiesce(time, world);
    const statuses = world.nodes.map((n) => JSON.stringify(n.store!.sync.status()));
    expect(quiet, `no quiescence\n${statuses.join('\n')}\n${world.history.join('\n')}`).toBe(true);
    const events = await checkConverged(world, {
      causality: !scenario.beyondDrift || enabled.has('causalityBeyondDrift'),
      reopen: true,
    });
    stats.runs++;
    stats.events += events;
    stats.appends += world.attempts.length;
    stats.refused += world.attempts.filter((a) => a.error !== undefined).length;
  } finally {
    await world.closeAll();
  }
}

describe('convergence over the public API (seeded, RELIABILITY case 22)', () => {
  const parameters = propertyParameters(100);
  it(
    'openStore replicas in a star, a mesh or both converge on one log, one order, one state',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          scenarioArb({
            minReplicas: 2,
            maxReplicas: 5,
            maxActions: 40,
            topologies: ['star', 'mesh', 'mixed'],
          }),
          runScenario,
        ),
        parameters,
      );
      // The runs did something (guards against a vacuous pass).
      expect(stats.events / stats.runs).toBeGreaterThan(5);
      expect(stats.refused).toBeGreaterThan(0);
      console.log(`convergence (public API): ${JSON.stringify(stats)}`);
    },
    60_000 + parameters.numRuns * 2_000,
  );
});
