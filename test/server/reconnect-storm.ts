/**
 * A reconnect storm (RELIABILITY 19) with real sockets: `clients` stores (openStore, memory
 * storage, the real Syncer and its backoff, webSocketTransport over `ws`) connected to a real
 * server on 127.0.0.1 with a SQLite file; the server is stopped and a new one started on the same
 * port and file, three times:
 *
 *   1. storm:   every connection healthy, the server down for `downMs`, then back;
 *   2. relapse: the server restarted again before the new connections are healthy;
 *   3. healed:  the connections stay up past `healthyAfterMs`, then one more restart.
 *
 * It records, per client, every retry delay its Syncer chose (through the `timers` option: the
 * delay asked for, not when a loaded event loop ran it) and every WebSocket it opened, and on the
 * server side when each connection arrived. Each phase ends only when every client is connected,
 * idle and holds an event appended after the restart (and those appended while it was down).
 * Shared by the test (reconnect-storm.test.ts) and a longer run with 500 clients.
 */
import { join } from 'node:path';
import WebSocket from 'ws';
import { type EventStore, memoryStorage, openStore } from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { BackoffOptions, Timers } from '../../src/sync/link.ts';
import { SECRET, tempDir } from './helpers.ts';

export interface StormOptions {
  clients: number;
  backoff: BackoffOptions;
  /** How long the server stays down in the storm phase. */
  downMs: number;
  /** Each phase must finish within this (a bound, not a measurement). */
  phaseTimeoutMs: number;
}

/** What one client did in one phase, from the moment the server began to close. */
export interface ClientPhase {
  /** Retry delays its Syncer chose, in order. */
  delays: number[];
  /** Its Syncer's retry count before the phase (delays since its last reset, as far as seen). */
  attemptsBefore: number;
  /** ms from its last connection opening to the close that began the phase (undefined: none). */
  connectionAgeMs: number | undefined;
}

export interface PhaseResult {
  name: 'storm' | 'relapse' | 'healed';
  clients: ClientPhase[];
  /** ms after the new server listened, of each connection it accepted. */
  arrivalsMs: number[];
  /** Connections the new server saw closed before the next shutdown, by code and reason. */
  closes: Record<string, number>;
  /** WebSockets the clients opened (attempts), and ms from the close until all had resynced. */
  attempts: number;
  resyncMs: number;
}

export interface StormResult {
  phases: PhaseResult[];
  setupMs: number;
}

interface Probe {
  store: EventStore;
  /** Every retry delay chosen, with performance.now() when it was asked for. */
  delays: { at: number; ms: number }[];
  /** performance.now() of every WebSocket opened, and of every open that succeeded. */
  attempts: number[];
  opened: number[];
  /** Index into delays at which the backoff last restarted from 0, as this probe saw it. */
  resetAt: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline)
      throw new Error(`reconnect storm: ${what} not reached in time`);
    await sleep(50);
  }
}

