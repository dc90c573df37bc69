/**
 * The soak: a sync server on a SQLite file, dozens of client processes, and the faults of the
 * plan (plan.ts) for a set duration; then faults stop, every replica gets `settleMs` to reach
 * idle with nothing pending and hold what the server holds, and checks.ts gives the verdict.
 * On failure the run's directory (journals, dumps, the SQLite file, history.txt) is kept.
 *
 * Invariants:
 * 1. Every wait has a deadline and every loop a count; the run ends by itself.
 * 2. Every child process is killed at the end, whatever happened (cluster.ts invariant 2).
 * 3. Faults act in the background (a restart does not hold up the next fault); they are all
 *    awaited before the settle phase begins.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { withDeadline } from '../bench/bench-child.ts';
import { ProtocolClient } from '../server/helpers.ts';
import { check, type Verdict } from './checks.ts';
import { Cluster, soakToken } from './cluster.ts';
import { actHostile, type HostileKind } from './hostile.ts';
import { type JournalLine, readDump, readJournal } from './journal.ts';
import { describeFault, type Fault, makePlan, type SoakOptions, streamOf } from './plan.ts';

export interface SoakReport extends Verdict {
  ok: boolean;
  options: SoakOptions;
  /** Faults applied, by kind (a fault that found nothing to act on is not counted). */
  injected: Record<string, number>;
  serverEvents: number;
  /** From the clients' quiesce to every replica idle, nothing pending, holding the server's log. */
  settleTookMs: number;
  replicas: number;
  elapsedMs: number;
  history: string[];
  /** Kept on failure (or when asked): journals, dumps, server.sqlite, history.txt. */
  dir: string | undefined;
  replay: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export function replayCommand(o: SoakOptions): string {
  return (
    `npm run soak -- --seed ${o.seed} --duration ${o.durationMs / 1000} --clients ${o.clients}` +
    ` --faults ${o.faults.join(',') || 'none'} --append-every ${o.appendEveryMs}` +
    ` --fault-rate ${o.faultRate}`
  );
}

