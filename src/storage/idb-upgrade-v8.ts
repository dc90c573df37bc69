/**
 * The upgrade to IndexedDB schema 8 (idb-schema.ts invariant 10), inside the upgrade transaction:
 * the `stream` index keyed by [stream number, cursor rank] (idb-stream-keys.ts).
 */
import {
  type StoredSegment,
  type StreamRow,
  storedForm,
  streamPositions,
} from './idb-stream-keys.ts';

/** The `stream` index of schema 8, on each segment's [stream number, cursor rank] keys. */
export function createStreamIndex(segments: IDBObjectStore): void {
  segments.createIndex('stream', 'streamIx', { multiEntry: true });
}

/**
 * Invariant 10: every segment takes the stored form of schema 8 (its `stream` index keys:
 * idb-stream-keys.ts storedForm), and every stream a segment lists its number in its row: the
 * position of its first event met in the walk (idb-stream-keys.ts invariant 2). `rebuild` (from
 * versions 6 and 7, whose `stream` index was on `streamKeys`): the old index goes first and the
 * new one is built once the keys are written.
 */
export function numberStreams(tx: IDBTransaction, rebuild: boolean): void {
  const segments = tx.objectStore('segments');
  const streams = tx.objectStore('streams');
  if (rebuild) segments.deleteIndex('stream');
  const numbers = new Map<string, number>();
  const read = streams.getAll();
  read.onsuccess = () => {
    const rows = new Map((read.result as StreamRow[]).map((row) => [row.stream, row]));
    const walk = segments.openCursor();
    walk.onsuccess = () => {
      const cursor = walk.result;
      if (cursor === null) {
        for (const [stream, no] of numbers) {
          // A stream with events and no row (none is written so) gets one, at version 0 as
          // before, to hold its number.
          streams.put({ ...(rows.get(stream) ?? { stream, version: 0 }), no } satisfies StreamRow);
        }
        if (rebuild) createStreamIndex(segments);
        return;
      }
      const stored = cursor.value as StoredSegment;
      if (stored.n > 0) {
        for (const [name, pos] of streamPositions(stored)) {
          if (!numbers.has(name)) numbers.set(name, pos);
        }
        cursor.update(storedForm(stored, numbers));
      }
      cursor.continue();
    };
  };
}
