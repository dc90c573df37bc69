/**
 * Every error Chronicle raises is a ChronicleError with a stable string `code`.
 * Codes are part of the public API: they are catalogued in the README and never renamed.
 */

export type ErrorCode =
  | 'CONCURRENCY'
  | 'IDEMPOTENCY'
  | 'VALIDATION'
  | 'STORE_CLOSED'
  | 'QUOTA_EXCEEDED'
  | 'STORAGE'
  | 'SEQ_CONFLICT'
  | 'STORAGE_UNAVAILABLE'
  | 'VERSION_CHANGE'
  | 'NOT_FOUND'
  | 'PROJECTION'
  | 'CLOCK_SKEW'
  | 'PROTOCOL'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'LIMIT_EXCEEDED'
  | 'TRANSPORT'
  | 'MISSING_DEPENDENCY'
  | 'COMMAND_REJECTED'
  | 'UNREADABLE'
  | 'TAMPERED'
  | 'HISTORY_OFFLINE';

/** Fields that every error carries across a worker or network boundary. */
export interface SerializedError {
  name: string;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class ChronicleError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ChronicleError';
    this.code = code;
    this.details = details;
  }

  toJSON(): SerializedError {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/** An append's expectedVersion did not match the stream's current version. Nothing was written. */
export class ConcurrencyError extends ChronicleError {
  readonly stream: string;
  readonly expectedVersion: number | 'none';
  readonly actualVersion: number;

  constructor(stream: string, expectedVersion: number | 'none', actualVersion: number) {
    super(
      'CONCURRENCY',
      `stream "${stream}" is at version ${actualVersion}, expected ${expectedVersion === 'none' ? 'no stream' : `version ${expectedVersion}`}`,
      { stream, expectedVersion, actualVersion },
    );
    this.name = 'ConcurrencyError';
    this.stream = stream;
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

export type IdempotencyReason =
  | 'payload-differs'
  | 'mixed-batch'
  | 'duplicate-in-batch'
  | 'trimmed';

/** An event id is stored already with another payload, or a batch mixes stored and new ids. */
export class IdempotencyError extends ChronicleError {
  readonly eventId: string;
  readonly reason: IdempotencyReason;

  constructor(eventId: string, reason: IdempotencyReason) {
    const why =
      reason === 'payload-differs'
        ? 'is stored already with a different payload'
        : reason === 'mixed-batch'
          ? 'is stored already, but the batch also holds new events'
          : reason === 'trimmed'
            ? "is stored already, below this device's horizon: its payload cannot be compared here"
            : 'appears twice in one batch';
    super('IDEMPOTENCY', `event id "${eventId}" ${why}`, { eventId, reason });
    this.name = 'IdempotencyError';
    this.eventId = eventId;
    this.reason = reason;
  }
}

/**
 * A batch holds an event whose (replica, seq) is held under another id, or two events with one
 * (replica, seq): the server stores nothing of it (core/copies.ts invariant 5).
 */
export class SeqConflictError extends ChronicleError {
  readonly eventId: string;
  readonly keptId: string;

  constructor(eventId: string, keptId: string) {
    super(
      'SEQ_CONFLICT',
      `event "${eventId}" reuses the (replica, seq) of event "${keptId}"; nothing of its batch was stored`,
      { eventId, keptId },
    );
    this.name = 'SeqConflictError';
    this.eventId = eventId;
    this.keptId = keptId;
  }
}

/** Bad input: `path` points at the offending field, e.g. `events[2].data.items[0]`. */
export class ValidationError extends ChronicleError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super('VALIDATION', `${path}: ${reason}`, { path, reason });
    this.name = 'ValidationError';
    this.path = path;
    this.reason = reason;
  }
}

export class StoreClosedError extends ChronicleError {
  constructor(message = 'the store is closed') {
    super('STORE_CLOSED', message);
    this.name = 'StoreClosedError';
  }
}

/** The browser refused to store more data. Nothing of the failing write was stored. */
export class QuotaExceededError extends ChronicleError {
  constructor(message = 'storage quota exceeded; nothing of this write was stored') {
    super('QUOTA_EXCEEDED', message);
    this.name = 'QuotaExceededError';
  }
}

/**
 * A storage failure: `STORAGE` for a failed operation, `STORAGE_UNAVAILABLE` when the database
 * cannot be opened at all, `VERSION_CHANGE` when another tab upgraded or deleted the database.
 */
export class StorageError extends ChronicleError {
  constructor(
    code: 'STORAGE' | 'STORAGE_UNAVAILABLE' | 'VERSION_CHANGE',
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, details);
    this.name = 'StorageError';
  }
}

/** A projection, query or event that does not exist. */
export class NotFoundError extends ChronicleError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('NOT_FOUND', message, details);
    this.name = 'NotFoundError';
  }
}

/** A projection's `apply`, `initial` or query threw; the projection stays at its last good state. */
export class ProjectionError extends ChronicleError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('PROJECTION', message, details);
    this.name = 'ProjectionError';
  }
}

/**
 * An encrypted event this replica cannot open (core/sealing.ts): no key of its id here
 * ('key-unknown'), or its text fails to authenticate ('corrupt'). The event stays stored and
 * synced; only what needs its content (a command on its stream) refuses to go on.
 */
