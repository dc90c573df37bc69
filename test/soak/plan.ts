/**
 * The soak's plan, drawn from one seed before anything runs: which clients exist (memory or
 * fake-indexeddb storage, clock offset, a seed for each incarnation's operations) and the fault
 * schedule (what happens when, relative to the start). The same options and seed give the same
 * plan, so `npm run soak -- --seed N --duration D` replays it; what real processes and sockets
 * do with that plan still depends on timing, which the history records.
 *
 * Invariants:
 * 1. The plan is a pure function of the options: no clock, no Math.random.
 * 2. Every fault lands inside [0, durationMs); the settle phase after it has none.
 * 3. Each kind of fault is drawn from its own stream of the seed, so switching one kind on or off
 *    leaves the schedule of the others unchanged.
 */
import { seededRandom } from '../../src/sync/transports/memory.ts';

export const FAULT_KINDS = [
  'server-kill',
  'client-kill',
  'client-restart',
  'cut',
  'stall',
  'clock',
  'garbage',
  'dup-id',
  'dup-seq',
  'shared-id',
  'big-number',
  'oversized',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * The kinds the current main is known to survive: all of them, since issue 12's fixes (clocks:
 * one device's clock no longer drags the others'; client-restart: closing a store while sync
 * ingests no longer throws). A kind a future defect breaks is filtered out here, with why.
 */
export const SAFE_KINDS: readonly FaultKind[] = FAULT_KINDS;

export interface SoakOptions {
  seed: number;
  durationMs: number;
  clients: number;
  faults: readonly FaultKind[];
  /** Mean time between two appends of one client. */
  appendEveryMs: number;
  /** Scales every fault's rate (1 = the defaults below). */
  faultRate: number;
  /** How long replicas get, once faults stop, to reach idle with nothing pending. */
  settleMs: number;
}

export interface ClientPlan {
  slot: number;
  storage: 'memory' | 'indexeddb';
}

export type Fault =
  | { at: number; kind: 'server-kill'; downMs: number }
  | { at: number; kind: 'client-kill'; slot: number; downMs: number }
  | { at: number; kind: 'client-restart'; slot: number }
  | { at: number; kind: 'cut'; fraction: number }
  | { at: number; kind: 'stall'; fraction: number; ms: number }
  | {
      at: number;
      kind: 'garbage' | 'dup-id' | 'dup-seq' | 'big-number' | 'oversized';
      seed: number;
    };

export interface SoakPlan {
  options: SoakOptions;
  clients: ClientPlan[];
  faults: Fault[];
}

/** Mean seconds between two faults of a kind, at faultRate 1. */
const MEAN_GAP_S: Record<Fault['kind'], number> = {
  'server-kill': 20,
  'client-kill': 6,
  'client-restart': 8,
  cut: 3,
  stall: 4,
  garbage: 10,
  'dup-id': 12,
  'dup-seq': 12,
  'big-number': 12,
  oversized: 15,
};

/** A stream of the seed for one purpose (invariant 3). */
export function streamOf(seed: number, ...path: number[]): () => number {
  let h = seed >>> 0;
  for (const p of path) h = Math.imul(h ^ (p + 0x9e3779b9), 0x85ebca6b) >>> 0;
  return seededRandom(h === 0 ? 1 : h);
}

/** A number of the kind's name (not its place in the list, which may grow). */
function kindIndex(kind: FaultKind): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < kind.length; i++) h = Math.imul(h ^ kind.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function makePlan(options: SoakOptions): SoakPlan {
  const clients: ClientPlan[] = [];
  for (let slot = 0; slot < options.clients; slot++) {
    // Half and half: even slots on memory, odd ones on IndexedDB.
    clients.push({ slot, storage: slot % 2 === 0 ? 'memory' : 'indexeddb' });
  }
  const faults: Fault[] = [];
  for (const kind of Object.keys(MEAN_GAP_S) as Fault['kind'][]) {
    if (!options.faults.includes(kind)) continue;
    const random = streamOf(options.seed, kindIndex(kind));
    const meanMs = (MEAN_GAP_S[kind] * 1000) / options.faultRate;
    // Exponential gaps (a Poisson process), at most 10,000 faults of a kind.
    let at = -Math.log(1 - random()) * meanMs;
    for (let i = 0; i < 10_000 && at < options.durationMs; i++) {
      faults.push(drawFault(kind, Math.round(at), random, options));
      at += -Math.log(1 - random()) * meanMs;
    }
  }
  faults.sort((a, b) => a.at - b.at);
  return { options, clients, faults };
}

function drawFault(
  kind: Fault['kind'],
  at: number,
  random: () => number,
  options: SoakOptions,
): Fault {
  switch (kind) {
    case 'server-kill':
      return { at, kind, downMs: Math.round(100 + random() * 2000) };
    case 'client-kill':
      return {
        at,
        kind,
        slot: Math.floor(random() * options.clients),
        downMs: Math.round(100 + random() * 2000),
      };
    case 'client-restart':
      return { at, kind, slot: Math.floor(random() * options.clients) };
    case 'cut':
      return { at, kind, fraction: Math.round((0.1 + random() * 0.9) * 100) / 100 };
    case 'stall':
      return {
        at,
        kind,
        fraction: Math.round((0.1 + random() * 0.4) * 100) / 100,
        ms: Math.round(200 + random() * 5000),
      };
    case 'garbage':
    case 'dup-id':
    case 'dup-seq':
    case 'big-number':
    case 'oversized':
      return { at, kind, seed: Math.floor(random() * 2 ** 31) };
    default: {
      const never: never = kind;
      throw new Error(`unknown fault ${String(never)}`);
    }
  }
}

/**
 * The seed of a client's incarnation (its operations and clock): a restarted client is a new
 * device with new data, drawn from its own stream.
 */
export function incarnationSeed(seed: number, slot: number, incarnation: number): number {
  return Math.floor(streamOf(seed, 1000 + slot, incarnation)() * 2 ** 31) + 1;
}

/** The clock offset of an incarnation: within ±24 h when clock faults are on, else 0. */
export function clockOffsetOf(options: SoakOptions, incarnationSeedValue: number): number {
  if (!options.faults.includes('clock')) return 0;
  const random = streamOf(incarnationSeedValue, 7);
  // One in three devices has a wrong clock; the others are honest.
  if (random() >= 1 / 3) return 0;
  return Math.round((random() * 2 - 1) * 24 * 3600 * 1000);
}

export function describeFault(f: Fault): string {
  const t = `${(f.at / 1000).toFixed(2)}s`;
  switch (f.kind) {
    case 'server-kill':
      return `${t} server SIGKILL, restart after ${f.downMs} ms`;
    case 'client-kill':
      return `${t} client ${f.slot} SIGKILL, restart (data lost) after ${f.downMs} ms`;
    case 'client-restart':
      return `${t} client ${f.slot} closes and reopens its store (an app restart)`;
    case 'cut':
      return `${t} cut ${Math.round(f.fraction * 100)}% of connections`;
    case 'stall':
      return `${t} stall ${Math.round(f.fraction * 100)}% of connections for ${f.ms} ms`;
    default:
      return `${t} hostile ${f.kind} (seed ${f.seed})`;
  }
}
