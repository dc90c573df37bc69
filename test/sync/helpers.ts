/**
 * Test helpers for sync: a StoreInternals built straight from an EventLog (what the store gives
 * the SyncFactory), with an append helper and an injectable wall clock.
 */

import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../../src/core/clock-skew.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS } from '../../src/core/hlc.ts';
import { EventId } from '../../src/core/ids.ts';
import type { Transport } from '../../src/core/sync-types.ts';
import { type EventStore, type OpenStoreOptions, openStore } from '../../src/index.ts';
import type { EventLog, IngestResult, StorageAdapter } from '../../src/storage/adapter.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import type { StoreInternals } from '../../src/store/internal.ts';
import { syncFactory } from '../../src/sync/controller.ts';
import { type HelloMessage, PROTOCOL_VERSION, type SyncMessage } from '../../src/sync/protocol.ts';
import {
  type PeerSession,
  type PeerSessionOptions,
  type SessionError,
  startPeerSession,
} from '../../src/sync/session.ts';
import { storeSyncLog } from '../../src/sync/store-log.ts';
import { memoryTransportPair } from '../../src/sync/transports/memory.ts';
import { fromWire, toWire } from './wire.ts';

export interface TestInternals extends StoreInternals {
  /** Appends local events to `stream` (expectedVersion 'any'). */
  append(stream: string, ...data: unknown[]): Promise<StoredEventRecord[]>;
  /** Every event in the total order. */
  all(): Promise<StoredEventRecord[]>;
  /** Set with setClockOffset. */
  readonly offset: number;
  /** Ingest calls that will fail before touching the log (fault injection). */
  failNextIngests: number;
  /** Resolves `closing`. */
  shutdown(): Promise<void>;
}

export interface TestInternalsOptions {
  /** Raw wall clock; default Date.now. */
  clock?: () => number;
  maxClockDriftMs?: number;
}

export function makeInternals(log: EventLog, options: TestInternalsOptions = {}): TestInternals {
  const clock = options.clock ?? Date.now;
  const listeners = new Set<(head: number) => void>();
  let offset = 0;
  let resolveClosing: () => void = () => {};
  const closing = new Promise<void>((resolve) => {
    resolveClosing = resolve;
  });
  const notify = (written: LocalRecord[]) => {
    const last = written[written.length - 1];
    if (last === undefined) return;
    for (const listener of listeners) listener(last.pos);
  };
  const unsubscribeRemote = log.onRemoteWrite((head) => {
    for (const listener of listeners) listener(head);
  });
  const internals: TestInternals = {
    log,
    replicaId: log.replicaId,
    maxClockDriftMs: options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS,
    failNextIngests: 0,
    get offset() {
      return offset;
    },
    now: () => clock() + offset,
    setClockOffset(ms: number) {
      offset = ms;
    },
    async ingest(events: StoredEventRecord[]): Promise<IngestResult> {
      if (internals.failNextIngests > 0) {
        internals.failNextIngests--;
        throw new Error('injected ingest failure');
      }
      const result = await log.ingest({
        events,
        now: internals.now(),
        maxClockDriftMs: internals.maxClockDriftMs,
      });
      notify(result.written);
      return result;
    },
    // The store's re-stamp (store.ts), without projections to rebase.
    restamp: (request) =>
      log.restamp({
        ...request,
        now: internals.now(),
        maxClockAheadMs: internals.maxClockAheadMs ?? DEFAULT_MAX_CLOCK_AHEAD_MS,
      }),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    closing,
    async append(stream, ...data) {
      const result = await log.appendLocal({
        stream,
        events: data.map((d) => ({
          id: EventId.make(internals.now()),
          type: 'test',
          data: (d ?? null) as never,
          schema: 1,
        })),
        expectedVersion: 'any',
        now: internals.now(),
      });
      if (result.kind !== 'written') return result.events;
      notify(result.records);
      return result.records.map((r) => r.event);
    },
    async all() {
      const out: StoredEventRecord[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await log.readByCursor(
          after === undefined ? { limit: 500 } : { after, limit: 500 },
        );
        for (const r of page) out.push(r.event);
        if (page.length < 500) return out;
        after = page[page.length - 1]!.event.cursor;
      }
    },
    async shutdown() {
      unsubscribeRemote();
      resolveClosing();
    },
  };
  return internals;
}