export class UnreadableError extends ChronicleError {
  constructor(
    message: string,
    details: { eventId: string; kid: string; reason?: 'key-unknown' | 'corrupt' },
  ) {
    super('UNREADABLE', message, details);
    this.name = 'UnreadableError';
  }
}

/**
 * History below what this device keeps (docs/storage-growth.md) was asked for, and no server can
 * answer now (offline, or a server that does not serve history). Nothing is lost: the events
 * are on the server, and the same read succeeds once one answers.
 */
export class HistoryUnavailableError extends ChronicleError {
  constructor(
    message = 'older history is on the server, and no server answers now',
    details: Record<string, unknown> = {},
  ) {
    super('HISTORY_OFFLINE', message, details);
    this.name = 'HistoryUnavailableError';
  }
}

/** A sync peer or message broke the protocol, auth or limits. */
export class SyncError extends ChronicleError {
  constructor(
    code: 'PROTOCOL' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'LIMIT_EXCEEDED' | 'TRANSPORT' | 'CLOCK_SKEW',
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, details);
    this.name = 'SyncError';
  }
}

/**
 * A server module needs an optional peer dependency of the package (better-sqlite3, pg, ws,
 * jose) that the app has not installed. `dependency` is the package to install.
 */
export class MissingDependencyError extends ChronicleError {
  readonly dependency: string;

  constructor(dependency: string, neededBy: string) {
    super(
      'MISSING_DEPENDENCY',
      `${neededBy} needs the package "${dependency}", an optional peer dependency of @chronicle-es/store: install it with \`npm install ${dependency}\``,
      { dependency, neededBy },
    );
    this.name = 'MissingDependencyError';
    this.dependency = dependency;
  }
}

/**
 * Whether `error`, thrown by require or import of `dependency`, says that package itself is not
 * installed: a missing dependency of the package, or a native build for another Node, is
 * another failure, which installing the package again would not fix.
 */
export function isMissingModule(error: unknown, dependency: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') &&
    typeof message === 'string' &&
    (message.includes(`'${dependency}'`) || message.includes(`"${dependency}"`))
  );
}

/**
 * A command's handler refused it (core/aggregate.ts reject): nothing was appended. `reason` is
 * the handler's stable reason, `message` its words for people.
 */
export class CommandRejectedError extends ChronicleError {
  readonly aggregate: string;
  readonly command: string;
  readonly stream: string;
  readonly reason: string;

  constructor(
    aggregate: string,
    command: string,
    stream: string,
    rejection: { reason: string; message: string; details?: Record<string, unknown> },
  ) {
    super('COMMAND_REJECTED', rejection.message, {
      aggregate,
      command,
      stream,
      reason: rejection.reason,
      ...(rejection.details === undefined ? {} : { rejection: rejection.details }),
    });
    this.name = 'CommandRejectedError';
    this.aggregate = aggregate;
    this.command = command;
    this.stream = stream;
    this.reason = rejection.reason;
  }
}

const errorClasses = {
  ConcurrencyError,
  IdempotencyError,
  SeqConflictError,
  ValidationError,
  StoreClosedError,
  QuotaExceededError,
  StorageError,
  NotFoundError,
  ProjectionError,
  SyncError,
  UnreadableError,
} as const;

/** Rebuilds an error of the right class from its serialized form (worker and wire boundaries). */
export function deserializeError(serialized: SerializedError): ChronicleError {
  const d = serialized.details ?? {};
  let error: ChronicleError;
  switch (serialized.name) {
    case 'ConcurrencyError':
      error = new ConcurrencyError(
        String(d.stream),
        d.expectedVersion as number | 'none',
        Number(d.actualVersion),
      );
      break;
    case 'IdempotencyError':
      error = new IdempotencyError(String(d.eventId), d.reason as IdempotencyReason);
      break;
    case 'SeqConflictError':
      error = new SeqConflictError(String(d.eventId), String(d.keptId));
      break;
    case 'ValidationError':
      error = new ValidationError(String(d.path), String(d.reason));
      break;
    case 'StoreClosedError':
      error = new StoreClosedError(serialized.message);
      break;
    case 'QuotaExceededError':
      error = new QuotaExceededError(serialized.message);
      break;
    case 'HistoryUnavailableError':
      error = new HistoryUnavailableError(serialized.message, d);
      break;
    case 'CommandRejectedError': {
      const rejection: { reason: string; message: string; details?: Record<string, unknown> } = {
        reason: String(d.reason),
        message: serialized.message,
      };
      if (typeof d.rejection === 'object' && d.rejection !== null) {
        rejection.details = d.rejection as Record<string, unknown>;
      }
      error = new CommandRejectedError(
        String(d.aggregate),
        String(d.command),
        String(d.stream),
        rejection,
      );
      break;
    }
    default: {
      const Known = errorClasses[serialized.name as keyof typeof errorClasses];
      if (
        Known === StorageError ||
        Known === NotFoundError ||
        Known === ProjectionError ||
        Known === SyncError ||
        Known === UnreadableError
      ) {
        error = new ChronicleError(serialized.code, serialized.message, d);
        Object.setPrototypeOf(error, Known.prototype);
        error.name = serialized.name;
      } else {
        error = new ChronicleError(serialized.code, serialized.message, d);
      }
    }
  }
  error.message = serialized.message;
  return error;
}

export function isChronicleError(value: unknown): value is ChronicleError {
  return value instanceof ChronicleError;
}
