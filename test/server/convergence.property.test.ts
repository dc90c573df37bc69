/**
 * The public-API convergence property through the real sync server: a server on a SQLite file
 * stands where the hub store stands in test/sync/convergence.public.property.test.ts, reached
 * with webSocketTransport over the `ws` package on 127.0.0.1; in the mixed topology some
 * replicas also sync peer to peer over memory transports. The server is restarted on the same
 * file too. Real sockets and real timers: fewer runs than the virtual-time property, and a run
 * does not replay exactly (fast-check's seed gives the same actions). The same checks hold at
 * the end, and a replica that joins last must catch up with the same log from the server alone.
 * Knobs: test/sync/convergence-scenario.ts.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type EventStore,
  HistoryUnavailableError,
  memoryStorage,
  memoryTransportPair,
  openStore,
  webSocketTransport,
} from '../../src/index.ts';
import {
  createSyncServer,
  createToken,
  type SyncServer,
  sqliteStorage,
} from '../../src/server/index.ts';
import { seededRandom } from '../../src/sync/transports/memory.ts';
import { type ActionVariant, applyAction } from '../sync/convergence-actions.ts';
import { checkConverged, checkNode } from '../sync/convergence-checks.ts';
import { World } from '../sync/convergence-harness.ts';
import {
  enabled,
  propertyParameters,
  type Scenario,
  scenarioArb,
} from '../sync/convergence-scenario.ts';
import { SECRET, tempDir } from './helpers.ts';

let runs = 0;
const stats = { runs: 0, events: 0, serverRestarts: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(path: string, port = 0): Promise<SyncServer> {
  return createSyncServer({
    port,
    // The server's default batch limit: each side sends within the smaller it was told (hello).
    limits: { maxInFlightBatches: 2 },
    storage: sqliteStorage(path),
    auth: { secret: SECRET },
    log: () => {},
  });
}

/**
 * How many events `store` reads, or undefined while it cannot read them all: a partial replica
 * (retention on: the `retaining` project) reads below its horizon through its server only, and
 * rejects while its session is down (HISTORY_OFFLINE).
 */
async function countOrUnknown(store: EventStore<unknown>): Promise<number | undefined> {
  return (await logOrUnknown(store))?.length;
}

/** Each event's id and cursor, in the total order; undefined for a replica missing history. */
async function logOrUnknown(store: EventStore<unknown>): Promise<string[] | undefined> {
  try {
    return (await store.read()).map((e) => `${e.id} ${e.cursor}`);
  } catch (error) {
    if (error instanceof HistoryUnavailableError) return undefined;
    throw error;
  }
}

/**
 * Until every node is idle with nothing pending and all hold the same events (real time): the
 * same ids and cursors, not only as many. Two copies of one id (a collision) count alike: a node
 * whose copy was still to be replaced by the winner on its way (relayed at a new position by
 * its peer: core/copies.ts invariant 3) looked quiet under CI load, and the check after failed
 * on that one copy (seed 1933679446, path 1).
 */
async function quiesce(world: World, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let quietRounds = 0;
  while (Date.now() < deadline) {
    await sleep(25);
    const idle = world.nodes.every((n) => {
      const s = n.store!.sync.status();
      return s.state === 'idle' && s.pending === 0;
    });
    const logs = await Promise.all(world.nodes.map((n) => logOrUnknown(n.store!)));
    const first = logs[0]?.join('\n');
    const same = logs.every((l) => l !== undefined && l.join('\n') === first);
    quietRounds = idle && same ? quietRounds + 1 : 0;
    if (quietRounds >= 3) return true;
  }
  return false;
}

