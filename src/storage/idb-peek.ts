/// <reference lib="dom" preserve="true" />
// Declarations name the DOM's Worker, MessagePort and IndexedDB types: a Node project whose
// tsconfig leaves the DOM library out still compiles against them.
/**
 * A read-only look at a store's IndexedDB database from the page, while the store's worker starts
 * (client/peek.ts folds what it returns). It reads what the store would start its first fold
 * from (the projection's newest usable snapshot) and the events after it, and nothing else.
 *
 * Invariants:
 * 1. It never creates, upgrades or writes a database: an open that would create one (its
 *    `upgradeneeded`) is aborted, so nothing is left behind; a database of another schema version
 *    (an old one the store has yet to migrate, a newer one) is closed unread.
 * 2. All reads happen in ONE readonly transaction, so they see one state of the log. The
 *    connection is closed once that transaction has ended, and at once on `versionchange` (the
 *    transaction aborted first), so it never blocks or holds up another tab's upgrade or delete.
 *    Chromium answers `blocked` to an upgrade whose versionchange reaches a connection closed
 *    while its transaction still commits: closing right after the last read is too early.
 * 3. The snapshot chosen is the one the store's projection runtime would choose (core/projection.ts
 *    invariants 3 and 4): the newest of the projection's current version, whose pair (cursor K,
 *    position H) no event received after H sorts before. The events returned are every event whose
 *    cursor is > K (all of them without a snapshot), in the total order: folding them onto the
 *    snapshot gives the store's state at this head.
 * 4. Undefined, never a rejection, when there is no such exact answer within `maxEvents` events:
 *    then the caller asks the store.
 */
import type { LocalRecord } from '../core/events.ts';
import { projectionVersionKey } from '../core/projection.ts';
import type { SnapshotRecord } from './adapter.ts';
import { globalFactory } from './idb-quirks.ts';
import { readCursorRange } from './idb-reads.ts';
import { appKey, asCounters, KEY_COUNTERS, SCHEMA_VERSION } from './idb-schema.ts';
import { request } from './idb-segments.ts';

/** Events folded on the page at most: past this, the store's worker is the faster path. */
export const DEFAULT_PEEK_MAX_EVENTS = 2000;
/** An open that answers nothing in this time (Safari 14.1, see idb-quirks.ts) gives undefined. */
export const DEFAULT_PEEK_TIMEOUT_MS = 1000;

/** Where to peek: the store's name (its database), and limits. */
export interface PeekSource {
  /** The store's name, as given to openStore / serveStore (the IndexedDB database's name). */
  name: string;
  /** Fold at most this many events on the page (default 2,000); more gives undefined. */
  maxEvents?: number;
  /** Give up (undefined) on an open that has not answered in this time. Default 1,000 ms. */
  timeoutMs?: number;
  /** The factory to use instead of `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
}

export interface PeekedLog {
  /** The snapshot to start from; none: start from the projection's initial(). */
  snapshot: SnapshotRecord | undefined;
  /** The events to fold onto it, in the total order. */
  events: LocalRecord[];
}

/** Opens the database as it is, or resolves undefined (invariant 1). */
function openExisting(source: PeekSource): Promise<IDBDatabase | undefined> {
  const factory = source.indexedDB ?? globalFactory();
  if (factory === undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (db: IDBDatabase | undefined) => {
      clearTimeout(timer);
      if (settled) {
        db?.close();
        return;
      }
      settled = true;
      resolve(db);
    };
    const timer = setTimeout(() => settle(undefined), source.timeoutMs ?? DEFAULT_PEEK_TIMEOUT_MS);
    let open: IDBOpenDBRequest;
    try {
      // No version: the database as it is. Only a missing one needs an upgrade (to version 1).
      open = factory.open(source.name);
    } catch {
      settle(undefined);
      return;
    }
    open.onupgradeneeded = () => {
      // Aborting the transaction that would create the database leaves no database behind.
      open.transaction?.abort();
    };
    open.onerror = (event) => {
      event.preventDefault(); // handled: not an uncaught error in the console
      settle(undefined);
    };
    open.onsuccess = () => {
      const db = open.result;
      db.onversionchange = () => db.close();
      if (db.version !== SCHEMA_VERSION) {
        db.close();
        settle(undefined);
        return;
      }
      settle(db);
    };
  });
}

