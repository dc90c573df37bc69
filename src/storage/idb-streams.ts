/**
 * Stream versions in the IndexedDB log (idb-schema.ts invariant 6): the largest version a stream's
 * segments hold, from the `version` index, and its row in `streams`, a floor that only an ingest
 * writes: when it flags a possible conflict, or takes a held copy out (a version the log held
 * never goes back, as the memory adapter keeps it).
 */
import type { StreamRow } from './idb-schema.ts';
import { request } from './idb-segments.ts';

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
  const states = await Promise.all(
    names.map(async (name) => {
      // [name] sorts before every [name, v], [name, []] after them.
      const [top, row] = await Promise.all([
        request(index.openKeyCursor(IDBKeyRange.bound([name], [name, []]), 'prev')),
        request(streams.get(name)) as Promise<StreamRow | undefined>,
      ]);
      const held = top === null ? 0 : ((top.key as [string, number])[1] ?? 0);
      return { version: Math.max(held, row?.version ?? 0), row };
    }),
  );
  return new Map(names.map((name, i) => [name, states[i]!]));
}
