/**
 * What only the IndexedDB adapter does: failures of the browser's storage (quota, aborts, no
 * IndexedDB, stuck or refused opens), other tabs upgrading or deleting the database, and the
 * shape of its write transactions. The shared behaviour is in conformance.ts.
 */
import 'fake-indexeddb/auto';
import { forceCloseDatabase, IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeBase64Url } from '../../src/core/base64.ts';
import { QuotaExceededError, StorageError } from '../../src/core/errors.ts';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { EventId } from '../../src/core/ids.ts';
import type { EventLog, LocalAppendResult, OpenOptions } from '../../src/storage/adapter.ts';
import { SCHEMA_VERSION } from '../../src/storage/idb-schema.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';

const DAY = 24 * 60 * 60 * 1000;
let databases = 0;
let ids = 0;
const opened: EventLog[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  for (const log of opened.splice(0)) await log.close();
});

function fresh(options: { factory?: IDBFactory } = {}) {
  const factory = options.factory ?? new IDBFactory();
  const name = `idb-test-${++databases}`;
  return { factory, name, adapter: indexedDbStorage(name, { indexedDB: factory }) };
}

async function openLog(
  adapter: ReturnType<typeof indexedDbStorage>,
  options?: OpenOptions,
): Promise<EventLog> {
  const log = await adapter.open(options);
  opened.push(log);
  return log;
}

function append(log: EventLog, stream = 's', count = 1): Promise<LocalAppendResult> {
  return log.appendLocal({
    stream,
    events: Array.from({ length: count }, () => ({
      id: EventId.parse(`idb-evt-${++ids}`),
      type: 'Added',
      data: { n: ids },
      schema: 1,
    })),
    expectedVersion: 'any',
    now: 1_000,
  });
}

function remote(seq: number): StoredEventRecord {
  return storedEvent({
    replica: 'remote0000000002',
    seq,
    wall: 500 + seq,
    stream: 'remote',
    id: `idb-remote-${seq}-${++ids}`,
  });
}

function rawOpen(factory: IDBFactory, name: string, version: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = factory.open(name, version);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms),
    ),
  ]);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** The state a failed write must leave untouched. */
async function snapshotOf(log: EventLog) {
  return {
    head: await log.headPos(),
    events: await log.readByPos(0, 1_000),
    version: await log.streamVersion('s'),
    clock: await log.clock(),
  };
}

describe('IndexedDB adapter: readByCursorAtHorizon (store/history-reads.ts invariant 7)', () => {
  it('gives what readByCursor and horizon() give, in one transaction, before and after a trim', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    await append(log, 's', 3);
    await append(log, 't', 2);
    await append(log, 's', 2);
    const all = await log.readByCursor({ limit: 100 });
    const queries = [
      { limit: 100 },
      { stream: 's', limit: 100 },
      { stream: 's', limit: 2, after: all[0]!.event.cursor },
      { stream: 's', limit: 100, reverse: true },
      { limit: 3, reverse: true, after: all[6]!.event.cursor },
      { stream: 'none', limit: 100 },
      { limit: 0 },
    ];
    const check = async () => {
      for (const query of queries) {
        const transaction = vi.spyOn(IDBDatabase.prototype, 'transaction');
        const read = await log.readByCursorAtHorizon!(query);
        expect(transaction).toHaveBeenCalledTimes(1);
        transaction.mockRestore();
        expect(read).toEqual({
          records: await log.readByCursor(query),
          horizon: await log.horizon!(),
        });
      }
    };
    await check();
    await log.trim!(all[3]!.event.cursor, 100);
    expect(await log.horizon!()).toBe(all[3]!.event.cursor);
    await check();
  });
});

