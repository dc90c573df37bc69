/**
 * One schedule of the public-API convergence property on virtual time: builds the world of a
 * scenario (convergence-harness.ts), performs its actions, heals the network, waits for
 * quiescence, and checks convergence (convergence-checks.ts). Shared by
 * convergence.public.property.test.ts and convergence.planted.test.ts.
 */
import { expect } from 'vitest';
import { memoryTransportPair } from '../../src/index.ts';
import { seededRandom } from '../../src/sync/transports/memory.ts';
import { type ActionVariant, applyAction } from './convergence-actions.ts';
import { checkConverged, checkNode } from './convergence-checks.ts';
import { World } from './convergence-harness.ts';
import { enabled, type Scenario } from './convergence-scenario.ts';
import { VirtualTime } from './virtual-time.ts';

const BASE_TIME = Date.UTC(2026, 0, 1);
let runs = 0;
export const stats = { runs: 0, events: 0, appends: 0, refused: 0, midRunChecks: 0 };

/**
 * Runs virtual time until nothing is scheduled and every node is idle with nothing pending and
 * as many events as the others. fake-indexeddb works in real macrotasks that virtual time does
 * not see, so a catch-up through small batches can take many rounds: the bound is on rounds in
 * which no node gained an event (a wedged replica retrying for ever), plus an overall cap.
 */
async function quiesce(time: VirtualTime, world: World): Promise<boolean> {
  let last = '';
  let stalled = 0;
  for (let round = 0; round < 2_000 && stalled < 60; round++) {
    await time.run(5_000, time.now + 2_000);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    const counts = await Promise.all(world.nodes.map(async (n) => (await n.store!.read()).length));
    const quiet = world.nodes.every((n) => {
      const s = n.store!.sync.status();
      return s.state === 'idle' && s.pending === 0;
    });
    if (quiet && time.pending === 0 && counts.every((c) => c === counts[0])) return true;
    const now = counts.join(',');
    stalled = now === last ? stalled + 1 : 0;
    last = now;
  }
  return false;
}

export function runScenario(scenario: Scenario): Promise<void> {
  return runScenarioWith(scenario, {});
}

/** The same run with every replica encrypting under one key (and hiding names, given names). */
export const runEncryptedScenario =
  (encryptionKey: Uint8Array, names?: Uint8Array) =>
  (scenario: Scenario): Promise<void> =>
    runScenarioWith(scenario, names === undefined ? { encryptionKey } : { encryptionKey, names });

async function runScenarioWith(
  scenario: Scenario,
  options: { encryptionKey?: Uint8Array; names?: Uint8Array },
): Promise<void> {
  const time = new VirtualTime();
  const random = seededRandom(scenario.seed);
  const world = new World({
    ...options,
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
      server: scenario.hubIsServer && node === scenario.replicas,
    }),
  });
  const faults = { ...scenario.faults };
  world.log(
    `topology ${scenario.topology}${scenario.hubIsServer ? ' (hub as server)' : ''}, links ${JSON.stringify(scenario.links)}, kinds ${scenario.kinds}, skews ${scenario.skews}`,
  );
  scenario.links.forEach(([a, b], i) => {
    const pair = memoryTransportPair({ seed: scenario.seed + i, faults, schedule: time.schedule });
    world.addLink(a, b, pair, () => pair[0].kill('test kill'));
  });
  const replica = (n: number) => n < scenario.replicas;
  try {
    await world.openAll();
    const variant: ActionVariant = {
      restart: (node, inflight) => world.restart(node, inflight, replica(node)),
      partitionMask: (mask) => mask,
      async check(node) {
        if (await checkNode(world.store(node), world.attempts, world.history.join('\n'))) {
          stats.midRunChecks++;
        }
      },
      run: (ms) => time.run(10_000, time.now + ms),
    };
    for (const action of scenario.actions) await applyAction(world, action, variant);
    // Clocks are set right too, and every link reconnects: a peer holds events stamped beyond
    // the other's clock until they are re-stamped at a hello (docs/protocol.md C3, C5).
    world.log('heal: no more faults, clocks right, every link up and reconnected');
    for (const node of world.nodes) node.skew = 0;
    // Partitions heal and faults stop first: a cut link would otherwise retry (every 400 ms at
    // most) through the hours below, 100,000 timer steps of nothing.
    Object.assign(faults, { delayMs: 0, reorder: 0, duplicate: 0, drop: 0, disconnect: 0 });
    world.heal();
    // Events of a fast clock that a peer already holds are not re-stamped: the others take them
    // once their clocks reach them (C3). Let virtual time pass the latest stamp any node holds:
    // more than the largest skew when a node's clock jumped after a server had set its offset
    // (seed 20261204, path 4012: skew + offset put an event 96 h ahead, beyond every skew).
    const times = await Promise.all(
      world.nodes.map(async (n) => Math.max(0, ...(await n.store!.read()).map((e) => e.time))),
    );
    const ahead = Math.max(0, ...times) - time.now;
    if (ahead > 0) await time.run(100_000, time.now + ahead + 10 * 60_000);
    for (const link of world.links) link.kill();
    world.connectAll();
    const quiet = await quiesce(time, world);
    const statuses = world.nodes.map((n) => JSON.stringify(n.store!.sync.status()));
    expect(quiet, `no quiescence\n${statuses.join('\n')}\n${world.history.join('\n')}`).toBe(true);
    const events = await checkConverged(world, {
      causality: !scenario.beyondDrift || enabled.has('causalityBeyondDrift'),
      reopen: true,
    });
    stats.runs++;
    // Long runs (the knob) report as they go: a run stopped early still tells how far it got.
    if (process.env.CHRONICLE_PROPERTY_RUNS !== undefined && stats.runs % 500 === 0) {
      const cpu = process.cpuUsage();
      console.log(`${stats.runs} schedules, ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s CPU`);
    }
    stats.events += events;
    stats.appends += world.attempts.length;
    stats.refused += world.attempts.filter((a) => a.error !== undefined).length;
  } finally {
    await world.closeAll();
  }
}
