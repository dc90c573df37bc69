/**
 * Reads in the total order across a partial replica's horizon (docs/storage-growth.md part 3):
 * the part of a range at or below the log's horizon H comes from the server's history
 * (HistorySource), merged with what the log still holds there (late events stored after a trim),
 * and the part above H from the log alone.
 *
 * Invariants:
 * 1. A range that does not reach H or below reads the log only: a full log (no horizon) never
 *    asks for history, nor a reverse page that fills above H (the recent end reads offline).
 * 2. A merged page holds `limit` records whenever that many exist in the range: each source is
 *    read up to `limit`, merged by cursor, an id seen twice is kept once (a late event the server
 *    holds too), and a page shortened by that is filled by reading on.
 * 3. History that cannot be read fails the read with HistoryUnavailableError (HISTORY_OFFLINE):
 *    never a silent gap.
 * 4. History records carry position 0: they were never received here, and every fold counts
 *    them as received before any head (they are at or below H, which the server held).
 * 5. What is asked of the server is bounded by cursors only (the server closes a session whose
 *    history request has any other bound): time bounds and the bound just above H are turned
 *    into cursors that select the same events.
 * 6. A read is answered for one horizon: the horizon is read again after the read, and a read
 *    during which it moved (a trim of this store's retention, or of another tab's on the same
 *    database, committed between the horizon read and the log read, which then misses the events
 *    it trimmed) is read again, at most HORIZON_RETRIES times; then it fails with
 *    HistoryUnavailableError rather than return a gap (invariant 3).
 * 7. A log that reads records and its horizon in one transaction (EventLog.readByCursorAtHorizon:
 *    IndexedDB) is asked once: records read with the horizon they were read at need no second
 *    horizon read, and where the range does not reach that horizon they are the answer
 *    (invariant 1). A range that does reach it goes on as invariant 6 says, from that horizon.
 */
import { HistoryUnavailableError } from '../core/errors.ts';
import type { LocalRecord } from '../core/events.ts';
import { Cursor } from '../core/ids.ts';
import type { CursorQuery, EventLog } from '../storage/adapter.ts';
import type { HistorySource } from './history-source.ts';

export type CursorReader = Pick<EventLog, 'readByCursor'>;

/**
 * An exclusive bound just above `cursor`, itself a cursor: the server checks a history request's
 * bounds (sync/history-messages.ts) and closes the session on one that is not. Its `0` makes the
 * seq part one digit longer, so it sorts right after `cursor` and before every other stored
 * cursor (their seqs are fixed-width: core/ids.ts), and no event has it.
 */
const justAbove = (cursor: string) => `${cursor}0`;

const BARE_HLC = /^[0-9a-z]{11}-[0-9a-z]{5}$/;

/**
 * A bound of a query as the server accepts it: a cursor (sync/history-messages.ts), selecting the
 * same events (invariant 5). A time bound is an HLC (read-query.ts cursorBefore: every cursor of
 * that HLC or later sorts after it) or an HLC and `.~` (cursorAtEndOf: every cursor of that HLC
 * or earlier sorts before it). `H.0.0` and `H.zzz….zzz…` sit on the same sides of every stored
 * cursor: a replica id is 26 characters of [0-9a-z] and a seq 12 (core/ids.ts).
 */
function wireBound(bound: string | undefined): string | undefined {
  if (bound === undefined || Cursor.isValid(bound)) return bound;
  if (BARE_HLC.test(bound)) return `${bound}.0.0`;
  const hlc = bound.slice(0, -2);
  if (bound.endsWith('.~') && BARE_HLC.test(hlc))
    return `${hlc}.${'z'.repeat(32)}.${'z'.repeat(13)}`;
  return bound;
}

function onWire(query: CursorQuery): CursorQuery {
  const out: CursorQuery = { ...query };
  const after = wireBound(query.after);
  const until = wireBound(query.until);
  if (after !== undefined) out.after = after;
  if (until !== undefined) out.until = until;
  return out;
}

