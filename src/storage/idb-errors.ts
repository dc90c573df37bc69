/**
 * The one place where native IndexedDB failures become Chronicle errors with a stable code.
 *
 * Invariants:
 * 1. Every error that leaves the IndexedDB adapter is a ChronicleError: callers switch on `code`,
 *    never on a DOMException name that differs between browsers.
 * 2. A ChronicleError passes through unchanged (a rejected plan keeps its ConcurrencyError).
 * 3. The native error's name and message are kept in `details` for diagnostics.
 */
import {
  ChronicleError,
  QuotaExceededError,
  StorageError,
  StoreClosedError,
} from '../core/errors.ts';

/** The name of a DOMException or Error, or undefined for anything else. */
export function errorName(error: unknown): string | undefined {
  if (error !== null && typeof error === 'object' && 'name' in error) {
    const name = (error as { name: unknown }).name;
    return typeof name === 'string' ? name : undefined;
  }
  return undefined;
}

function nativeDetails(error: unknown, operation: string): Record<string, unknown> {
  const details: Record<string, unknown> = { operation };
  const name = errorName(error);
  if (name !== undefined) details.nativeName = name;
  if (
    error instanceof Error ||
    (typeof DOMException !== 'undefined' && error instanceof DOMException)
  ) {
    details.nativeMessage = error.message;
  } else if (name === undefined) {
    details.nativeMessage = String(error);
  }
  return details;
}

/**
 * Translates a failure of `operation` (e.g. 'appendLocal') into a ChronicleError.
 * `quotaSuspected` is set when the write-abort quirk (idb-quirks.ts) points at the quota.
 */
export function translateIdbError(
  error: unknown,
  operation: string,
  quotaSuspected = false,
): ChronicleError {
  if (error instanceof ChronicleError) return error;
  const details = nativeDetails(error, operation);
  switch (errorName(error)) {
    case 'QuotaExceededError':
      return withCause(new QuotaExceededError(), error, details);
    case 'AbortError':
      if (quotaSuspected) return withCause(new QuotaExceededError(), error, details);
      return new StorageError(
        'STORAGE',
        `${operation}: the IndexedDB transaction was aborted; nothing of it was stored`,
        details,
      );
    case 'VersionError':
      return new StorageError(
        'STORAGE_UNAVAILABLE',
        `${operation}: the database was created by a newer version of Chronicle; reload the page to run the newer code`,
        details,
      );
    case 'InvalidStateError':
      // The connection is closing or closed: another tab upgraded or deleted the database.
      return new StorageError(
        'VERSION_CHANGE',
        `${operation}: the database connection was closed from outside (another tab upgraded or deleted it)`,
        details,
      );
    case 'DataCloneError':
      return new StorageError(
        'STORAGE',
        `${operation}: a value could not be stored (it is not structured-clone data)`,
        details,
      );
    default:
      return new StorageError('STORAGE', `${operation}: IndexedDB failed`, details);
  }
}

function withCause<E extends ChronicleError>(
  target: E,
  cause: unknown,
  details: Record<string, unknown>,
): E {
  Object.assign(target.details, details);
  target.cause = cause;
  return target;
}

/** The database could not be opened at all: no IndexedDB, a refused open, a stuck open. */
export function unavailable(dbName: string, reason: string, cause?: unknown): StorageError {
  const error = new StorageError(
    'STORAGE_UNAVAILABLE',
    `IndexedDB database "${dbName}" is unavailable: ${reason}`,
    cause === undefined ? { dbName } : { dbName, ...nativeDetails(cause, 'open') },
  );
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** Why a handle refuses work, once it is closed. */
export type ClosedReason = 'closed' | 'versionchange' | 'deleted' | 'unexpected';

export function closedError(dbName: string, reason: ClosedReason): ChronicleError {
  switch (reason) {
    case 'closed':
      return new StoreClosedError(`the storage handle on "${dbName}" is closed`);
    case 'versionchange':
      return new StorageError(
        'VERSION_CHANGE',
        `database "${dbName}" was upgraded by another tab; this handle closed itself, reopen the store`,
        { dbName, reason },
      );
    case 'deleted':
      return new StorageError(
        'VERSION_CHANGE',
        `database "${dbName}" was deleted by another tab; this handle closed itself, reopen the store`,
        { dbName, reason },
      );
    case 'unexpected':
      return new StorageError(
        'STORAGE_UNAVAILABLE',
        `the browser closed database "${dbName}" (site data cleared or a storage failure); reopen the store`,
        { dbName, reason },
      );
    default: {
      const never: never = reason;
      throw new Error(`unknown reason ${String(never)}`);
    }
  }
}