/**
 * Invariant 3 (core/projection.ts invariant 3): the snapshot (K, H) is usable when every event
 * received after H sorts after K. `after` holds every event whose cursor is > K; positions are
 * dense, so the events received after H number head - H, and all of them must be among `after`.
 */
export function snapshotUsable(
  snapshot: { pos: number },
  head: number,
  after: readonly LocalRecord[],
): boolean {
  let received = 0;
  for (const r of after) if (r.pos > snapshot.pos) received += 1;
  return received === head - snapshot.pos;
}

async function readLog(
  tx: IDBTransaction,
  projection: { name: string; version: number },
  maxEvents: number,
): Promise<PeekedLog | undefined> {
  const meta = tx.objectStore('meta');
  const segments = tx.objectStore('segments');
  const { name, version } = projection;
  const range = IDBKeyRange.bound([name, version], [name, version, []]);
  const [known, counters, newest] = await Promise.all([
    request(meta.get(appKey(projectionVersionKey(name)))),
    request(meta.get(KEY_COUNTERS)),
    request(tx.objectStore('snapshots').openCursor(range, 'prev')),
  ]);
  const { pos: head, maxCursor } = asCounters(counters);
  // One more than allowed: a page that full tells the tail is too long.
  const limit = maxEvents + 1;
  // core/projection.ts invariant 4: the store drops the snapshots of a version it did not run last.
  let cursor = known === version ? newest : null;
  while (cursor !== null) {
    const snapshot = cursor.value as SnapshotRecord;
    // Usable, it leaves at least the head - H events received after it to fold; an older one more.
    if (head - snapshot.pos > maxEvents) return undefined;
    // A snapshot at the largest cursor stored has no event after it: one round of reads fewer.
    const atEnd = maxCursor !== '' && snapshot.cursor >= maxCursor;
    const events = atEnd
      ? []
      : await readCursorRange(segments, { after: snapshot.cursor, limit }, limit);
    // An older snapshot only has more events after it.
    if (events.length > maxEvents) return undefined;
    if (snapshotUsable(snapshot, head, events)) return { snapshot, events };
    cursor.continue();
    cursor = await request(cursor.request as IDBRequest<IDBCursorWithValue | null>);
  }
  // Positions are dense: the log holds `head` events.
  if (head > maxEvents) return undefined;
  const events = await readCursorRange(segments, { limit }, limit);
  return events.length > maxEvents ? undefined : { snapshot: undefined, events };
}

/** What the store would fold first for `projection`, or undefined (invariant 4). */
export async function peekLog(
  source: PeekSource,
  projection: { name: string; version: number },
): Promise<PeekedLog | undefined> {
  const db = await openExisting(source);
  if (db === undefined) return undefined;
  let tx: IDBTransaction;
  try {
    tx = db.transaction(['meta', 'snapshots', 'segments'], 'readonly');
  } catch {
    db.close();
    return undefined;
  }
  // Invariant 2: closed once the transaction has ended, whatever the reads gave; on
  // versionchange at once, its reads ended first (their answer would be of the replaced schema).
  db.onversionchange = () => {
    abortQuietly(tx);
    db.close();
  };
  const close = () => db.close();
  tx.addEventListener('complete', close);
  tx.addEventListener('abort', close);
  try {
    return await readLog(tx, projection, source.maxEvents ?? DEFAULT_PEEK_MAX_EVENTS);
  } catch {
    abortQuietly(tx);
    return undefined;
  }
}

function abortQuietly(tx: IDBTransaction): void {
  try {
    tx.abort();
  } catch {
    // Already committed or aborted: it ends by itself.
  }
}
