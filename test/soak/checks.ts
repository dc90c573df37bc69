/**
 * The soak's verdict, a pure function of what the run left behind: the server's log (pulled at
 * the end), every client incarnation's journal (dead ones included), every live replica's dump,
 * and what the hostile writers sent.
 *
 * Invariants checked (each failure names its number):
 * 1. The server holds each id once, and each (replica, seq) once (RELIABILITY 34).
 * 2. Every acknowledged event is on the server, with the payload its writer appended (an id that
 *    several devices appended with different payloads, `shared`, only has to be there once).
 * 3. No replica is wedged: each reached idle with nothing pending within the settle bound.
 * 4. Every replica holds exactly the server's events, each once, with the server's payload, in
 *    the same total order (hlc, replica, seq) as every other replica.
 * 5. On every replica state() equals the fold of read(), and all replicas hold the same state.
 * 6. Nothing a hostile writer sent that must be refused is stored anywhere.
 * 7. With clock faults on, an honest device's events carry its real time (within a minute):
 *    another device's wrong clock does not drag them (issue 12, defect 5).
 * 8. No client process dies by itself (only the harness kills them).
 */
import type { StoredEventRecord } from '../../src/core/events.ts';
import { canonicalHash, type Dump, type JournalLine } from './journal.ts';

export interface Incarnation {
  label: string;
  clockOffsetMs: number;
  journal: JournalLine[];
}

export interface Replica {
  label: string;
  settled: boolean;
  dump: Dump | undefined;
}

export interface CheckInput {
  server: StoredEventRecord[];
  incarnations: Incarnation[];
  replicas: Replica[];
  mustBeAbsent: string[];
  /** Incarnations whose process exited without being killed. */
  crashed: string[];
  clockChecked: boolean;
}

export interface Verdict {
  failures: string[];
  acknowledged: number;
  appended: number;
  refusedAppends: Record<string, number>;
  /** The last error each replica's sync status still shows at the end, by code. */
  lastErrors: Record<string, number>;
}

const MAX_PER_CHECK = 8;
const CLOCK_TOLERANCE_MS = 60_000;

function compareOrder(
  a: { hlc: string; replica: string; seq: number },
  b: { hlc: string; replica: string; seq: number },
): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.replica !== b.replica) return a.replica < b.replica ? -1 : 1;
  return a.seq - b.seq;
}

export function check(input: CheckInput): Verdict {
  const failures: string[] = [];
  const counts = new Map<number, number>();
  const fail = (n: number, text: string) => {
    const c = (counts.get(n) ?? 0) + 1;
    counts.set(n, c);
    if (c <= MAX_PER_CHECK) failures.push(`[${n}] ${text}`);
    else if (c === MAX_PER_CHECK + 1) failures.push(`[${n}] … more of the same`);
  };

  // 1.
  const serverById = new Map<string, StoredEventRecord>();
  const origins = new Map<string, string>();
  for (const e of input.server) {
    if (serverById.has(e.id)) fail(1, `server holds ${e.id} twice`);
    serverById.set(e.id, e);
    const origin = `${e.replica}/${e.seq}`;
    const other = origins.get(origin);
    if (other !== undefined)
      fail(1, `server holds ${other} and ${e.id} at one (replica, seq) ${origin}`);
    origins.set(origin, e.id);
  }

  // 2.
  let acknowledged = 0;
  let appended = 0;
  const refusedAppends: Record<string, number> = {};
  for (const inc of input.incarnations) {
    const byId = new Map<string, Extract<JournalLine, { t: 'a' }>>();
    for (const line of inc.journal) {
      if (line.t === 'a') {
        appended += 1;
        byId.set(line.id, line);
        // 7.
        if (
          input.clockChecked &&
          inc.clockOffsetMs === 0 &&
          Math.abs(line.time - line.at) > CLOCK_TOLERANCE_MS
        ) {
          const hours = ((line.time - line.at) / 3_600_000).toFixed(1);
          fail(7, `${inc.label} (honest clock) stamped ${line.id} ${hours} h off its real time`);
        }
      } else if (line.t === 'r') {
        refusedAppends[line.code] = (refusedAppends[line.code] ?? 0) + 1;
      } else if (line.t === 'k') {
        for (const id of line.ids) {
          acknowledged += 1;
          const mine = byId.get(id);
          const stored = serverById.get(id);
          if (stored === undefined)
            fail(2, `${inc.label}: acknowledged ${id} is not on the server`);
          else if (mine !== undefined && mine.shared !== true && canonicalHash(stored) !== mine.h)
            fail(2, `${inc.label}: the server holds another payload for acknowledged ${id}`);
        }
      }
    }
  }

  // 3, 4, 5.
  const expected = [...serverById.values()].sort(compareOrder).map((e) => e.id);
  let reference: { label: string; state: string } | undefined;
  const lastErrors: Record<string, number> = {};
  for (const r of input.replicas) {
    if (!r.settled) fail(3, `${r.label} did not reach idle with nothing pending (wedged)`);
    const d = r.dump;
    if (d === undefined) {
      fail(4, `${r.label} gave no dump`);
      continue;
    }
    // A reconnected, idle replica still reports the last error it met (a cut connection, say):
    // told, not a failure.
    if (d.status.lastError !== undefined) {
      const code = d.status.lastError.code;
      lastErrors[code] = (lastErrors[code] ?? 0) + 1;
    }
    const seen = new Set<string>();
    for (const [id, , , , hash] of d.events) {
      if (seen.has(id)) fail(4, `${r.label} holds ${id} twice`);
      seen.add(id);
      const stored = serverById.get(id);
      if (stored === undefined) fail(4, `${r.label} holds ${id}, which the server does not`);
      else if (canonicalHash(stored) !== hash)
        fail(4, `${r.label} holds another payload than the server for ${id}`);
    }
    const missing = expected.filter((id) => !seen.has(id));
    if (missing.length > 0)
      fail(
        4,
        `${r.label} lacks ${missing.length} of the server's events (${missing.slice(0, 3).join(', ')} …)`,
      );
    const order = d.events.map(([id]) => id).filter((id) => serverById.has(id));
    const want = expected.filter((id) => seen.has(id));
    const at = order.findIndex((id, i) => id !== want[i]);
    if (at >= 0)
      fail(4, `${r.label} orders its log differently from position ${at} (${order[at]})`);
    if (JSON.stringify(d.state) !== JSON.stringify(d.fold))
      fail(
        5,
        `${r.label}: state() ${JSON.stringify(d.state)} ≠ fold of read() ${JSON.stringify(d.fold)}`,
      );
    const state = JSON.stringify(d.state);
    if (reference === undefined) reference = { label: r.label, state };
    else if (reference.state !== state)
      fail(5, `${r.label} projects ${state}, ${reference.label} projects ${reference.state}`);
  }

  // 6.
  for (const id of input.mustBeAbsent) {
    if (serverById.has(id)) fail(6, `the server stored ${id}, which it must refuse`);
    for (const r of input.replicas) {
      if (r.dump?.events.some(([e]) => e === id)) fail(6, `${r.label} stored ${id}`);
    }
  }

  // 8.
  for (const label of input.crashed) fail(8, `${label} crashed: its process exited by itself`);

  return { failures, acknowledged, appended, refusedAppends, lastErrors };
}
