/**
 * How much history this device keeps (README "Bounded devices and history on demand"): the
 * demo's retain policy, and the knob that changes it for tests.
 *
 *   default             keep at least the newest 5,000 events and the last 30 days
 *   ?keep-events=N      keep at least the newest N events, no day floor (tests, trying it out)
 *   ?join=replay        a new device replays the whole log instead of joining from the server's
 *                       snapshot of the board (the bench's baseline: test/bench/newdevice.ts)
 *
 * The worker cannot see the page's URL, so the page passes the knob in the worker's name after
 * the database (`<db>?keep-events=N`), which the worker reads back (store.worker.ts).
 *
 * Invariants:
 * 1. A policy always has `events` (at least 1): the device keeps that many newest events whatever
 *    else it trims, so a reverse read of that many is served by the device alone, offline too
 *    (loaded-log.ts reads its window that way).
 * 2. No knob, no suffix: the default board's worker name is its database's name, as before.
 */
import type { JoinMode, RetainPolicy, StorageNotice } from '../../src/index.ts';

export interface DemoRetain extends RetainPolicy {
  events: number;
}

export const DEFAULT_RETAIN: DemoRetain = { events: 5_000, days: 30 };

const KNOB = 'keep-events';
const JOIN_KNOB = 'join';

/** The policy a query string asks for (invariant 1), or the default. */
export function retainFromSearch(search: string): DemoRetain {
  const text = new URLSearchParams(search).get(KNOB);
  const events = text === null ? Number.NaN : Number(text);
  return Number.isSafeInteger(events) && events >= 1 ? { events } : DEFAULT_RETAIN;
}

/** How a new device fills its empty log: from the server's snapshot unless asked to replay. */
export function joinFromSearch(search: string): JoinMode {
  return new URLSearchParams(search).get(JOIN_KNOB) === 'replay' ? 'replay' : 'snapshot';
}

/** The worker's name: the database, and the knobs the page's URL has (invariant 2). */
export function workerName(db: string, search: string): string {
  const page = new URLSearchParams(search);
  const knobs = new URLSearchParams();
  for (const knob of [KNOB, JOIN_KNOB]) {
    const text = page.get(knob);
    if (text !== null) knobs.set(knob, text);
  }
  const query = knobs.toString();
  return query === '' ? db : `${db}?${query}`;
}

/** The worker's side of workerName. */
export function parseWorkerName(name: string): { db: string; retain: DemoRetain; join: JoinMode } {
  const at = name.indexOf('?');
  if (at < 0) return { db: name, retain: DEFAULT_RETAIN, join: 'snapshot' };
  const search = name.slice(at);
  return { db: name.slice(0, at), retain: retainFromSearch(search), join: joinFromSearch(search) };
}

/** The policy in words, for the Activity panel. */
export function describeRetain(retain: DemoRetain): string {
  const events = `the newest ${retain.events.toLocaleString('en')} events`;
  const days = retain.days === undefined ? '' : ` and the last ${retain.days} days`;
  return `This device keeps ${events}${days}; older history is on the server.`;
}

const events = (n: number) => `${n.toLocaleString('en')} older ${n === 1 ? 'event' : 'events'}`;

/** A storage notice (store.on('storage')) in words, for the line under the header. */
export function storageNoticeText(notice: StorageNotice): string {
  const freed = `this device let go of ${events(notice.trimmed)} (they stay on the server)`;
  if (notice.reason === 'quota') {
    if (notice.ok) return `Storage was full: ${freed}, and saved the change.`;
    return notice.trimmed > 0
      ? `Storage is full: the change was not saved, even after ${freed.replace('this device ', 'the device ')}.`
      : 'Storage is full: the change was not saved. Older events go once the server has them.';
  }
  const share =
    notice.usage !== undefined && notice.quota !== undefined && notice.quota > 0
      ? ` (${Math.round((notice.usage / notice.quota) * 100)}% used)`
      : '';
  return notice.trimmed > 0
    ? `Storage nearly full${share}: ${freed}.`
    : `Storage nearly full${share}: older events go once the server has them.`;
}
