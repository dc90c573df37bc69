/**
 * Fan-out benchmark (`npm run bench fanout`): N clients of one space each append `rate` events/s
 * for a while; every event must reach the other N - 1. Per cell of the grid (clients × rate):
 * p50 and p99 over events of the time from append until the LAST other client received it
 * ("delivery to all others"), the server's CPU (share of one core) and peak resident memory.
 * Beside it, in the same run, the floor of any relay: a plain `ws` server that forwards each frame
 * to every other socket without storing or checking anything (fanout-server.ts).
 *
 * The server is a child process of its own (measured alone); the clients live in FANOUT_PROCS
 * child processes (fanout-clients.ts: the real peer session over ws, on a light log; received
 * batches are read light, ids only, unless FANOUT_RECEIVE=session). Every cell
 * is bounded: `BENCH_FANOUT_SECONDS` of appends, then at most `BENCH_FANOUT_DRAIN_SECONDS` for
 * deliveries to finish; an event still missing a receiver then counts with the latency it had
 * reached (a lower bound), and the share of deliveries made is reported.
 *
 * Knobs: BENCH_FANOUT_CLIENTS (default "200,1000"), BENCH_FANOUT_RATES ("1,10"),
 * BENCH_FANOUT_SECONDS (15), BENCH_FANOUT_DRAIN_SECONDS (15), BENCH_FANOUT_PROCS (4),
 * BENCH_FANOUT_RUNS (1: runs of each cell, medians reported),
 * BENCH_FANOUT_CPU_PROF (a directory: profile our server with node --cpu-prof),
 * BENCH_FANOUT_SKIP_RAW (1: our server only, e.g. while profiling).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './bench-child.ts';
import { type Collected, clock } from './fanout-clients.ts';
import { type BenchResult, median, percentile, result } from './results.ts';

const list = (value: string | undefined, fallback: number[]) =>
  value === undefined ? fallback : value.split(',').map(Number);
const CLIENTS = list(process.env.BENCH_FANOUT_CLIENTS, [200, 1000]);
const RATES = list(process.env.BENCH_FANOUT_RATES, [1, 10]);
const SECONDS = Number(process.env.BENCH_FANOUT_SECONDS ?? 15);
const DRAIN_SECONDS = Number(process.env.BENCH_FANOUT_DRAIN_SECONDS ?? 15);
const PROCS = Number(process.env.BENCH_FANOUT_PROCS ?? 4);
const RUNS = Number(process.env.BENCH_FANOUT_RUNS ?? 1);
/**
 * Set to a directory: our server writes a CPU profile there per cell (the inspector's
 * profiler, as node --cpu-prof, which NODE_OPTIONS may not carry).
 */
const PROFILE_DIR = process.env.BENCH_FANOUT_CPU_PROF;
const SKIP_RAW = process.env.BENCH_FANOUT_SKIP_RAW === '1';

type Mode = 'chronicle' | 'raw';

interface Cell {
  p50: number;
  p99: number;
  /** Deliveries made / deliveries owed (events × (N - 1)). */
  delivered: number;
  events: number;
  /** Server CPU during appends and drain, as a share of one core (1 = 100 %). */
  cpu: number;
  /** Server CPU ms per 1,000 deliveries made: the cost of fan-out, less sensitive to load. */
  cpuPerThousand: number;
  /** CPU of all client processes over the same time, in cores (1 = one core busy). */
  clientCpu: number;
  rssMb: number;
  closes: Record<string, number>;
}

interface Child {
  pid: number;
  /** Resolves with the value of the next message carrying `key`. */
  next<T>(key: string, ms: number): Promise<T>;
  send(m: object): void;
  stop(): Promise<void>;
}

