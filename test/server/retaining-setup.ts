/**
 * The `retaining` test project (vitest.config.ts; issue 18, "Done when"): the server-syncing
 * store suites and the convergence properties run again, unchanged, with everything issue 18
 * turns on at once:
 * - every store they open without a `retain` policy gets RETAIN (a few events), so a store that
 *   syncs with a server trims what the server acknowledged (src/store/retention.ts);
 * - every sync server they start compresses every message on the wire (permessage-deflate,
 *   threshold 0: src/server/wire-compression.ts);
 * - the SQLite server storages seal every event into a block (compacting-setup.ts, listed
 *   before this file).
 * The rerun cannot pass vacuously: each pass's outcome is counted, and a file in MUST_TRIM fails
 * in afterAll unless its stores trimmed events and its WebSockets negotiated deflate.
 */
import { basename } from 'node:path';
import { afterAll, expect, vi } from 'vitest';
import type { SyncServerOptions } from '../../src/server/server.ts';

/** Keep 4 events: most of a run's log lies below the horizon. */
const RETAIN = { events: 4 } as const;

const counts = vi.hoisted(() => ({
  /** Retention passes that finished, failed, and the events they trimmed. */
  passes: 0,
  failed: 0,
  trimmed: 0,
  /** Passes that trimmed at least one event. */
  trimming: 0,
  /** Client WebSockets that opened, and those with permessage-deflate negotiated. */
  sockets: 0,
  deflated: 0,
  errors: [] as string[],
}));

vi.mock('../../src/store/retention.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/store/retention.ts')>();
  type Outcome = Awaited<ReturnType<InstanceType<typeof real.Retainer>['pass']>>;
  /** One count per pass, however many callers joined it (Retainer.pass). */
  const counted = new WeakSet<Promise<Outcome>>();
  class CountingRetainer extends real.Retainer {
    constructor(...args: ConstructorParameters<typeof real.Retainer>) {
      const [log, policy, now, runtimes] = args;
      super(log, policy ?? { ...RETAIN }, now, runtimes);
    }

    override pass(): Promise<Outcome> {
      const running = super.pass();
      if (!counted.has(running)) {
        counted.add(running);
        running.then(
          (outcome) => {
            counts.passes++;
            counts.trimmed += outcome.trimmed;
            if (outcome.trimmed > 0) counts.trimming++;
          },
          (error: unknown) => {
            counts.failed++;
            counts.errors.push(String((error as { code?: unknown }).code ?? error));
          },
        );
      }
      return running;
    }
  }
  return { ...real, Retainer: CountingRetainer };
});

vi.mock('../../src/server/server.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/server/server.ts')>();
  return {
    ...real,
    createSyncServer: (options: SyncServerOptions) =>
      real.createSyncServer({ wireCompression: { threshold: 0 }, ...options }),
  };
});

vi.mock('ws', async (importOriginal) => {
  const real = await importOriginal<typeof import('ws')>();
  const Base = real.default;
  class CountingWebSocket extends Base {
    constructor(...args: ConstructorParameters<typeof Base>) {
      super(...args);
      this.once('open', () => {
        counts.sockets++;
        if (this.extensions.includes('permessage-deflate')) counts.deflated++;
      });
    }
  }
  return { ...real, default: CountingWebSocket, WebSocket: CountingWebSocket };
});

/**
 * Retention is for replicas that sync through a server (docs/storage-growth.md, "Peers"): a
 * replica trims what the server holds, and a peer that never reaches the server does not get it
 * from there. The convergence scenarios where a replica has no link to the server are left out.
 */
vi.mock('../sync/convergence-scenario.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../sync/convergence-scenario.ts')>();
  return {
    ...real,
    scenarioArb: (...args: Parameters<typeof real.scenarioArb>) =>
      real.scenarioArb(...args).filter((scenario) => {
        if (!scenario.hub) return true;
        const served = new Set(scenario.links.filter(([, b]) => b === scenario.replicas));
        return Array.from({ length: scenario.replicas }, (_, i) => i).every((i) =>
          [...served].some(([a]) => a === i),
        );
      }),
  };
});

/**
 * The files whose runs must trim: their stores sync with a server long enough for a pass to
 * find more than RETAIN acknowledged events.
 */
const MUST_TRIM = new Set<string>([
  'convergence.property.test.ts',
  'history-sync.test.ts',
  'retention-sync.test.ts',
  'signing-race.test.ts',
  'wire-compression.test.ts',
  'shred.test.ts',
  'clock-skew.test.ts',
]);

afterAll(() => {
  const file = basename(expect.getState().testPath ?? '');
  console.log(`retaining ${file}: ${JSON.stringify(counts)}`);
  if (!MUST_TRIM.has(file)) return;
  expect(counts.trimmed, `${file}: no retention pass trimmed anything`).toBeGreaterThan(0);
  expect(counts.deflated, `${file}: no WebSocket negotiated permessage-deflate`).toBeGreaterThan(0);
});
