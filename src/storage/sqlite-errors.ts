/**
 * The one place where better-sqlite3's failures become Chronicle errors with a stable code
 * (CONVENTIONS: errors), as idb-errors.ts does for IndexedDB.
 * 1. A ChronicleError passes through unchanged (a rejected plan keeps its ConcurrencyError).
 * 2. SQLITE_FULL is QuotaExceededError; SQLITE_BUSY (another process held the write lock past
 *    the busy timeout) and every other failure is StorageError STORAGE. The transaction was
 *    rolled back in each case: nothing of the write was stored.
 * 3. The native code and message are kept in `details`.
 */
import {
  ChronicleError,
  QuotaExceededError,
  StorageError,
  StoreClosedError,
} from '../core/errors.ts';

function nativeOf(error: unknown): { code?: string; message: string } {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === 'string' ? { code } : {}),
    message: typeof message === 'string' ? message : String(error),
  };
}

export function translateSqliteError(error: unknown, operation: string): ChronicleError {
  if (error instanceof ChronicleError) return error;
  const native = nativeOf(error);
  const details = { operation, nativeCode: native.code, nativeMessage: native.message };
  if (native.code === 'SQLITE_FULL') {
    const quota = new QuotaExceededError('the disk is full; nothing of this write was stored');
    Object.assign(quota.details, details);
    return quota;
  }
  if (native.message.includes('database connection is not open')) {
    return new StoreClosedError('the storage handle is closed');
  }
  const busy = native.code?.startsWith('SQLITE_BUSY') === true;
  return new StorageError(
    'STORAGE',
    busy
      ? `${operation}: the replica file's write lock stayed with another connection (busy timeout passed); nothing was stored`
      : `${operation} failed in SQLite: ${native.message}`,
    details,
  );
}
