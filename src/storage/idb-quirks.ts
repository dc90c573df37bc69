/**
 * Browser quirks of IndexedDB that the adapter works around, each with the browser and the reason.
 * Kept apart from indexeddb.ts so that the adapter reads as the spec says IndexedDB behaves.
 *
 * Invariants:
 * 1. No workaround here changes what is stored; they only decide how to open, how long to wait,
 *    and how to name a failure.
 */
import type { Durability } from './adapter.ts';
import { errorName } from './idb-errors.ts';

/**
 * The IndexedDB factory, or undefined when there is none.
 *
 * Safari (third-party iframes with storage blocked) and Firefox (`dom.indexedDB.enabled` off, some
 * sandboxed documents) throw a SecurityError from the `indexedDB` getter itself instead of leaving
 * it undefined: reading it must be guarded like a call.
 */
export function globalFactory(): IDBFactory | undefined {
  try {
    const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    return factory ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long an open() may stay without success, error or blocked before we give up.
 *
 * Safari 14.1 (macOS 11.3 / iOS 14.5): the first indexedDB.open() after the browser starts may
 * never fire any event (the `safari-14-idb-fix` package polls
 * indexedDB.databases() to wake it). Poking databases() (see wakeFactory) usually unsticks it;
 * this timeout turns the rest into a clear STORAGE_UNAVAILABLE instead of a hang.
 */
export const DEFAULT_OPEN_TIMEOUT_MS = 15_000;

/**
 * How long an upgrade may stay blocked by a stale tab that ignores `versionchange` before the
 * open fails with VERSION_CHANGE (RELIABILITY case 8): every browser waits forever otherwise.
 */
export const DEFAULT_BLOCKED_TIMEOUT_MS = 5_000;

/**
 * Safari 14.1: see DEFAULT_OPEN_TIMEOUT_MS. Calling databases() before open() wakes the stuck
 * IndexedDB server; elsewhere it is a harmless read. Firefox before 126 has no databases().
 */
export function wakeFactory(factory: IDBFactory): void {
  const databases = (factory as { databases?: () => Promise<unknown> }).databases;
  if (typeof databases !== 'function') return;
  try {
    databases.call(factory).catch(() => undefined);
  } catch {
    // Some fakes and old engines throw synchronously; waking is only a best effort.
  }
}

/**
 * Options for a write transaction. Chromium 121 made `relaxed` the default durability (the OS
 * may lose a committed transaction on a crash), so the durability is always passed explicitly.
 * Firefox and Safari ignore the member (an unknown dictionary member), which is safe: they flush
 * before `complete`.
 */
export function writeOptions(durability: Durability): IDBTransactionOptions {
  return { durability };
}

/**
 * Whether a write transaction that aborted is best reported as QUOTA_EXCEEDED.
 *
 * Chromium: when the quota runs out at commit time, every request has already succeeded
 * (`request.error` is null) and the transaction aborts with an `AbortError` on
 * `transaction.error` instead of a QuotaExceededError (reproducible with the CDP
 * `Storage.overrideQuotaForOrigin`). A write transaction that we did not abort ourselves,
 * whose requests report no error of their own, on a connection that is still open, has no other
 * cause we know of: it is reported as the quota.
 */
export function isQuotaAbort(options: {
  transactionError: unknown;
  requestErrorNames: readonly string[];
  abortedByUs: boolean;
  connectionOpen: boolean;
}): boolean {
  const name = errorName(options.transactionError);
  if (name === 'QuotaExceededError') return true;
  if (name !== 'AbortError' || options.abortedByUs || !options.connectionOpen) return false;
  // Requests still pending when a transaction aborts fail with AbortError: a consequence, not a cause.
  return options.requestErrorNames.every((n) => n === 'AbortError');
}

/**
 * Chromium fires a transaction's `abort` before the connection's `close` event when the browser
 * closes a connection by force (site data cleared): one macrotask lets `close` arrive before an
 * abort is blamed on the quota.
 */
export function afterPendingEvents(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
