/**
 * Stream versions in the IndexedDB log (idb-schema.ts invariant 9): each stream's row in
 * `streams` holds its version, the largest any of its events took here, and its conflict flag.
 * Every write that stores a greater version writes the row in the same transaction: an append
 * and an ingest (writeRows). Up to schema 6 the version came from a `version` index on the
 * segments' `streamMax`, one entry per stream of each segment: about one per event of a synced
 * log, more bytes than the rows.
 *
 * Invariants:
 * 1. A row's version never goes back, except by a discard (adapter.ts `discard`): a rejected own
 *    event never counted, so the row comes down to what the stream's segments still hold
 *    (heldVersions: from their events, or a husk's `streamMax`: core/husks.ts). So does the row
 *    of a strict event that lost to a copy in an ingest (core/append.ts invariant 9).
 * 2. A row keeps its conflict flag: a write of a greater version copies it from the row read.
 */
import { eventAt, type Segment, streamAt } from '../core/segments.ts';
import type { StreamRow } from './idb-schema.ts';
import { request } from './idb-segments.ts';
import { noteRows, readStreamNumber, withNumber } from './idb-stream-keys.ts';

export interface StreamState {
  version: number;
  row: StreamRow | undefined;
}

/** Each stream's version and row, read on requests of the caller's transaction. */
export async function readStreams(
  streams: IDBObjectStore,
  names: readonly string[],
): Promise<Map<string, StreamState>> {
  const rows = await Promise.all(
    names.map((name) => request(streams.get(name)) as Promise<StreamRow | undefined>),
  );
  // A write of these streams' segments needs their numbers (idb-stream-keys.ts).
  if (streams.transaction.mode !== 'readonly') noteRows(streams.transaction, names, rows);
  return new Map(names.map((name, i) => [name, { version: rows[i]?.version ?? 0, row: rows[i] }]));
}

/**
 * Writes the row of each stream of `versions` whose version grew beyond its `before`, keeping its
 * conflict flag (invariant 2); `conflicted` streams get the flag.
 */
export function writeRows(
  streams: IDBObjectStore,
  versions: ReadonlyMap<string, number>,
  before: ReadonlyMap<string, StreamState>,
  conflicted: readonly string[] = [],
): void {
  const flagged = new Set(conflicted);
  for (const stream of new Set([...versions.keys(), ...flagged])) {
    const { version: was = 0, row } = before.get(stream) ?? {};
    const version = Math.max(versions.get(stream) ?? 0, was);
    const flag = flagged.has(stream) || row?.conflicted === true;
    if (version === was && flag === (row?.conflicted === true) && row !== undefined) continue;
    if (version === 0 && !flag) continue;
    const next: StreamRow = { stream, version };
    if (flag) next.conflicted = true;
    streams.put(withNumber(streams.transaction, next, row));
  }
}

/**
 * The largest version each stream's stored segments (and husks) hold, for a discard (invariant 1):
 * read through the `stream` index, which lists every segment holding one of its events under the
 * stream's number (idb-schema.ts invariant 10).
 */
export async function heldVersions(
  segments: IDBObjectStore,
  names: readonly string[],
): Promise<Map<string, number>> {
  const index = segments.index('stream');
  const found = await Promise.all(
    names.map(async (name) => {
      const no = await readStreamNumber(segments.transaction, name);
      // No number: no segment lists the stream (idb-stream-keys.ts invariant 2). [no] sorts
      // before every [no, rank], [no, []] after them.
      return no === undefined ? [] : request(index.getAll(IDBKeyRange.bound([no], [no, []])));
    }),
  );
  return new Map(
    names.map((name, i) => {
      let top = 0;
      for (const s of found[i] as Segment[]) {
        // A husk keeps its stream maxima; a segment holding events is stored without them
        // (core/segment-codec.ts invariant 5): its events give them.
        if (s.streamMax !== undefined) {
          for (const [stream, version] of s.streamMax) {
            if (stream === name && version > top) top = version;
          }
          continue;
        }
        for (let e = 0; e < s.n; e++) {
          if (streamAt(s, e) === name) top = Math.max(top, eventAt(s, e).version);
        }
      }
      return [name, top];
    }),
  );
}

/**
 * Invariant 1: the rows of `names` come down to what the stream's segments hold, after the
 * caller removed events in the same transaction (requests run in order: the reads see it).
 */
export async function lowerRows(tx: IDBTransaction, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const streams = tx.objectStore('streams');
  const [remaining, rows] = await Promise.all([
    heldVersions(tx.objectStore('segments'), names),
    Promise.all(names.map((name) => request(streams.get(name)) as Promise<StreamRow | undefined>)),
  ]);
  names.forEach((stream, i) => {
    const row = rows[i];
    if (row === undefined) return;
    const version = remaining.get(stream) ?? 0;
    if (row.version <= version) return;
    const next: StreamRow = { stream, version };
    if (row.conflicted) next.conflicted = true;
    streams.put(withNumber(tx, next, row));
  });
}