export async function runReconnectStorm(options: StormOptions): Promise<StormResult> {
  const { backoff, clients } = options;
  const tmp = tempDir();
  const path = join(tmp.dir, 'storm.sqlite');
  let arrivals: number[] = [];
  let listening = 0;
  /** Connections closed other than by a server shutdown, by close code and reason. */
  let closes = new Map<string, number>();
  let stopping = false;
  const start = async (port: number): Promise<SyncServer> => {
    const server = await createSyncServer({
      port,
      storage: sqliteStorage(path),
      auth: { secret: SECRET },
      log: (entry) => {
        if (entry.event === 'connect') arrivals.push(performance.now() - listening);
        if (entry.event === 'close' && !stopping) {
          const key = `${entry.code} ${entry.reason ?? ''}`.trim();
          closes.set(key, (closes.get(key) ?? 0) + 1);
        }
      },
    });
    listening = performance.now();
    return server;
  };
  let server = await start(0);
  const port = server.port;
  const probes: Probe[] = [];
  const began = performance.now();
  try {
    for (let i = 0; i < clients; i++) {
      const probe = { delays: [], attempts: [], opened: [], resetAt: 0 } as unknown as Probe;
      const timers: Timers = {
        setTimeout: (fn, ms) => {
          // The health timer is the one delay the Syncer asks for that is not a retry.
          if (ms !== backoff.healthyAfterMs) probe.delays.push({ at: performance.now(), ms });
          return setTimeout(fn, ms);
        },
        clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      };
      class CountingWebSocket extends WebSocket {
        constructor(url: string) {
          probe.attempts.push(performance.now());
          super(url);
          this.once('open', () => probe.opened.push(performance.now()));
        }
      }
      probe.store = await openStore({
        name: `storm-${i}`,
        storage: memoryStorage(),
        syncOptions: { backoff, timers, WebSocket: CountingWebSocket as never },
      });
      probes.push(probe);
    }
    const token = (i: number) =>
      createToken(SECRET, {
        space: 'storm',
        sub: `client-${i}`,
        scope: ['read', 'write'],
        expiresInSeconds: 3600,
      });
    for (const [i, p] of probes.entries())
      p.store.sync.connect({ url: server.url, token: token(i) });
    let marker = 0;
    const expected = new Set<string>();
    const settled = async (what: string) => {
      marker += 1;
      const event = await probes[0]!.store.append('storm', { type: 'marker', data: { marker } });
      expected.add(event[0]!.id);
      await until(
        async () => {
          if (server.connectionCount() !== clients) return false;
          if (!probes.every((p) => p.store.sync.status().state === 'idle')) return false;
          for (const p of probes)
            if ((await p.store.read({ stream: 'storm' })).length < expected.size) return false;
          return true;
        },
        options.phaseTimeoutMs,
        what,
      );
    };
    await settled('every client connected');
    const setupMs = performance.now() - began;

    const phases: PhaseResult[] = [];
    const phase = async (name: PhaseResult['name'], downMs: number) => {
      const closing = performance.now();
      const before = probes.map((p) => ({
        delays: p.delays.length,
        attempts: p.attempts.length,
        age: p.opened.length === 0 ? undefined : closing - p.opened[p.opened.length - 1]!,
      }));
      stopping = true;
      await server.close();
      stopping = false;
      // While the server is down, every tenth client appends: those must reach everyone too.
      for (let i = 0; i < clients; i += 10) {
        const [event] = await probes[i]!.store.append('storm', { type: 'offline', data: { i } });
        expected.add(event!.id);
      }
      await sleep(downMs);
      arrivals = [];
      closes = new Map();
      server = await start(port);
      await settled(`resync after the ${name} restart`);
      phases.push({
        name,
        clients: probes.map((p, i) => ({
          delays: p.delays.slice(before[i]!.delays).map((d) => d.ms),
          attemptsBefore: before[i]!.delays - p.resetAt,
          connectionAgeMs: before[i]!.age,
        })),
        arrivalsMs: [...arrivals],
        closes: Object.fromEntries(closes),
        attempts: probes.reduce((n, p, i) => n + p.attempts.length - before[i]!.attempts, 0),
        resyncMs: performance.now() - closing,
      });
    };

    await phase('storm', options.downMs);
    // Restarted before any new connection could stay up for healthyAfterMs.
    await phase('relapse', 0);
    // Every connection now stays up past healthyAfterMs (its health timer was set before this
    // sleep began, so it has fired by its end, however late timers run): backoffs reset.
    await sleep(backoff.healthyAfterMs + 200);
    for (const p of probes) p.resetAt = p.delays.length;
    await phase('healed', 0);
    return { phases, setupMs };
  } finally {
    await Promise.all(probes.map((p) => p.store.close().catch(() => {})));
    await server.close();
    tmp.cleanup();
  }
}

/** The most a Syncer may wait before its k-th retry since a reset (sync/link.ts invariant 1). */
export function ceilingOf(k: number, backoff: BackoffOptions): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** k);
}