async function runScenario(scenario: Scenario): Promise<void> {
  const tmp = tempDir();
  const path = join(tmp.dir, 'server.sqlite');
  let server = await startServer(path);
  const port = server.port;
  const space = `space-${++runs}`;
  const token = (sub: string) =>
    createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds: 600 });
  const hub = scenario.replicas;
  const random = seededRandom(scenario.seed);
  const world = new World({
    runId: `srv${runs}`,
    kinds: scenario.kinds.slice(0, hub),
    skews: scenario.skews,
    now: () => Date.now(),
    maxClockDriftMs: scenario.maxClockDriftMs,
    snapshotEvery: scenario.snapshotEvery,
    syncOptions: (node) => ({
      random,
      backoff: { initialMs: 10, maxMs: 150, healthyAfterMs: 1000 },
      limits: { maxBatchEvents: scenario.batch[node]!, maxInFlightBatches: 2 },
      WebSocket: WebSocket as never,
    }),
  });
  const faults = { ...scenario.faults, delayMs: Math.min(scenario.faults.delayMs ?? 0, 5) };
  world.log(
    `server; topology ${scenario.topology}, links ${JSON.stringify(scenario.links)} (node ${hub} is the server), kinds ${scenario.kinds}`,
  );
  for (const [i, [a, b]] of scenario.links.entries()) {
    if (b === hub) {
      const ws = webSocketTransport(server.url, {
        token: token(`n${a}`),
        WebSocket: WebSocket as never,
      });
      world.addLink(a, 'server', [ws], () => ws.close(1000, 'test kill'));
    } else {
      const pair = memoryTransportPair({ seed: scenario.seed + i, faults });
      world.addLink(a, b, pair, () => pair[0].kill('test kill'));
    }
  }
  try {
    await world.openAll();
    const variant: ActionVariant = {
      async restart(node, inflight) {
        if (node !== hub) return world.restart(node, inflight, true);
        await server.close();
        server = await startServer(path, port);
        stats.serverRestarts++;
      },
      // The server is on the side of the hub's bit.
      partitionMask: (mask) => ((mask & (1 << hub)) === 0 ? mask : ~mask),
      async check(node) {
        if (node !== hub) {
          await checkNode(world.store(node), world.attempts, world.history.join('\n'));
        }
      },
      run: (ms) => sleep(Math.floor(ms / 5)),
    };
    for (const action of scenario.actions) await applyAction(world, action, variant);
    // Clocks are set right too, and every link reconnects: a peer holds events stamped beyond
    // the other's clock until they are re-stamped at a hello (docs/protocol.md C3, C5).
    world.log('heal: no more faults, clocks right, every link up and reconnected');
    for (const node of world.nodes) node.skew = 0;
    for (const link of world.links) link.kill();
    Object.assign(faults, { delayMs: 0, reorder: 0, duplicate: 0, drop: 0, disconnect: 0 });
    world.heal();
    world.connectAll();
    const quiet = await quiesce(world, 30_000);
    const statuses = world.nodes.map((n) => JSON.stringify(n.store!.sync.status()));
    expect(quiet, `no quiescence\n${statuses.join('\n')}\n${world.history.join('\n')}`).toBe(true);
    // A replica that joins last gets the same log from the server alone.
    const late = await openStore({
      name: 'late',
      storage: memoryStorage(),
      syncOptions: { WebSocket: WebSocket as never },
    });
    const lateLink = late.sync.connect({ url: server.url, token: token('late') });
    const expected = (await world.store(0).read()).map((e) => e.id);
    const deadline = Date.now() + 30_000;
    while (((await countOrUnknown(late)) ?? -1) < expected.length && Date.now() < deadline) {
      await sleep(25);
    }
    expect(
      (await late.read()).map((e) => e.id),
      `late joiner\n${world.history.join('\n')}`,
    ).toEqual(expected);
    await lateLink.close();
    await late.close();
    const events = await checkConverged(world, {
      causality: !scenario.beyondDrift || enabled.has('causalityBeyondDrift'),
      reopen: true,
    });
    stats.runs++;
    stats.events += events;
  } finally {
    await world.closeAll();
    await server.close();
    tmp.cleanup();
  }
}

/**
 * The schedule of seed -6599509, path 0 in the `retaining` project (fast-check's seed maps to
 * other schedules where scenarioArb is not filtered, so the schedule itself is kept). Node 1,
 * cut off from the server and restarted, had trimmed stream s1's newest event: the harness's own
 * read of s1's version before an append failed with HISTORY_OFFLINE and ended the run, until
 * convergence-harness.ts before() took it as unknown. On real timers whether node 1 trimmed
 * before the partition varies: replayed by its seed, 11 of 21 runs failed; this copy, run after
 * the property (a warm process), reached that read in 2 of 4 runs, and first in a process in none.
 */
const OFFLINE_BELOW_HORIZON: Scenario = {
  topology: 'star',
  replicas: 2,
  hub: true,
  hubIsServer: false,
  kinds: ['idb', 'memory', 'memory'],
  links: [
    [0, 2],
    [1, 2],
  ],
  skews: [3, 139335],
  maxClockDriftMs: 86400000,
  beyondDrift: false,
  snapshotEvery: { order: 1, digest: 1 },
  batch: [5, 2, 1],
  faults: { delayMs: 4, reorder: 0.02, duplicate: 0.3, drop: 0, disconnect: 0 },
  seed: 745717907,
  actions: [
    { kind: 'append', replica: 0, stream: 1, count: 4, mode: 'any', ids: false },
    { kind: 'check', node: 1 },
    { kind: 'check', node: 2 },
    { kind: 'partition', mask: 5 },
    { kind: 'append', replica: 1, stream: 0, count: 2, mode: 'current', ids: false },
    { kind: 'kill', link: 1 },
    { kind: 'run', ms: 31 },
    { kind: 'check', node: 1 },
    { kind: 'restart', node: 1, inflight: 0 },
    { kind: 'run', ms: 129 },
    { kind: 'append', replica: 0, stream: 1, count: 3, mode: 'any', ids: false },
    { kind: 'append', replica: 1, stream: 0, count: 3, mode: 'any', ids: true },
    { kind: 'kill', link: 0 },
    { kind: 'restart', node: 0, inflight: 0 },
    { kind: 'append', replica: 0, stream: 0, count: 3, mode: 'none', ids: false },
    { kind: 'append', replica: 1, stream: 1, count: 2, mode: 'any', ids: true },
  ],
};