/** Forks `module` (beside this file) with `env` added; IPC messages are `{ key: value }`. */
function forkChild(module: string, env: Record<string, string>): Child {
  const child: ChildProcess = fork(fileURLToPath(new URL(module, import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<string, ((value: unknown) => void)[]>();
  child.on('message', (m) => {
    for (const [key, value] of Object.entries(m as Record<string, unknown>)) {
      waiting.get(key)?.shift()?.(value);
    }
  });
  return {
    pid: child.pid ?? 0,
    next: <T>(key: string, ms: number) =>
      withDeadline(
        new Promise<T>((resolve, reject) => {
          const queue = waiting.get(key) ?? [];
          queue.push(resolve as (value: unknown) => void);
          waiting.set(key, queue);
          void exited.then(() => reject(new Error(`bench: ${module} exited (${key})`)));
        }),
        ms,
        `${module} to say ${key}`,
      ),
    send: (m) => {
      if (child.connected) child.send(m);
    },
    async stop() {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      if (child.connected) child.send({ cmd: 'stop' });
      else child.kill('SIGKILL');
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * CPU time (ms) and peak resident memory (MB) of a process, read from /proc: a saturated server
 * cannot answer in time, the kernel can. NaN where /proc is missing.
 */
function procUsage(pid: number): { cpuMs: number; peakRssMb: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime is the 14th field, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return { cpuMs: ticks * 10, peakRssMb: hwm ? Number(hwm[1]) / 1024 : Number.NaN };
  } catch {
    return { cpuMs: Number.NaN, peakRssMb: Number.NaN };
  }
}

async function runCell(mode: Mode, clients: number, rate: number): Promise<Cell> {
  const server = forkChild('./fanout-server.ts', {
    FANOUT_SERVER: mode,
    ...(PROFILE_DIR && mode === 'chronicle' ? { FANOUT_CPU_PROF: PROFILE_DIR } : {}),
  });
  const procs: Child[] = [];
  try {
    const url = await server.next<string>('url', 30_000);
    const per = Math.ceil(clients / PROCS);
    for (let first = 0; first < clients; first += per) {
      procs.push(
        forkChild('./fanout-clients.ts', {
          FANOUT_MODE: mode,
          FANOUT_URL: url,
          FANOUT_FIRST: String(first),
          FANOUT_COUNT: String(Math.min(per, clients - first)),
        }),
      );
    }
    await Promise.all(procs.map((p) => p.next('ready', 120_000)));
    const cpu0 = procUsage(server.pid).cpuMs;
    const clientCpu0 = procs.reduce((n, p) => n + procUsage(p.pid).cpuMs, 0);
    const start = clock();
    const at = start + 500;
    const ms = SECONDS * 1000;
    for (const p of procs) p.send({ cmd: 'run', rate, ms, at });
    const sent = (await Promise.all(procs.map((p) => p.next<number>('sent', ms + 30_000)))).reduce(
      (a, b) => a + b,
      0,
    );
    const owed = sent * (clients - 1);
    const drainUntil = clock() + DRAIN_SECONDS * 1000;
    let received = 0;
    while (clock() < drainUntil) {
      for (const p of procs) p.send({ cmd: 'stats' });
      const counts = await Promise.all(procs.map((p) => p.next<number>('received', 30_000)));
      received = counts.reduce((a, b) => a + b, 0);
      if (received >= owed) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const end = clock();
    const usage = procUsage(server.pid);
    const cpu = (usage.cpuMs - cpu0) / (end - at);
    const cpuPerThousand = (usage.cpuMs - cpu0) / Math.max(1, received / 1000);
    const clientCpu =
      (procs.reduce((n, p) => n + procUsage(p.pid).cpuMs, 0) - clientCpu0) / (end - at);
    const rssMb = usage.peakRssMb;
    for (const p of procs) p.send({ cmd: 'collect' });
    const parts = await Promise.all(procs.map((p) => p.next<Collected>('collected', 60_000)));
    return summarize(parts, clients, end, {
      cpu,
      cpuPerThousand,
      clientCpu,
      rssMb,
      owed,
      received,
    });
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await server.stop();
  }
}

function summarize(
  parts: Collected[],
  clients: number,
  end: number,
  m: {
    cpu: number;
    cpuPerThousand: number;
    clientCpu: number;
    rssMb: number;
    owed: number;
    received: number;
  },
): Cell {
  const sentAt = new Map<string, number>();
  for (const part of parts) for (const [id, t] of part.sent) sentAt.set(id, t);
  const seen = new Map<string, { last: number; count: number }>();
  for (const part of parts) {
    for (const [id, last, count] of part.received) {
      const s = seen.get(id);
      if (s === undefined) seen.set(id, { last, count });
      else {
        s.count += count;
        if (last > s.last) s.last = last;
      }
    }
  }
  const latencies: number[] = [];
  for (const [id, t] of sentAt) {
    const s = seen.get(id);
    // Not yet at every other client: the latency it had reached, a lower bound.
    latencies.push(s !== undefined && s.count >= clients - 1 ? s.last - t : end - t);
  }
  const closes: Record<string, number> = {};
  for (const part of parts) {
    for (const [code, n] of Object.entries(part.closes)) closes[code] = (closes[code] ?? 0) + n;
  }
  return {
    p50: latencies.length ? percentile(latencies, 50) : Number.NaN,
    p99: latencies.length ? percentile(latencies, 99) : Number.NaN,
    delivered: m.owed === 0 ? 1 : Math.min(1, m.received / m.owed),
    events: sentAt.size,
    cpu: m.cpu,
    cpuPerThousand: m.cpuPerThousand,
    clientCpu: m.clientCpu,
    rssMb: m.rssMb,
    closes,
  };
}

function describe(c: Cell): string {
  const closes = Object.entries(c.closes)
    .map(([code, n]) => `${n}×${code}`)
    .join(' ');
  return (
    `p50 ${c.p50.toFixed(0)} ms, p99 ${c.p99.toFixed(0)} ms, ${(c.delivered * 100).toFixed(1)} % delivered ` +
    `of ${c.events} events, server CPU ${(c.cpu * 100).toFixed(0)} % (${c.cpuPerThousand.toFixed(1)} ms / 1,000 deliveries), RSS ${c.rssMb.toFixed(0)} MB, clients' CPU ${c.clientCpu.toFixed(2)} cores` +
    (closes ? `, closes ${closes}` : '')
  );
}

/** The median of each figure over runs of one cell (closes summed). */
function medianCell(cells: Cell[]): Cell {
  const m = (pick: (c: Cell) => number) => median(cells.map(pick));
  const closes: Record<string, number> = {};
  for (const c of cells) {
    for (const [code, n] of Object.entries(c.closes)) closes[code] = (closes[code] ?? 0) + n;
  }
  return {
    p50: m((c) => c.p50),
    p99: m((c) => c.p99),
    delivered: m((c) => c.delivered),
    events: m((c) => c.events),
    cpu: m((c) => c.cpu),
    cpuPerThousand: m((c) => c.cpuPerThousand),
    clientCpu: m((c) => c.clientCpu),
    rssMb: m((c) => c.rssMb),
    closes,
  };
}

export async function runFanoutBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const clients of CLIENTS) {
    for (const rate of RATES) {
      const raws: Cell[] = [];
      const ourRuns: Cell[] = [];
      for (let run = 0; run < RUNS; run++) {
        if (!SKIP_RAW) {
          raws.push(await runCell('raw', clients, rate));
          console.error(`  fan-out ${clients} × ${rate}/s, raw relay: ${describe(raws[run]!)}`);
        }
        ourRuns.push(await runCell('chronicle', clients, rate));
        console.error(`  fan-out ${clients} × ${rate}/s, chronicle: ${describe(ourRuns[run]!)}`);
      }
      if (SKIP_RAW) continue;
      const raw = medianCell(raws);
      const ours = medianCell(ourRuns);
      const label = `fanout/${clients} clients × ${rate} events/s`;
      const note = `${SECONDS} s of appends, median of ${RUNS}; baseline: raw ws relay (no storage), same run`;
      out.push(
        result(`${label}: p50 to all others`, 'ms', ours.p50, raw.p50, note),
        result(`${label}: p99 to all others`, 'ms', ours.p99, raw.p99, note),
        result(
          `${label}: deliveries made`,
          '%',
          ours.delivered * 100,
          raw.delivered * 100,
          `within ${DRAIN_SECONDS} s after the appends stopped`,
        ),
        result(`${label}: server CPU`, '% of a core', ours.cpu * 100, raw.cpu * 100),
        result(
          `${label}: server CPU per 1,000 deliveries`,
          'ms',
          ours.cpuPerThousand,
          raw.cpuPerThousand,
          'CPU of the server process / deliveries made: the cost of fan-out, less load-sensitive',
        ),
        result(`${label}: server peak RSS`, 'MB', ours.rssMb, raw.rssMb),
        result(
          `${label}: clients' CPU`,
          'cores',
          ours.clientCpu,
          raw.clientCpu,
          "all client processes together; with the server's, what the machine gave the run",
        ),
      );
    }
  }
  return out;
}