describe('IndexedDB adapter: quota and aborted writes (RELIABILITY 7)', () => {
  it('reports a QuotaExceededError from a write request as QUOTA_EXCEEDED and keeps the log intact', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    await append(log, 's', 2);
    const before = await snapshotOf(log);
    const add = IDBObjectStore.prototype.add;
    vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['add']>
    ) {
      if (this.name === 'segments' && (args[0] as { pos: number }).pos === 3) {
        throw new DOMException('the quota is exhausted', 'QuotaExceededError');
      }
      return add.apply(this, args);
    });
    const error = await rejection(append(log, 's', 3));
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(await snapshotOf(log)).toEqual(before);
    vi.restoreAllMocks();
    const after = await append(log, 's', 1);
    expect(after).toMatchObject({ kind: 'written', records: [{ pos: 3, event: { seq: 3 } }] });
  });

  it('reports an AbortError on the transaction with no request error as QUOTA_EXCEEDED (the Chromium quirk)', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    await append(log);
    const before = await snapshotOf(log);
    const put = IDBObjectStore.prototype.put;
    // Every request succeeds; then the transaction aborts at commit, as Chromium does at the quota.
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['put']>
    ) {
      const request = put.apply(this, args);
      // The counters: every write of events puts them (appends put no stream row).
      if (this.name === 'meta') {
        request.addEventListener('success', () => this.transaction.abort());
      }
      return request;
    });
    const error = await rejection(append(log, 's', 2));
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(await snapshotOf(log)).toEqual(before);

    const ingestError = await rejection(
      log.ingest({ events: [remote(1)], now: 1_000, maxClockDriftMs: DAY }),
    );
    expect(ingestError).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(await snapshotOf(log)).toEqual(before);
  });

  it('reports a value that cannot be cloned as a STORAGE error and writes nothing', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    const before = await snapshotOf(log);
    const add = IDBObjectStore.prototype.add;
    vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['add']>
    ) {
      if (this.name === 'segments') throw new DOMException('a function', 'DataCloneError');
      return add.apply(this, args);
    });
    const error = await rejection(append(log));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'STORAGE', details: { nativeName: 'DataCloneError' } });
    expect(await snapshotOf(log)).toEqual(before);
  });
});

describe('IndexedDB adapter: write transactions (invariant 1)', () => {
  it('appends and ingests in one readwrite transaction over events, meta and streams, with strict durability by default', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    const transaction = vi.spyOn(IDBDatabase.prototype, 'transaction');
    await append(log, 's', 3);
    await log.ingest({ events: [remote(1), remote(2)], now: 1_000, maxClockDriftMs: DAY });
    const writes = transaction.mock.calls.filter((call) => call[1] === 'readwrite');
    expect(writes).toEqual([
      [['segments', 'meta', 'streams'], 'readwrite', { durability: 'strict' }],
      [['segments', 'meta', 'streams'], 'readwrite', { durability: 'strict' }],
    ]);
  });

  it("passes durability 'relaxed' to write transactions when the handle is opened with it", async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter, { durability: 'relaxed' });
    const transaction = vi.spyOn(IDBDatabase.prototype, 'transaction');
    await append(log);
    await log.setMeta('k', 1);
    const durabilities = transaction.mock.calls
      .filter((call) => call[1] === 'readwrite')
      .map((call) => call[2]?.durability);
    expect(durabilities).toEqual(['relaxed', 'relaxed']);
  });
});

