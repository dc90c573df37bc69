/**
 * The translation of native IndexedDB failures into Chronicle error codes (idb-errors.ts) and
 * the quota-abort heuristic (idb-quirks.ts), without a database.
 */
import { describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  QuotaExceededError,
  StorageError,
  StoreClosedError,
} from '../../src/core/errors.ts';
import { closedError, translateIdbError } from '../../src/storage/idb-errors.ts';
import { isQuotaAbort } from '../../src/storage/idb-quirks.ts';

const dom = (name: string) => new DOMException(`native ${name}`, name);

describe('translateIdbError', () => {
  it.each([
    ['QuotaExceededError', 'QUOTA_EXCEEDED'],
    ['AbortError', 'STORAGE'],
    ['VersionError', 'STORAGE_UNAVAILABLE'],
    ['InvalidStateError', 'VERSION_CHANGE'],
    ['DataCloneError', 'STORAGE'],
    ['ConstraintError', 'STORAGE'],
    ['UnknownError', 'STORAGE'],
  ])('translates a native %s into code %s', (name, code) => {
    const error = translateIdbError(dom(name), 'appendLocal');
    expect(error.code).toBe(code);
    expect(error.details).toMatchObject({ operation: 'appendLocal', nativeName: name });
    expect(error.message.length).toBeGreaterThan(0);
  });

  it('makes QuotaExceededError instances for the quota, StorageError for the rest', () => {
    expect(translateIdbError(dom('QuotaExceededError'), 'ingest')).toBeInstanceOf(
      QuotaExceededError,
    );
    expect(translateIdbError(dom('VersionError'), 'open')).toBeInstanceOf(StorageError);
  });

  it('translates an AbortError suspected to be the quota into QUOTA_EXCEEDED', () => {
    const error = translateIdbError(dom('AbortError'), 'appendLocal', true);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error.cause).toBeInstanceOf(DOMException);
  });

  it('passes Chronicle errors through unchanged', () => {
    const original = new ConcurrencyError('s', 1, 2);
    expect(translateIdbError(original, 'appendLocal')).toBe(original);
  });

  it('translates values that are not errors into STORAGE', () => {
    expect(translateIdbError('boom', 'getMeta')).toMatchObject({
      code: 'STORAGE',
      details: { nativeMessage: 'boom' },
    });
  });
});

describe('closedError', () => {
  it('names each way a handle can be closed with its own code', () => {
    expect(closedError('db', 'closed')).toBeInstanceOf(StoreClosedError);
    expect(closedError('db', 'versionchange').code).toBe('VERSION_CHANGE');
    expect(closedError('db', 'deleted').code).toBe('VERSION_CHANGE');
    expect(closedError('db', 'unexpected').code).toBe('STORAGE_UNAVAILABLE');
  });
});

describe('isQuotaAbort (the Chromium quota-as-AbortError quirk)', () => {
  const base = {
    transactionError: dom('AbortError'),
    requestErrorNames: [] as string[],
    abortedByUs: false,
    connectionOpen: true,
  };

  it('blames the quota for an unexplained abort of a write on an open connection', () => {
    expect(isQuotaAbort(base)).toBe(true);
    expect(isQuotaAbort({ ...base, requestErrorNames: ['AbortError', 'AbortError'] })).toBe(true);
  });

  it('blames the quota for a QuotaExceededError whatever else happened', () => {
    expect(
      isQuotaAbort({ ...base, transactionError: dom('QuotaExceededError'), abortedByUs: true }),
    ).toBe(true);
  });

  it('does not blame the quota when the abort has another cause', () => {
    expect(isQuotaAbort({ ...base, abortedByUs: true })).toBe(false);
    expect(isQuotaAbort({ ...base, connectionOpen: false })).toBe(false);
    expect(isQuotaAbort({ ...base, requestErrorNames: ['ConstraintError'] })).toBe(false);
    expect(isQuotaAbort({ ...base, transactionError: dom('UnknownError') })).toBe(false);
  });
});