/**
 * The schedule of seed 1933679446, path 1 (CI, the `compacting` project; it failed in `node` too,
 * every time). At the heal node 0 kept the server's earlier correction (+4 min) of a clock that
 * was then set right, so its hello to node 2 showed node 2's clock four minutes slow; the server
 * then took the correction back. Measured against the corrected clock, node 2's clock still
 * seemed four minutes slow, and node 1's events (stamped two minutes ahead) that node 0 relayed
 * waited for the next look, a minute on, past the 30 s the heal allows (clock-hold.ts
 * invariant 4).
 */
const CORRECTED_AFTER_PEER_HELLO: Scenario = {
  topology: 'mixed',
  replicas: 4,
  hub: true,
  hubIsServer: true,
  kinds: ['memory', 'idb', 'memory', 'idb', 'idb'],
  links: [
    [0, 4],
    [1, 0],
    [2, 0],
    [3, 4],
  ],
  skews: [-239995, 116694, 170974, -28270],
  maxClockDriftMs: 86400000,
  beyondDrift: false,
  snapshotEvery: {
    order: 3,
    digest: 2,
  },
  batch: [1, 1, 1, 2, 3],
  faults: {
    delayMs: 19,
    reorder: 0,
    duplicate: 0,
    drop: 0,
    disconnect: 0,
  },
  seed: 1406818450,
  actions: [
    {
      kind: 'append',
      replica: 3,
      stream: 2,
      count: 3,
      mode: 'any',
      ids: false,
    },
    {
      kind: 'run',
      ms: 99,
    },
    {
      kind: 'append',
      replica: 0,
      stream: 0,
      count: 3,
      mode: 'stale',
      ids: true,
    },
    {
      kind: 'append',
      replica: 3,
      stream: 2,
      count: 4,
      mode: 'none',
      ids: false,
    },
    {
      kind: 'collide',
      a: 0,
      b: 3,
      stream: 1,
    },
    {
      kind: 'kill',
      link: 1,
    },
    {
      kind: 'append',
      replica: 1,
      stream: 1,
      count: 3,
      mode: 'current',
      ids: true,
    },
    {
      kind: 'collide',
      a: 0,
      b: 2,
      stream: 1,
    },
    {
      kind: 'clock',
      replica: 0,
      skew: 223375,
    },
    {
      kind: 'collide',
      a: 0,
      b: 0,
      stream: 0,
    },
    {
      kind: 'partition',
      mask: 15,
    },
  ],
};

describe('convergence through the sync server (SQLite, WebSocket on 127.0.0.1)', () => {
  const parameters = propertyParameters(6);
  it(
    'openStore replicas syncing through the server, and peer to peer beside it, converge',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          scenarioArb({
            minReplicas: 2,
            maxReplicas: 4,
            maxActions: 25,
            topologies: ['star', 'mixed'],
            // Real time: an event hours ahead that a peer holds would wait hours (C3); the
            // virtual-time property (test/sync) runs clocks beyond the tolerance.
            wideClocks: false,
          }),
          runScenario,
        ),
        parameters,
      );
      // Not vacuous: the runs stored events. (More than 3 a run on average failed by chance in
      // about a fifth of batches of 6 generated scenarios; more than 1 in none of 100.)
      expect(stats.events / stats.runs).toBeGreaterThan(1);
      console.log(`convergence (server): ${JSON.stringify(stats)}`);
    },
    60_000 + parameters.numRuns * 30_000,
  );

  it('replays the schedule of seed -6599509, path 0: an append on a partial replica offline', async () => {
    await runScenario(OFFLINE_BELOW_HORIZON);
  }, 60_000);

  it('replays the schedule of seed 1933679446, path 1: a clock corrected after a peer hello', async () => {
    await runScenario(CORRECTED_AFTER_PEER_HELLO);
  }, 60_000);
});