/** Reads of one query again after the horizon moved under them, at most (invariant 6). */
export const HORIZON_RETRIES = 8;

export function historyReader(
  log: EventLog,
  history: () => HistorySource | undefined,
): CursorReader {
  return {
    async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
      // Invariant 7: one transaction where the log reads both at once.
      let horizon: string | undefined;
      if (log.readByCursorAtHorizon !== undefined) {
        const read = await log.readByCursorAtHorizon(query);
        if (read.horizon === undefined || !reachesBelow(query, read.horizon)) return read.records;
        horizon = read.horizon;
      } else horizon = await log.horizon?.();
      // Invariant 6.
      for (let attempt = 0; ; attempt++) {
        const records = await readAt(log, history, query, horizon);
        const now = await log.horizon?.();
        if (now === horizon) return records;
        if (attempt >= HORIZON_RETRIES) {
          throw new HistoryUnavailableError(
            'older history is on the server, and this device kept trimming while it was read',
            { horizon: now },
          );
        }
        horizon = now;
      }
    },
  };
}

/** One read of `query` against the horizon read before it (undefined: a full log). */
async function readAt(
  log: EventLog,
  history: () => HistorySource | undefined,
  query: CursorQuery,
  horizon: string | undefined,
): Promise<LocalRecord[]> {
  if (horizon === undefined || !reachesBelow(query, horizon)) return log.readByCursor(query);
  if (query.reverse) {
    // The newest first: a page that fills before reaching the horizon needs no history.
    const local = await log.readByCursor(query);
    const last = local[local.length - 1];
    if (local.length >= query.limit && last !== undefined && last.event.cursor > horizon) {
      return local;
    }
  }
  const source = history();
  if (source === undefined) {
    throw new HistoryUnavailableError(
      'older history is on the server, and this store is not connected to one',
      { horizon },
    );
  }
  return readMerged(log, source, query, horizon);
}

/** Whether the range holds cursors at or below `horizon` (invariant 1). */
function reachesBelow(query: CursorQuery, horizon: string): boolean {
  // Forward: (after, until]; reverse: [until, after).
  const lower = query.reverse ? query.until : query.after;
  if (lower === undefined) return true;
  return query.reverse ? lower <= horizon : lower < horizon;
}

async function readMerged(
  log: EventLog,
  source: HistorySource,
  query: CursorQuery,
  horizon: string,
): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  const seen = new Set<string>();
  let q = query;
  for (;;) {
    const below: CursorQuery = { ...q };
    // History serves what is at or below H; the log what is above (and late events below).
    if (q.reverse)
      below.after = q.after === undefined || q.after > horizon ? justAbove(horizon) : q.after;
    else below.until = q.until === undefined || q.until > horizon ? horizon : q.until;
    const [remote, local] = await Promise.all([
      reachesBelow(q, horizon) ? source.read(onWire(below)) : Promise.resolve([]),
      log.readByCursor(q),
    ]);
    const merged = merge(
      remote.map((event) => ({ event, pos: 0 })),
      local,
      q.reverse === true,
    );
    let last: string | undefined;
    for (const record of merged.slice(0, q.limit)) {
      last = record.event.cursor;
      if (seen.has(record.event.id)) continue;
      seen.add(record.event.id);
      out.push(record);
      if (out.length >= query.limit) return out;
    }
    // Invariant 2: a full source may hold more after what was taken.
    const more = remote.length >= q.limit || local.length >= q.limit;
    if (!more || last === undefined) return out;
    q = { ...q, after: last, limit: query.limit - out.length };
  }
}

function merge(a: LocalRecord[], b: LocalRecord[], reverse: boolean): LocalRecord[] {
  const out: LocalRecord[] = [];
  let i = 0;
  let j = 0;
  const first = (x: LocalRecord, y: LocalRecord) =>
    reverse ? x.event.cursor >= y.event.cursor : x.event.cursor <= y.event.cursor;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && first(a[i]!, b[j]!))) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
