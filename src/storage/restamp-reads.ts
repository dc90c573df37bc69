/**
 * What a re-stamp plan (core/restamp.ts) needs from a log, read through the adapter's own reads
 * (inside its write transaction for IndexedDB): the candidates sit at the top of the total
 * order (stamped beyond the tolerance), so only the events above the tolerance, the positions
 * from the first candidate on, and the greatest cursor below that position are read; never the
 * whole log.
 */

import { acceptLimit } from '../core/clock-skew.ts';
import type { LocalRecord } from '../core/events.ts';
import { decodeHlc } from '../core/hlc.ts';
import { isRestampCandidate, type RestampInput } from '../core/restamp.ts';
import type { CursorQuery, RestampRequest } from './adapter.ts';

const PAGE = 256;

export interface RestampReader {
  readByCursor(query: CursorQuery): Promise<LocalRecord[]>;
  readByPos(afterPos: number, limit: number): Promise<LocalRecord[]>;
}

/** The hlc part of a cursor (`hlc.replica.seq`). */
export function hlcOfCursor(cursor: string): string {
  return cursor.slice(0, cursor.indexOf('.'));
}

/** The plan's input, or undefined when nothing is a candidate (the usual case: one page read). */
export async function readRestampInput(
  reader: RestampReader,
  replica: string,
  head: number,
  request: RestampRequest,
): Promise<RestampInput | undefined> {
  const base = { replica, ...request };
  const until = acceptLimit(request.now, request.maxClockAheadMs);
  let firstPos = Number.POSITIVE_INFINITY;
  for (let after: string | undefined; ; ) {
    const page = await reader.readByCursor({
      reverse: true,
      until,
      limit: PAGE,
      ...(after === undefined ? {} : { after }),
    });
    for (const r of page)
      if (isRestampCandidate(r.event, base)) firstPos = Math.min(firstPos, r.pos);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.event.cursor;
  }
  if (firstPos === Number.POSITIVE_INFINITY) return undefined;
  const tail: LocalRecord[] = [];
  for (let pos = firstPos - 1; pos < head; ) {
    const page = await reader.readByPos(pos, PAGE);
    if (page.length === 0) break;
    tail.push(...page);
    pos = page[page.length - 1]!.pos;
  }
  // The greatest cursor at a position below firstPos: from the top, past the tail's events.
  let before: LocalRecord | undefined;
  for (let after: string | undefined; before === undefined; ) {
    const page = await reader.readByCursor({
      reverse: true,
      limit: PAGE,
      ...(after === undefined ? {} : { after }),
    });
    before = page.find((r) => r.pos < firstPos);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.event.cursor;
  }
  return {
    ...base,
    before: before === undefined ? undefined : decodeHlc(before.event.hlc),
    tail,
  };
}
