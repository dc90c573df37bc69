/**
 * Stream versions in the IndexedDB log (idb-schema.ts invariant 6): the largest version a stream's
 * segments hold, from the `version` index, and its row in `streams`, a floor that only an ingest
 * writes: when it flags a possible conflict, or takes a held copy out (a version the log held
 * never goes back, as the memory adapter keeps it).
 *
 * Rows are few (most logs have none): the names that have one are read in one request, and only
 * those rows are read, instead of one request per stream asked about. Past ROW_NAMES_AT_ONCE rows
 * (a log upgraded from version 3 has one per stream), each stream's row is read on its own.
 */
import type { StreamRow } from './idb-schema.ts';
import { request } from './idb-segments.ts';

const ROW_NAMES_AT_ONCE = 1000;

export interface StreamState {
  version: number;
  row: StreamRow | undefined;
}

/** Each stream's version and row, read on requests of the caller's transaction. */
export async function readStreams(
  segments: IDBObjectStore,
  streams: IDBObjectStore,
  names: readonly string[],
): Promise<Map<string, StreamState>> {
  const index = segments.index('version');
  const [tops, rows] = await Promise.all([
    Promise.all(
      // [name] sorts before every [name, v], [name, []] after them.
      names.map((name) =>
        request(index.openKeyCursor(IDBKeyRange.bound([name], [name, []]), 'prev')),
      ),
    ),
    readRows(streams, names),
  ]);
  return new Map(
    names.map((name, i) => {
      const top = tops[i];
      const held = top === null || top === undefined ? 0 : (top.key as [string, number])[1];
      const row = rows.get(name);
      return [name, { version: Math.max(held, row?.version ?? 0), row }];
    }),
  );
}

async function readRows(
  streams: IDBObjectStore,
  names: readonly string[],
): Promise<Map<string, StreamRow | undefined>> {
  const out = new Map<string, StreamRow | undefined>();
  let asked = names;
  if (names.length > 1) {
    const keys = (await request(streams.getAllKeys(null, ROW_NAMES_AT_ONCE + 1))) as string[];
    if (keys.length <= ROW_NAMES_AT_ONCE) {
      const having = new Set(keys);
      asked = names.filter((name) => having.has(name));
    }
  }
  const rows = await Promise.all(
    asked.map((name) => request(streams.get(name)) as Promise<StreamRow | undefined>),
  );
  asked.forEach((name, i) => {
    out.set(name, rows[i]);
  });
  return out;
}