export async function runSoak(
  options: SoakOptions,
  log: (line: string) => void = () => {},
  keepDir = false,
): Promise<SoakReport> {
  const started = Date.now();
  const plan = makePlan(options);
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-soak-'));
  const history: string[] = [];
  const note = (line: string) => {
    const text = `${((Date.now() - started) / 1000).toFixed(2).padStart(7)}s ${line}`;
    history.push(text);
    log(text);
  };
  const injected: Record<string, number> = {};
  const count = (kind: string) => {
    injected[kind] = (injected[kind] ?? 0) + 1;
  };
  const mustBeAbsent: string[] = [];
  /** Hostile acts planned while the server was down, done once it is back (apply). */
  const deferredHostile: Fault[] = [];
  note(`seed ${options.seed}; replay: ${replayCommand(options)}`);
  note(`clients: ${plan.clients.map((c) => `${c.slot}:${c.storage}`).join(' ')}`);
  note(`fault schedule (${plan.faults.length}):`);
  for (const f of plan.faults) history.push(`          plan ${describeFault(f)}`);

  let cluster: Cluster | undefined;
  let settleTookMs = 0;
  let report: SoakReport | undefined;
  try {
    cluster = await Cluster.start(plan, dir, 3000);
    const c = cluster;
    // A few at a time: each child compiles its TypeScript on start.
    for (let i = 0; i < plan.clients.length; i += 4) {
      const infos = await Promise.all(
        plan.clients.slice(i, i + 4).map((p) => c.startClient(p.slot)),
      );
      for (const info of infos)
        note(`${info.label} started: replica ${info.replica}, clock ${info.clockOffsetMs} ms`);
    }

    // The fault phase (invariant 3).
    const t0 = Date.now();
    const background = new Set<Promise<void>>();
    const inBackground = (work: Promise<void>) => {
      const p = work
        .catch((error: Error) => note(`fault failed: ${error.message}`))
        .finally(() => background.delete(p));
      background.add(p);
    };
    const random = streamOf(options.seed, 99);
    for (const fault of plan.faults) {
      await sleep(t0 + fault.at - Date.now());
      inBackground(apply(c, fault, random, note, count, mustBeAbsent, deferredHostile));
    }
    await sleep(t0 + options.durationMs - Date.now());

    // Faults stop: no stalls, every restart and hostile act done, everyone up.
    note('faults stop');
    c.proxy.unstallAll();
    await withDeadline(Promise.all([...background]), 60_000, 'faults to finish');
    await c.startServer();
    for (const fault of deferredHostile.splice(0)) {
      await apply(c, fault, random, note, count, mustBeAbsent);
    }
    // Every kill was followed by a restart: a client down now died by itself.
    const crashed: string[] = [];
    const down = plan.clients.filter((p) => !c.clientRunning(p.slot)).map((p) => p.slot);
    for (const slot of down) {
      const label = c.currentOf(slot)?.label ?? `c${slot}`;
      crashed.push(label);
      note(`${label} crashed (its process exited by itself): a new device takes its slot`);
    }
    for (let i = 0; i < down.length; i += 4)
      await Promise.all(down.slice(i, i + 4).map((slot) => c.startClient(slot)));
    await c.askClients('quiesce');
    note('clients stopped appending; settling');
    const settleStart = Date.now();
    const settled = await settle(c, options.settleMs);
    settleTookMs = Date.now() - settleStart;
    note(
      `settled: ${[...settled.values()].filter(Boolean).length}/${settled.size} in ${settleTookMs} ms`,
    );
    // The last acknowledgements reach the journals after client-child.ts's recheck.
    await sleep(1000);
    await dumpAll(c, 300_000);
    const server = await pullServer(c);
    note(`server holds ${server.length} events`);

    const replicas = plan.clients.map((p) => {
      const info = c.currentOf(p.slot);
      return {
        label: info?.label ?? `c${p.slot}`,
        settled: settled.get(p.slot) === true,
        dump: info ? readDump(info.dump) : undefined,
      };
    });
    const incarnations = c.incarnations.map((i) => ({
      label: i.label,
      clockOffsetMs: i.clockOffsetMs,
      journal: readJournal(i.journal),
    }));
    // The operations, per device: what each incarnation's seed made it do.
    for (const i of incarnations) history.push(`          ${operationsOf(i.label, i.journal)}`);
    const verdict = check({
      server,
      incarnations,
      replicas,
      mustBeAbsent,
      crashed,
      clockChecked: options.faults.includes('clock'),
    });
    report = {
      ...verdict,
      ok: verdict.failures.length === 0,
      options,
      injected,
      serverEvents: server.length,
      settleTookMs,
      replicas: replicas.length,
      elapsedMs: Date.now() - started,
      history,
      dir: undefined,
      replay: replayCommand(options),
    };
    return report;
  } catch (error) {
    note(`the soak itself failed: ${(error as Error).stack ?? String(error)}`);
    report = {
      failures: [`soak error: ${(error as Error).message}`],
      acknowledged: 0,
      appended: 0,
      refusedAppends: {},
      lastErrors: {},
      ok: false,
      options,
      injected,
      serverEvents: 0,
      settleTookMs,
      replicas: 0,
      elapsedMs: Date.now() - started,
      history,
      dir: undefined,
      replay: replayCommand(options),
    };
    return report;
  } finally {
    await cluster?.shutdown();
    if (report !== undefined && (keepDir || !report.ok)) {
      report.dir = dir;
      writeFileSync(join(dir, 'history.txt'), `${history.join('\n')}\n`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function apply(
  c: Cluster,
  fault: Fault,
  random: () => number,
  note: (line: string) => void,
  count: (kind: string) => void,
  mustBeAbsent: string[],
  deferred?: Fault[],
): Promise<void> {
  switch (fault.kind) {
    case 'server-kill': {
      if (!(await c.killServer())) return;
      count(fault.kind);
      note(`server SIGKILLed; restart in ${fault.downMs} ms`);
      await sleep(fault.downMs);
      await c.startServer();
      note('server restarted on the same SQLite file');
      return;
    }
    case 'client-kill': {
      if (!(await c.killClient(fault.slot))) return;
      count(fault.kind);
      const old = c.currentOf(fault.slot)?.label;
      note(`${old} SIGKILLed; a new device in ${fault.downMs} ms`);
      await sleep(fault.downMs);
      const info = await c.startClient(fault.slot);
      note(`${info.label} started: replica ${info.replica}, clock ${info.clockOffsetMs} ms`);
      return;
    }
    case 'client-restart': {
      const label = c.currentOf(fault.slot)?.label;
      const answer = await c.askClient(fault.slot, 'restart');
      if (answer === undefined) return;
      count(fault.kind);
      note(`${label} closed and reopened its store`);
      return;
    }
    case 'cut': {
      const n = c.proxy.cut(fault.fraction, random);
      if (n > 0) count(fault.kind);
      note(`cut ${n} connections`);
      return;
    }
    case 'stall': {
      const n = c.proxy.stall(fault.fraction, fault.ms, random);
      if (n > 0) count(fault.kind);
      note(`stalled ${n} connections for ${fault.ms} ms`);
      return;
    }
    default: {
      const url = c.serverUrl;
      if (url === undefined) {
        // Done once the server is back after the faults stop, so that a slow machine, on which
        // the server spends more of the run restarting, still gets every hostile act it planned.
        note(`hostile ${fault.kind} deferred: the server is down`);
        deferred?.push(fault);
        return;
      }
      const acked = fault.kind === 'dup-id' ? ackedSample(c, random) : [];
      const result = await actHostile(
        fault.kind as HostileKind,
        url,
        soakToken('hostile'),
        fault.seed,
        acked,
      );
      if (result.acted) count(fault.kind);
      mustBeAbsent.push(...result.mustBeAbsent);
      note(`hostile ${fault.kind}: ${result.answers.join('; ')}`);
    }
  }
}

function operationsOf(label: string, journal: JournalLine[]): string {
  const start = journal.find((l) => l.t === 'start');
  const appends = journal.flatMap((l) => (l.t === 'a' ? [l.id] : []));
  const acked = journal.reduce((n, l) => n + (l.t === 'k' ? l.ids.length : 0), 0);
  const refused = journal.flatMap((l) => (l.t === 'r' ? [l.code] : []));
  const restarts = journal.filter((l) => l.t === 'start').length - 1;
  const seed = start?.t === 'start' ? start.seed : '?';
  const shown = appends.length > 6 ? [...appends.slice(0, 3), '…', ...appends.slice(-2)] : appends;
  return (
    `${label} (seed ${seed}): ${appends.length} appends [${shown.join(' ')}], ${acked} acknowledged,` +
    ` ${refused.length} refused [${[...new Set(refused)].join(' ')}], ${restarts} app restarts`
  );
}

/**
 * Ids that the first incarnation with any, from a random one on, saw acknowledged (not the
 * shared ones: any copy may win those).
 */
function ackedSample(c: Cluster, random: () => number): string[] {
  const n = c.incarnations.length;
  const start = Math.floor(random() * n);
  for (let i = 0; i < n; i++) {
    const info = c.incarnations[(start + i) % n];
    if (info === undefined) continue;
    const journal = readJournal(info.journal);
    const shared = new Set(journal.flatMap((l) => (l.t === 'a' && l.shared ? [l.id] : [])));
    const ids = journal.flatMap((l) => (l.t === 'k' ? l.ids.filter((id) => !shared.has(id)) : []));
    if (ids.length > 0) return ids;
  }
  return [];
}

/**
 * Polls until every client is idle with nothing pending and nothing moves any more (no log grew
 * on the server or a client since the last poll), or `ms` passed; answers which slots settled.
 * Whether a settled replica holds what it should is checks.ts's business, not this wait's: a
 * replica's head counts what it keeps locally, which need not be what the server counts.
 */
async function settle(c: Cluster, ms: number): Promise<Map<number, boolean>> {
  const deadline = Date.now() + ms;
  let result = new Map<number, boolean>();
  let before: { server: number | undefined; heads: Map<number, number | undefined> } | undefined;
  for (let i = 0; i < 10_000; i++) {
    const server = await c.server?.ask('head').catch(() => undefined);
    const idle = await c.askClients('settled');
    const heads = await c.askClients('head');
    const still = (slot: number) =>
      before !== undefined &&
      server !== undefined &&
      before.server === server &&
      heads.get(slot) !== undefined &&
      before.heads.get(slot) === heads.get(slot);
    result = new Map([...idle].map(([slot, v]) => [slot, v === 1 && still(slot)]));
    if ([...result.values()].every(Boolean) || Date.now() > deadline) return result;
    before = { server, heads };
    await sleep(1000);
  }
  return result;
}

/** Asks every client to dump until each says it is written (or failed), within `ms`. */
async function dumpAll(c: Cluster, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    const answers = await c.askClients('dump');
    if ([...answers.values()].every((v) => v !== 0)) return;
    await sleep(1000);
  }
}

async function pullServer(c: Cluster): Promise<StoredEventRecord[]> {
  const url = c.serverUrl;
  if (url === undefined) throw new Error('the server is not running');
  const reader = await ProtocolClient.connect(url, soakToken('checker'), { expectPull: false });
  try {
    return await withDeadline(reader.pullAll(30_000), 120_000, 'the server log');
  } finally {
    reader.close();
  }
}
