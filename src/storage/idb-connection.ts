/**
 * One handle's connection to the database: its life (closed by the application, another tab's
 * upgrade or delete, or the browser), its read and write transactions with their failures
 * translated, and the write notices between handles. What is read and written is indexeddb.ts's.
 *
 * Invariants (indexeddb.ts 1, 4 and 5):
 * 1. write() resolves only after the transaction's `complete`; a body that throws aborts it.
 * 2. Once closed, every call rejects: STORE_CLOSED, VERSION_CHANGE or STORAGE_UNAVAILABLE.
 * 3. Notices go out only after commit, and are only hints.
 * 4. close() resolves once the connection is closed: the transactions begun before it finished
 *    (another tab may upgrade the database at once, without `blocked`). An upgrade asked while
 *    close() waits is not `blocked` either: the connection is closed at once, they still finish.
 */
import { type IDBPDatabase, type IDBPTransaction, type StoreNames, unwrap } from 'idb';
import { ChronicleError } from '../core/errors.ts';
import type { Durability, OpenOptions, RemoteWriteListener } from './adapter.ts';
import { type ClosedReason, closedError, errorName, translateIdbError } from './idb-errors.ts';
import { openChannel, type WriteNotice } from './idb-open.ts';
import { afterPendingEvents, isQuotaAbort, writeOptions } from './idb-quirks.ts';
import type { ChronicleSchema } from './idb-schema.ts';

type Db = IDBPDatabase<ChronicleSchema>;

function noop(): void {}

interface ConnectionSettings {
  dbName: string;
  durability: Durability;
  onExternalClose: OpenOptions['onExternalClose'];
}

export class IdbConnection {
  private closedReason: ClosedReason | undefined;
  private readonly listeners = new Set<RemoteWriteListener>();
  private readonly channel: BroadcastChannel | undefined;

  readonly db: Db;
  private readonly settings: ConnectionSettings;

  constructor(db: Db, settings: ConnectionSettings) {
    this.db = db;
    this.settings = settings;
    db.addEventListener('versionchange', (event) => {
      this.closeFromOutside(event.newVersion === null ? 'deleted' : 'versionchange');
    });
    db.addEventListener('close', () => this.closeFromOutside('unexpected'));
    this.channel = openChannel(settings.dbName, (headPos, rewrittenFrom) => {
      if (this.closedReason !== undefined) return;
      for (const listener of this.listeners) listener(headPos, rewrittenFrom);
    });
  }

  private closeFromOutside(reason: Exclude<ClosedReason, 'closed'>): void {
    if (this.closedReason === 'closed') {
      // close() is waiting for the transactions in flight: a versionchange not answered by close()
      // in its handler is `blocked` in the other tab. Closed now, they still finish (invariant 4).
      this.db.close();
      return;
    }
    if (this.closedReason !== undefined) return;
    this.shutDown(reason);
    try {
      this.settings.onExternalClose?.(reason);
    } catch {
      // The listener's failure must not keep the connection open and block the other tab.
    }
  }

  private shutDown(reason: ClosedReason): void {
    this.closedReason = reason;
    this.listeners.clear();
    this.channel?.close();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closedReason !== undefined) throw closedError(this.settings.dbName, this.closedReason);
  }

  private failure(error: unknown, operation: string, quotaSuspected = false): Error {
    const translated = translateIdbError(error, operation, quotaSuspected);
    // A native failure on a handle closed meanwhile is the closing, whatever IDB named it.
    if (
      this.closedReason !== undefined &&
      !(error instanceof ChronicleError) &&
      translated.code !== 'QUOTA_EXCEEDED'
    ) {
      return closedError(this.settings.dbName, this.closedReason);
    }
    return translated;
  }

  async read<T>(operation: string, body: (db: Db) => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await body(this.db);
    } catch (error) {
      throw this.failure(error, operation);
    }
  }

  /** One read of the segments store, in its own readonly transaction. */
  readSegmentStore<T>(operation: string, body: (store: IDBObjectStore) => Promise<T>): Promise<T> {
    return this.read(operation, (db) =>
      body(unwrap(db.transaction('segments')).objectStore('segments')),
    );
  }

  /**
   * Runs `body` in one readwrite transaction and resolves after `complete`. `body` must await
   * only requests of `tx`; their failures bubble to the transaction, where they are collected.
   */
  async write<S extends StoreNames<ChronicleSchema>[], T>(
    operation: string,
    stores: S,
    body: (tx: IDBTransaction) => Promise<T>,
    durability: Durability = this.settings.durability,
  ): Promise<T> {
    this.assertOpen();
    let tx: IDBPTransaction<ChronicleSchema, S, 'readwrite'>;
    try {
      tx = this.db.transaction(stores, 'readwrite', writeOptions(durability));
    } catch (error) {
      throw this.failure(error, operation);
    }
    const done = tx.done;
    done.catch(noop);
    const requestErrors: unknown[] = [];
    const raw = unwrap(tx);
    raw.addEventListener('error', (event) => {
      const target = event.target as IDBRequest | null;
      if (target !== null && 'error' in target) requestErrors.push(target.error);
    });
    let result: T;
    try {
      result = await body(raw);
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already finished: it was aborted by the failure itself.
      }
      await done.catch(noop);
      throw this.failure(error, operation);
    }
    try {
      await done;
    } catch (txError) {
      await afterPendingEvents();
      const quota = isQuotaAbort({
        transactionError: txError,
        requestErrorNames: requestErrors.map((e) => errorName(e) ?? 'Error'),
        abortedByUs: false,
        connectionOpen: this.closedReason === undefined,
      });
      const cause = requestErrors.find((e) => errorName(e) !== 'AbortError') ?? txError;
      throw this.failure(quota ? txError : cause, operation, quota);
    }
    return result;
  }

  notifyOthers(headPos: number, rewrittenFrom?: string): void {
    const notice: WriteNotice = { type: 'chronicle:write', headPos };
    if (rewrittenFrom !== undefined) notice.rewrittenFrom = rewrittenFrom;
    try {
      this.channel?.postMessage(notice);
    } catch {
      // A notice is only a hint (adapter.ts): the log is the truth.
    }
  }

  onRemoteWrite(listener: RemoteWriteListener): () => void {
    if (this.closedReason !== undefined) return noop;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Closes the connection once its transactions are done (invariant 4). IndexedDB closes a
   * connection only after its last transaction and says nothing when it has: another tab's
   * upgrade right after an early close() was `blocked` meanwhile. A readwrite transaction over
   * every store starts only after all earlier ones finished, so once it ends none is left.
   */
  async close(): Promise<void> {
    if (this.closedReason !== undefined) {
      this.closedReason = 'closed';
      return;
    }
    this.closedReason = 'closed';
    await this.drain();
    this.shutDown('closed');
  }

  private drain(): Promise<void> {
    return new Promise((resolve) => {
      // Bounded: a browser that never finishes a transaction must not hang close().
      const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      try {
        const raw = unwrap(this.db);
        const tx = raw.transaction(Array.from(raw.objectStoreNames), 'readwrite', {
          durability: 'relaxed',
        });
        tx.oncomplete = done;
        tx.onabort = done;
      } catch {
        done();
      }
    });
  }
}

/** The longest close() waits for the transactions in flight. */
const DRAIN_TIMEOUT_MS = 2000;