/** A fresh replica on memory storage. */
export async function memoryReplica(
  options: TestInternalsOptions = {},
): Promise<{ storage: StorageAdapter; internals: TestInternals }> {
  const storage = memoryStorage();
  const log = await storage.open();
  return { storage, internals: makeInternals(log, options) };
}

/** Waits until `predicate` holds, polling on the macrotask queue (fails after `maxTurns`). */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  maxTurns = 2000,
): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, i < 50 ? 0 : 5));
  }
  throw new Error('condition not reached');
}

/** Ids of a log in total order. */
export async function idsInOrder(internals: TestInternals): Promise<string[]> {
  return (await internals.all()).map((e) => e.id);
}

export interface SessionLink {
  a: PeerSession;
  b: PeerSession;
  errors: { side: 'a' | 'b'; error: SessionError }[];
  close(): void;
}

/**
 * Opens both ends of a transport pair and runs a peer session on each over storeSyncLog. The
 * sessions end when the connection closes.
 */
export async function linkSessions(
  a: TestInternals,
  b: TestInternals,
  pair: [Transport, Transport],
  extra: { a?: Partial<PeerSessionOptions>; b?: Partial<PeerSessionOptions> } = {},
): Promise<SessionLink> {
  await Promise.all([pair[0].open(), pair[1].open()]);
  const errors: SessionLink['errors'] = [];
  const start = (side: 'a' | 'b', internals: TestInternals, transport: Transport) => {
    const session = startPeerSession({
      log: storeSyncLog(internals),
      send: (text) => transport.send(text),
      closeConnection: (code, reason) => transport.close(code, reason),
      now: internals.now,
      maxClockDriftMs: internals.maxClockDriftMs,
      onError: (error) => errors.push({ side, error }),
      ...extra[side],
    });
    const offMessage = transport.onMessage((text) => void session.receive(text));
    const offClose = transport.onClose(() => {
      offMessage();
      offClose();
      session.close();
    });
    return session;
  };
  const sa = start('a', a, pair[0]);
  const sb = start('b', b, pair[1]);
  return {
    a: sa,
    b: sb,
    errors,
    close: () => pair[0].close(),
  };
}

/** A scripted peer on one end of a memory pair: the test reads what it got and sends by hand. */
export interface RawPeer {
  received: SyncMessage[];
  send(message: unknown): void;
  sendText(text: string): void;
  of<T extends SyncMessage['type']>(type: T): Extract<SyncMessage, { type: T }>[];
  closed: () => boolean;
}

export async function rawPeer(
  internals: TestInternals,
  sessionOptions: Partial<PeerSessionOptions> = {},
): Promise<{ peer: RawPeer; session: PeerSession; errors: SessionError[] }> {
  const [a, b] = memoryTransportPair();
  await Promise.all([a.open(), b.open()]);
  const errors: SessionError[] = [];
  const session = startPeerSession({
    log: storeSyncLog(internals),
    send: (text) => a.send(text),
    closeConnection: (code, reason) => a.close(code, reason),
    now: internals.now,
    maxClockDriftMs: internals.maxClockDriftMs,
    onError: (error) => errors.push(error),
    ...sessionOptions,
  });
  a.onMessage((text) => void session.receive(text));
  a.onClose(() => session.close());
  const received: SyncMessage[] = [];
  let isClosed = false;
  b.onMessage((text) => received.push(fromWire<SyncMessage>(text)));
  b.onClose(() => {
    isClosed = true;
  });
  const peer: RawPeer = {
    received,
    send: (message) => b.send(toWire(message)),
    sendText: (text) => b.send(text),
    of: <T extends SyncMessage['type']>(type: T) =>
      received.filter((m): m is Extract<SyncMessage, { type: T }> => m.type === type),
    closed: () => isClosed,
  };
  return { peer, session, errors };
}

/** A hello from a made-up replica. */
export function helloFrom(replica: string, extra: Partial<HelloMessage> = {}): HelloMessage {
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    replica,
    epoch: `epoch-${replica}`,
    head: 0,
    seq: 0,
    time: Date.now(),
    ...extra,
  };
}

/** A store opened with its real sync controller, and the internals that controller was given. */
export async function openWithInternals<E = unknown>(
  options: OpenStoreOptions<E>,
): Promise<{ store: EventStore<E>; internals: StoreInternals }> {
  let internals: StoreInternals | undefined;
  const store = await openStore<E>({
    ...options,
    syncFactory: (i) => {
      internals = i;
      return syncFactory()(i);
    },
  });
  if (internals === undefined) throw new Error('no internals');
  return { store, internals };
}