describe('IndexedDB adapter: opening (RELIABILITY 10)', () => {
  it('fails with STORAGE_UNAVAILABLE when there is no IndexedDB at all', async () => {
    vi.stubGlobal('indexedDB', undefined);
    const error = await rejection(indexedDbStorage('nowhere').open());
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/memoryStorage/);
  });

  it('fails with STORAGE_UNAVAILABLE when reading indexedDB itself throws (blocked storage)', async () => {
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'indexedDB');
    Object.defineProperty(globalThis, 'indexedDB', {
      configurable: true,
      get() {
        throw new DOMException('storage is blocked', 'SecurityError');
      },
    });
    try {
      await expect(indexedDbStorage('blocked').open()).rejects.toMatchObject({
        code: 'STORAGE_UNAVAILABLE',
      });
    } finally {
      if (descriptor !== undefined) Object.defineProperty(globalThis, 'indexedDB', descriptor);
    }
  });

  it('fails with STORAGE_UNAVAILABLE when open() throws', async () => {
    const factory = {
      open() {
        throw new DOMException('not allowed', 'SecurityError');
      },
    } as unknown as IDBFactory;
    const error = await rejection(indexedDbStorage('refused', { indexedDB: factory }).open());
    expect(error).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      details: { nativeName: 'SecurityError' },
    });
  });

  it('fails with STORAGE_UNAVAILABLE, not a hang, when open() never answers', async () => {
    const factory = { open: () => ({}) } as unknown as IDBFactory;
    const adapter = indexedDbStorage('stuck', { indexedDB: factory, openTimeoutMs: 50 });
    const error = await within(rejection(adapter.open()), 2_000, 'the stuck open');
    expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/did not answer/);
  });

  it('fails with VERSION_CHANGE, not a hang, when a stale tab keeps blocking the open (RELIABILITY 8)', async () => {
    const factory = {
      open() {
        const request: { onblocked?: (event: Event) => void } = {};
        setTimeout(() => request.onblocked?.(new Event('blocked')), 0);
        return request;
      },
    } as unknown as IDBFactory;
    const adapter = indexedDbStorage('blocked-open', {
      indexedDB: factory,
      openTimeoutMs: 10_000,
      blockedTimeoutMs: 50,
    });
    const error = await within(rejection(adapter.open()), 2_000, 'the blocked open');
    expect(error).toMatchObject({ code: 'VERSION_CHANGE' });
  });

  it('fails with STORAGE_UNAVAILABLE when the database was created by a newer version', async () => {
    const { factory, name, adapter } = fresh();
    (await rawOpen(factory, name, SCHEMA_VERSION + 1)).close();
    const error = await rejection(adapter.open());
    expect(error).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      details: { nativeName: 'VersionError' },
    });
  });

  it('fails with STORAGE_UNAVAILABLE when the database lacks its metadata', async () => {
    const { factory, name, adapter } = fresh();
    (await rawOpen(factory, name, 1)).close();
    await expect(adapter.open()).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  });
});

