/**
 * Opening the database and hearing of other handles' writes: the parts of the IndexedDB adapter
 * that are about connections, not about the log (indexeddb.ts).
 *
 * Invariants:
 * 1. open never hangs: it resolves, or rejects with STORAGE_UNAVAILABLE or VERSION_CHANGE.
 * 2. A write notice is only a hint, sent after commit; the log is the truth.
 */
import type { IDBPDatabase } from 'idb';
import { StorageError } from '../core/errors.ts';
import { ReplicaId } from '../core/ids.ts';
import { errorName, unavailable } from './idb-errors.ts';
import { wakeFactory } from './idb-quirks.ts';
import {
  type ChronicleSchema,
  KEY_EPOCH,
  KEY_REPLICA,
  SCHEMA_VERSION,
  upgrade,
} from './idb-schema.ts';

export interface WriteNotice {
  type: 'chronicle:write';
  headPos: number;
  /** adapter.ts onRemoteWrite: the smallest cursor a discard or re-stamp touched. */
  rewrittenFrom?: string;
}

/** Opens the raw connection: never hangs, always rejects with STORAGE_UNAVAILABLE or VERSION_CHANGE. */
export function openDatabase(
  factory: IDBFactory,
  dbName: string,
  timeouts: { openMs: number; blockedMs: number },
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let blockedTimer: ReturnType<typeof setTimeout> | undefined;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(openTimer);
      clearTimeout(blockedTimer);
      reject(error);
    };
    const openTimer = setTimeout(
      () => fail(unavailable(dbName, `open() did not answer within ${timeouts.openMs} ms`)),
      timeouts.openMs,
    );
    let request: IDBOpenDBRequest;
    try {
      wakeFactory(factory);
      request = factory.open(dbName, SCHEMA_VERSION);
    } catch (error) {
      fail(unavailable(dbName, 'open() was refused', error));
      return;
    }
    request.onupgradeneeded = (event) => {
      if (request.transaction !== null)
        upgrade(request.result, event.oldVersion, request.transaction);
    };
    request.onblocked = () => {
      blockedTimer ??= setTimeout(() => {
        fail(
          new StorageError(
            'VERSION_CHANGE',
            `database "${dbName}" is held open by another tab that does not close it; close the other tabs and retry`,
            { dbName },
          ),
        );
      }, timeouts.blockedMs);
    };
    request.onsuccess = () => {
      const db = request.result;
      if (settled) {
        // We gave up on this open already (timeout): do not leak a connection that blocks upgrades.
        db.close();
        return;
      }
      settled = true;
      clearTimeout(openTimer);
      clearTimeout(blockedTimer);
      resolve(db);
    };
    request.onerror = (event) => {
      // A handled error: stops the fake and some browsers from reporting it as uncaught.
      event.preventDefault();
      const error = request.error;
      const reason =
        errorName(error) === 'VersionError'
          ? 'it was created by a newer version of Chronicle; reload to run the newer code'
          : 'open() failed (private browsing, blocked storage or a corrupt database)';
      fail(unavailable(dbName, reason, error));
    };
  });
}

function channelName(dbName: string): string {
  return `chronicle:indexeddb:${dbName}`;
}

function isWriteNotice(value: unknown): value is WriteNotice {
  return (
    value !== null &&
    typeof value === 'object' &&
    (value as { type?: unknown }).type === 'chronicle:write' &&
    typeof (value as { headPos?: unknown }).headPos === 'number'
  );
}

export function openChannel(
  dbName: string,
  onNotice: (headPos: number, rewrittenFrom?: string) => void,
): BroadcastChannel | undefined {
  if (typeof BroadcastChannel === 'undefined') return undefined;
  const channel = new BroadcastChannel(channelName(dbName));
  channel.onmessage = (event: MessageEvent<unknown>) => {
    if (!isWriteNotice(event.data)) return;
    const from = event.data.rewrittenFrom;
    onNotice(event.data.headPos, typeof from === 'string' ? from : undefined);
  };
  // Node keeps its process alive while a BroadcastChannel is referenced; browsers have no unref.
  (channel as { unref?: () => void }).unref?.();
  return channel;
}

export async function readIdentity(
  db: IDBPDatabase<ChronicleSchema>,
): Promise<{ replicaId: ReplicaId; epoch: string }> {
  const tx = db.transaction('meta');
  const [replicaId, epoch] = await Promise.all([
    tx.store.get(KEY_REPLICA),
    tx.store.get(KEY_EPOCH),
  ]);
  if (!ReplicaId.isValid(replicaId) || typeof epoch !== 'string') {
    throw new StorageError('STORAGE', 'the replica id or epoch is missing from the database');
  }
  return { replicaId, epoch };
}
