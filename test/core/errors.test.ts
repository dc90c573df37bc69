import { describe, expect, it } from 'vitest';
import {
  ChronicleError,
  ConcurrencyError,
  deserializeError,
  type ErrorCode,
  HistoryUnavailableError,
  IdempotencyError,
  isChronicleError,
  NotFoundError,
  ProjectionError,
  QuotaExceededError,
  type SerializedError,
  StorageError,
  StoreClosedError,
  SyncError,
  ValidationError,
} from '../../src/core/errors.ts';

type ErrorClass = abstract new (...args: never[]) => ChronicleError;

/** Every class with every code it can carry; the codes are public API and must never change. */
const cases: [string, ChronicleError, ErrorClass, ErrorCode][] = [
  [
    'HistoryUnavailableError',
    new HistoryUnavailableError(undefined, { after: 'c1' }),
    HistoryUnavailableError,
    'HISTORY_OFFLINE',
  ],
  [
    'ConcurrencyError (number)',
    new ConcurrencyError('acct-1', 3, 5),
    ConcurrencyError,
    'CONCURRENCY',
  ],
  [
    'ConcurrencyError (none)',
    new ConcurrencyError('acct-1', 'none', 2),
    ConcurrencyError,
    'CONCURRENCY',
  ],
  [
    'IdempotencyError (payload)',
    new IdempotencyError('e1', 'payload-differs'),
    IdempotencyError,
    'IDEMPOTENCY',
  ],
  [
    'IdempotencyError (mixed)',
    new IdempotencyError('e2', 'mixed-batch'),
    IdempotencyError,
    'IDEMPOTENCY',
  ],
  [
    'IdempotencyError (in batch)',
    new IdempotencyError('e3', 'duplicate-in-batch'),
    IdempotencyError,
    'IDEMPOTENCY',
  ],
  [
    'ValidationError',
    new ValidationError('events[1].data.items[0]', 'NaN is not a JSON number'),
    ValidationError,
    'VALIDATION',
  ],
  ['StoreClosedError', new StoreClosedError(), StoreClosedError, 'STORE_CLOSED'],
  [
    'StoreClosedError (message)',
    new StoreClosedError('closed by the test'),
    StoreClosedError,
    'STORE_CLOSED',
  ],
  ['QuotaExceededError', new QuotaExceededError(), QuotaExceededError, 'QUOTA_EXCEEDED'],
  [
    'StorageError (STORAGE)',
    new StorageError('STORAGE', 'write failed', { op: 'put' }),
    StorageError,
    'STORAGE',
  ],
  [
    'StorageError (UNAVAILABLE)',
    new StorageError('STORAGE_UNAVAILABLE', 'no indexedDB'),
    StorageError,
    'STORAGE_UNAVAILABLE',
  ],
  [
    'StorageError (VERSION_CHANGE)',
    new StorageError('VERSION_CHANGE', 'upgraded elsewhere'),
    StorageError,
    'VERSION_CHANGE',
  ],
  [
    'NotFoundError',
    new NotFoundError('no projection "x"', { projection: 'x' }),
    NotFoundError,
    'NOT_FOUND',
  ],
  [
    'ProjectionError',
    new ProjectionError('apply threw', { projection: 'count' }),
    ProjectionError,
    'PROJECTION',
  ],
  [
    'SyncError (PROTOCOL)',
    new SyncError('PROTOCOL', 'bad frame', { type: 'push' }),
    SyncError,
    'PROTOCOL',
  ],
  [
    'SyncError (UNAUTHORIZED)',
    new SyncError('UNAUTHORIZED', 'no token'),
    SyncError,
    'UNAUTHORIZED',
  ],
  ['SyncError (FORBIDDEN)', new SyncError('FORBIDDEN', 'other space'), SyncError, 'FORBIDDEN'],
  [
    'SyncError (LIMIT_EXCEEDED)',
    new SyncError('LIMIT_EXCEEDED', 'frame too big', { limit: 10 }),
    SyncError,
    'LIMIT_EXCEEDED',
  ],
  ['SyncError (TRANSPORT)', new SyncError('TRANSPORT', 'socket closed'), SyncError, 'TRANSPORT'],
  [
    'SyncError (CLOCK_SKEW)',
    new SyncError('CLOCK_SKEW', 'clock a day fast'),
    SyncError,
    'CLOCK_SKEW',
  ],
  ['ChronicleError', new ChronicleError('STORAGE', 'generic'), ChronicleError, 'STORAGE'],
];

/** The fields a class adds beyond ChronicleError's, read off an instance. */
function ownFields(error: ChronicleError): Record<string, unknown> {
  const { stack: _stack, ...fields }: Record<string, unknown> = { ...error };
  return fields;
}

describe('errors', () => {
  it.each(cases)('%s has its stable code and works with instanceof', (_n, error, Class, code) => {
    expect(error.code).toBe(code);
    expect(error).toBeInstanceOf(Class);
    expect(error).toBeInstanceOf(ChronicleError);
    expect(error).toBeInstanceOf(Error);
    expect(isChronicleError(error)).toBe(true);
    expect(error.name).toBe(Class.name);
    expect(error.message.length).toBeGreaterThan(0);
  });

  it.each(cases)(
    '%s survives toJSON and deserializeError as the same class with the same fields',
    (_n, error, Class) => {
      const serialized = error.toJSON();
      expect(serialized).toEqual({
        name: error.name,
        code: error.code,
        message: error.message,
        details: error.details,
      });
      for (const input of [serialized, JSON.parse(JSON.stringify(serialized)) as SerializedError]) {
        const rebuilt = deserializeError(input);
        expect(rebuilt).toBeInstanceOf(Class);
        expect(rebuilt.constructor).toBe(Class);
        expect(rebuilt.name).toBe(error.name);
        expect(rebuilt.code).toBe(error.code);
        expect(rebuilt.message).toBe(error.message);
        expect(rebuilt.details).toEqual(error.details);
        expect(ownFields(rebuilt)).toEqual(ownFields(error));
      }
    },
  );

  it('carries structured fields: versions for concurrency, id and reason for idempotency, path for validation', () => {
    const c = new ConcurrencyError('acct-1', 'none', 2);
    expect(c).toMatchObject({ stream: 'acct-1', expectedVersion: 'none', actualVersion: 2 });
    expect(c.details).toEqual({ stream: 'acct-1', expectedVersion: 'none', actualVersion: 2 });
    expect(c.message).toMatch(/acct-1.*version 2.*no stream/);
    const i = new IdempotencyError('e1', 'mixed-batch');
    expect(i).toMatchObject({ eventId: 'e1', reason: 'mixed-batch' });
    const v = new ValidationError('events[0].type', 'must be a non-empty string');
    expect(v).toMatchObject({ path: 'events[0].type', reason: 'must be a non-empty string' });
    expect(v.message).toBe('events[0].type: must be a non-empty string');
  });

  it('rebuilds an unknown error name as a plain ChronicleError that keeps code and message', () => {
    const rebuilt = deserializeError({
      name: 'FutureError',
      code: 'PROTOCOL',
      message: 'new in v2',
    });
    expect(rebuilt).toBeInstanceOf(ChronicleError);
    expect(rebuilt).toMatchObject({ code: 'PROTOCOL', message: 'new in v2', details: {} });
  });

  it('does not take other errors for Chronicle errors', () => {
    expect(isChronicleError(new Error('x'))).toBe(false);
    expect(isChronicleError({ code: 'VALIDATION', message: 'x' })).toBe(false);
    expect(isChronicleError(null)).toBe(false);
  });
});