describe('IndexedDB adapter: other tabs and the browser closing the database (RELIABILITY 8, 9)', () => {
  it('closes itself when another tab upgrades, so the upgrade does not hang, and then rejects every call with VERSION_CHANGE', async () => {
    const { factory, name, adapter } = fresh();
    const onExternalClose = vi.fn();
    const log = await openLog(adapter, { onExternalClose });
    const heard = vi.fn();
    log.onRemoteWrite(heard);
    await append(log);
    const upgraded = await within(
      rawOpen(factory, name, SCHEMA_VERSION + 1),
      2_000,
      'the upgrading open',
    );
    expect(onExternalClose).toHaveBeenCalledExactlyOnceWith('versionchange');
    for (const call of [append(log), log.headPos(), log.readByPos(0, 10), log.setMeta('k', 1)]) {
      const error = await rejection(call);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'VERSION_CHANGE' });
    }
    // The upgraded database kept what was written before.
    const count = await new Promise<number>((resolve) => {
      const request = upgraded.transaction('segments').objectStore('segments').count();
      request.onsuccess = () => resolve(request.result);
    });
    expect(count).toBe(1);
    upgraded.close();
  });

  it('finishes a write already in flight when another tab upgrades, and reports it truthfully', async () => {
    const { factory, name, adapter } = fresh();
    const log = await openLog(adapter, { onExternalClose: () => {} });
    const pending = append(log, 's', 2);
    const upgrading = rawOpen(factory, name, SCHEMA_VERSION + 1);
    const result = await pending;
    expect(result.kind).toBe('written');
    const upgraded = await within(upgrading, 2_000, 'the upgrading open');
    // One append of two events: one segment holding both.
    const count = await new Promise<number>((resolve) => {
      const request = upgraded.transaction('segments').objectStore('segments').getAll();
      request.onsuccess = () => resolve((request.result as { n: number }[])[0]!.n);
    });
    expect(count).toBe(2);
    upgraded.close();
  });

  it("closes itself with reason 'deleted' when another tab deletes the database", async () => {
    const { factory, name, adapter } = fresh();
    const onExternalClose = vi.fn();
    const log = await openLog(adapter, { onExternalClose });
    await append(log);
    await within(
      new Promise<void>((resolve, reject) => {
        const request = factory.deleteDatabase(name);
        request.onsuccess = () => resolve();
        request.onerror = () => reject(request.error);
      }),
      2_000,
      'the delete',
    );
    expect(onExternalClose).toHaveBeenCalledExactlyOnceWith('deleted');
    await expect(log.headPos()).rejects.toMatchObject({ code: 'VERSION_CHANGE' });
    // A new handle starts a new log: a new replica id and epoch.
    const reopened = await openLog(adapter);
    expect(await reopened.headPos()).toBe(0);
    expect(reopened.epoch).not.toBe(log.epoch);
  });

  it("reports a connection closed by the browser as 'unexpected' and then rejects calls", async () => {
    const factory = new IDBFactory();
    const connections: IDBDatabase[] = [];
    const open = factory.open.bind(factory);
    factory.open = (name: string, version?: number) => {
      const request = open(name, version);
      request.addEventListener('success', () => connections.push(request.result));
      return request;
    };
    const { adapter } = fresh({ factory });
    const onExternalClose = vi.fn();
    const log = await openLog(adapter, { onExternalClose });
    await append(log);
    // fake-indexeddb declares the parameter as the IDBDatabase class, not an instance.
    forceCloseDatabase(connections[0] as unknown as Parameters<typeof forceCloseDatabase>[0]);
    await vi.waitFor(() => expect(onExternalClose).toHaveBeenCalledWith('unexpected'));
    await expect(append(log)).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  });

  it('rejects calls with STORE_CLOSED once the application closed the handle itself', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    await log.close();
    await expect(log.headPos()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  it('tells a handle opened through another adapter instance (another tab) of writes', async () => {
    const { factory, name, adapter } = fresh();
    const otherTab = indexedDbStorage(name, { indexedDB: factory });
    const [writer, reader] = await Promise.all([openLog(adapter), openLog(otherTab)]);
    expect(reader.replicaId).toBe(writer.replicaId);
    const heard: number[] = [];
    reader.onRemoteWrite((head) => heard.push(head));
    await append(writer, 's', 3);
    await vi.waitFor(() => expect(heard).toEqual([3]));
    expect(await reader.readByPos(0, 10)).toHaveLength(3);
  });
});

describe('IndexedDB adapter: segments (issue 3)', () => {
  it('finds the smallest cursor after a position across several pages of segments', async () => {
    const { adapter } = fresh();
    const log = await openLog(adapter);
    // 300 one-event appends: 300 segments, more than one page of the scan.
    for (let i = 0; i < 300; i++) await append(log, i % 2 === 0 ? 's' : 't');
    await log.ingest({ events: [remote(1)], now: 1_000, maxClockDriftMs: DAY });
    await append(log, 's', 3);
    const all = await log.readByPos(0, 1_000);
    expect(all).toHaveLength(304);
    for (const pos of [0, 1, 150, 299, 300, 301, 302, 303, 304]) {
      const rest = all.slice(pos).map((r) => r.event.cursor);
      expect(await log.minCursorSince(pos)).toBe(rest.sort()[0]);
    }
  });
});

describe('IndexedDB adapter: folds read $sig as stored (core/segments.ts invariant 8)', () => {
  it('leaves each $sig as the 0 of its compact segment for a read without signatures, and writes it out for every other read', async () => {
    const log = await openLog(fresh().adapter);
    const sig = (n: number) => encodeBase64Url(Uint8Array.from({ length: 64 }, (_, i) => i ^ n));
    const events = [1, 2, 3].map((seq) =>
      storedEvent({ replica: 'signer0000000001', seq, wall: seq, meta: { $sig: sig(seq) } }),
    );
    await log.ingest({ events, now: 1_000, maxClockDriftMs: DAY });
    for (const query of [{ limit: 10 }, { stream: 's', limit: 10 }, { reverse: true, limit: 10 }]) {
      const folded = await log.readByCursor({ ...query, withoutSignatures: true });
      expect(folded.map((r) => r.event.meta)).toEqual([{ $sig: 0 }, { $sig: 0 }, { $sig: 0 }]);
      const whole = await log.readByCursor(query);
      expect(whole.map((r) => r.event.meta?.$sig).sort()).toEqual([1, 2, 3].map(sig).sort());
    }
  });
});

