/**
 * The soak's processes: the server child on one SQLite file, the fault proxy in front of it, and
 * one child per client slot (each restart is a new incarnation: a new device). It starts, kills
 * and restarts them, and kills every child it started when it is shut down, or when this process
 * exits for any reason.
 *
 * Invariants:
 * 1. The proxy forwards to the server only while the server child runs.
 * 2. Every child started is in `live` until it exited; `shutdown` and process exit kill them all.
 */
import { join } from 'node:path';
import { createToken } from '../../src/server/index.ts';
import type { BenchChild } from '../bench/bench-child.ts';
import { type ClientConfig, forkClient } from './client-child.ts';
import { clockOffsetOf, incarnationSeed, type SoakPlan } from './plan.ts';
import { type FaultProxy, startProxy } from './proxy.ts';
import { forkServer, SOAK_SECRET, SOAK_SPACE } from './server-child.ts';

export interface IncarnationInfo {
  label: string;
  slot: number;
  clockOffsetMs: number;
  journal: string;
  dump: string;
  replica?: string;
}

interface Slot {
  index: number;
  incarnation: number;
  child: BenchChild | undefined;
  current: IncarnationInfo | undefined;
}

const live = new Set<BenchChild>();
let exitHookInstalled = false;

function track(child: BenchChild): BenchChild {
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Invariant 2: kill() sends SIGKILL synchronously, so this works inside an exit handler.
    process.on('exit', () => {
      for (const c of live) void c.kill();
    });
  }
  return child;
}

export function soakToken(sub: string): string {
  return createToken(SOAK_SECRET, {
    space: SOAK_SPACE,
    sub,
    scope: ['read', 'write'],
    expiresInSeconds: 24 * 3600,
  });
}

export class Cluster {
  server: BenchChild | undefined;
  readonly incarnations: IncarnationInfo[] = [];
  private readonly slots: Slot[];

  readonly plan: SoakPlan;
  readonly dir: string;
  readonly proxy: FaultProxy;
  readonly backoffMaxMs: number;

  private constructor(plan: SoakPlan, dir: string, proxy: FaultProxy, backoffMaxMs: number) {
    this.plan = plan;
    this.dir = dir;
    this.proxy = proxy;
    this.backoffMaxMs = backoffMaxMs;
    this.slots = plan.clients.map((c) => ({
      index: c.slot,
      incarnation: 0,
      child: undefined,
      current: undefined,
    }));
  }

  static async start(plan: SoakPlan, dir: string, backoffMaxMs: number): Promise<Cluster> {
    const cluster = new Cluster(plan, dir, await startProxy(), backoffMaxMs);
    await cluster.startServer();
    return cluster;
  }

  get serverUrl(): string | undefined {
    return this.server?.running ? this.server.url : undefined;
  }

  async startServer(): Promise<void> {
    if (this.server?.running) return;
    this.server = track(await forkServer(join(this.dir, 'server.sqlite')));
    this.proxy.setTarget(Number(new URL(this.server.url).port));
  }

  /** SIGKILL; false when it was not running. */
  async killServer(): Promise<boolean> {
    const server = this.server;
    if (!server?.running) return false;
    this.proxy.setTarget(undefined);
    await server.kill();
    live.delete(server);
    return true;
  }

  clientRunning(slot: number): boolean {
    return this.slots[slot]?.child?.running === true;
  }

  runningSlots(): number[] {
    return this.slots.filter((s) => s.child?.running === true).map((s) => s.index);
  }

  /** A new incarnation of `slot`: a new device with no data. */
  async startClient(slot: number): Promise<IncarnationInfo> {
    const s = this.slots[slot];
    if (s === undefined) throw new Error(`no client slot ${slot}`);
    if (s.child?.running && s.current !== undefined) return s.current;
    s.incarnation += 1;
    const { options } = this.plan;
    const seed = incarnationSeed(options.seed, slot, s.incarnation);
    const label = `c${slot}.${s.incarnation}`;
    const info: IncarnationInfo = {
      label,
      slot,
      clockOffsetMs: clockOffsetOf(options, seed),
      journal: join(this.dir, `${label}.journal`),
      dump: join(this.dir, `${label}.dump.json`),
    };
    const config: ClientConfig = {
      url: this.proxy.url,
      token: soakToken(`client-${slot}`),
      storage: this.plan.clients[slot]?.storage ?? 'memory',
      name: `soak-${label}`,
      seed,
      clockOffsetMs: info.clockOffsetMs,
      appendEveryMs: options.appendEveryMs,
      sharedIds: options.faults.includes('shared-id'),
      oversized: options.faults.includes('oversized'),
      backoffMaxMs: this.backoffMaxMs,
      journal: info.journal,
      dump: info.dump,
    };
    this.incarnations.push(info);
    s.child = track(await forkClient(config));
    info.replica = s.child.url;
    s.current = info;
    return info;
  }

  /** SIGKILL; false when it was not running. */
  async killClient(slot: number): Promise<boolean> {
    const child = this.slots[slot]?.child;
    if (!child?.running) return false;
    await child.kill();
    live.delete(child);
    return true;
  }

  /** Asks one client `cmd`; undefined when it is not running or failed to answer. */
  async askClient(slot: number, cmd: string): Promise<number | undefined> {
    const child = this.slots[slot]?.child;
    if (!child?.running) return undefined;
    return child.ask(cmd).catch(() => undefined);
  }

  /** Asks every running client `cmd`, a few at a time; undefined for a client that failed. */
  async askClients(cmd: string): Promise<Map<number, number | undefined>> {
    const out = new Map<number, number | undefined>();
    const running = this.slots.filter((s) => s.child?.running === true);
    for (let i = 0; i < running.length; i += 8) {
      await Promise.all(
        running.slice(i, i + 8).map(async (s) => {
          out.set(s.index, await s.child?.ask(cmd).catch(() => undefined));
        }),
      );
    }
    return out;
  }

  currentOf(slot: number): IncarnationInfo | undefined {
    return this.slots[slot]?.current;
  }

  /** Kills every child (their journals and dumps are on disk already) and closes the proxy. */
  async shutdown(): Promise<void> {
    await Promise.all(
      [...live].map(async (c) => {
        await c.kill();
        live.delete(c);
      }),
    );
    await this.proxy.close();
  }
}