describe('IndexedDB adapter: ingest without id lookups (invariant 7)', () => {
  /** Counts `getKey` requests on the `id` index: one per id looked up. */
  function countIdLookups(): { count: number } {
    const counter = { count: 0 };
    const original = IDBIndex.prototype.getKey;
    vi.spyOn(IDBIndex.prototype, 'getKey').mockImplementation(function (this: IDBIndex, query) {
      if (this.name === 'id') counter.count += 1;
      return original.call(this, query);
    });
    return counter;
  }

  const ingest = (log: EventLog, events: StoredEventRecord[]) =>
    log.ingest({ events, now: 1_000, maxClockDriftMs: DAY });

  it('writes new events without looking a single id up', async () => {
    const log = await openLog(fresh().adapter);
    const lookups = countIdLookups();
    const result = await ingest(log, [remote(1), remote(2), remote(3)]);
    expect(result.written.map((r) => r.pos)).toEqual([1, 2, 3]);
    expect(lookups.count).toBe(0);
  });

  it('skips events it holds wherever they lie in their segment, once, and stores each event once', async () => {
    const log = await openLog(fresh().adapter);
    // One segment of ten remote events, then a second of three.
    const held = Array.from({ length: 10 }, (_, i) => remote(i + 1));
    await ingest(log, held);
    await ingest(log, [remote(11), remote(12), remote(13)]);
    const lookups = countIdLookups();
    for (const [k, again] of [held[0]!, held[4]!, held[9]!].entries()) {
      // First, inside and last of its segment; beside a new event each time.
      const fresh = remote(100 + k);
      const result = await ingest(log, [again, fresh]);
      expect(result.written.map((r) => r.event.id)).toEqual([fresh.id]);
      expect(result.lost).toEqual([]);
    }
    expect(lookups.count).toBeGreaterThan(0);
    const all = await log.readByPos(0, 100);
    expect(all).toHaveLength(16);
    expect(new Set(all.map((r) => r.event.id)).size).toBe(16);
  });

  it('places a batch of older events among stored ones with a few key reads, not two a cursor', async () => {
    const log = await openLog(fresh().adapter);
    // A local append stamped after everything that follows: each ingested event sorts before it.
    await log.appendLocal({
      stream: 'local',
      events: [{ type: 'Added', data: null, schema: 1 }],
      expectedVersion: 'any',
      now: 10_000_000,
    });
    const reads = { count: 0 };
    for (const method of ['openKeyCursor', 'getKey'] as const) {
      const original = IDBObjectStore.prototype[method] as (...args: unknown[]) => IDBRequest;
      vi.spyOn(IDBObjectStore.prototype, method).mockImplementation(function (
        this: IDBObjectStore,
        ...args: unknown[]
      ) {
        reads.count += 1;
        return original.apply(this, args);
      });
    }
    const older = Array.from({ length: 300 }, (_, i) => remote(i + 1));
    await ingest(log, older.slice(0, 150));
    await ingest(log, older.slice(150));
    expect(reads.count).toBeLessThanOrEqual(4);
    const all = await log.readByCursor({ limit: 1_000 });
    expect(all.map((r) => r.event.id)).toEqual([...older.map((e) => e.id), all.at(-1)!.event.id]);
    expect(all.at(-1)!.event.stream).toBe('local');
  });

  it('reports an event that reuses a held id with other content and a later cursor as the losing copy, and stores neither twice', async () => {
    const log = await openLog(fresh().adapter);
    const held = remote(1);
    await ingest(log, [held, remote(2)]);
    const impostor = { ...remote(3), id: held.id };
    const result = await ingest(log, [impostor]);
    expect(result.written).toEqual([]);
    expect(result.lost).toMatchObject([{ code: 'ID_CONFLICT', event: impostor, held: false }]);
    expect((await log.readByPos(0, 10)).map((r) => r.event)).toEqual([held, expect.anything()]);
  });
});
