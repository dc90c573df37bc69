/**
 * One client's session with the worker: the StoreEndpoint exposed over that client's comlink
 * port, and everything the client registered (listeners, sync connections).
 *
 * Invariants:
 * 1. The endpoint has exactly the StoreEndpoint methods, on a frozen object without a prototype:
 *    comlink resolves any property path a page sends, so nothing else may be reachable.
 * 2. Every listener the client registered is removed from the store and its comlink proxy
 *    released on unlisten, on close, and when the client's page goes away (its Web Lock is
 *    released): no listener outlives its page.
 * 3. A watch listener has at most one state in flight to the page; states computed meanwhile
 *    coalesce into the newest one, sent when the page has taken the previous one.
 * 4. After the session ends, every call rejects with StoreClosedError.
 * 5. A token function the page lends (protocol.ts, RemoteTokenSource) is called on every
 *    (re)connect of its connection, and only then; an answer that is not a non-empty string, or
 *    none within TOKEN_TIMEOUT_MS, fails that attempt (retried with backoff). Its proxy is
 *    released with the connection: on syncClose, on a refused connect, and when the session ends.
 */
import { expose, releaseProxy } from 'comlink';
import {
  type HelloReply,
  type HostStatus,
  isUrlList,
  PROTOCOL_VERSION,
  type RemoteListener,
  type RemoteSyncTarget,
  type RemoteTokenSource,
  type StoreEndpoint,
} from '../src/client/protocol.ts';
import { StoreClosedError, SyncError, ValidationError } from '../src/core/errors.ts';
import type { SyncConnection, SyncTarget } from '../src/core/sync-types.ts';
import type { EventStore } from '../src/store/types.ts';
import type { StoreHost } from './host.ts';

/** How long a lent token function may take to answer (invariant 5). */
export const TOKEN_TIMEOUT_MS = 30_000;

/** Counts every live listener of every session in this worker (for requestStats). */
export const liveListeners = { count: 0 };

function release(remote: unknown): void {
  try {
    (remote as { [releaseProxy]?: () => void })[releaseProxy]?.();
  } catch {
    // Released already, or the page is gone: nothing left to free.
  }
}

/** Calls `remote` with the newest value, one call in flight at a time (invariant 3). */
function coalescing<T>(remote: RemoteListener<T>): (value: T) => void {
  let inFlight = false;
  let next: { value: T } | undefined;
  const send = (value: T): void => {
    inFlight = true;
    Promise.resolve()
      .then(() => remote(value))
      .catch(() => undefined)
      .finally(() => {
        inFlight = false;
        const pending = next;
        next = undefined;
        if (pending !== undefined) send(pending.value);
      });
  };
  return (value) => {
    if (inFlight) next = { value };
    else send(value);
  };
}

export class Session {
  private store: EventStore | undefined;
  private ended = false;
  private nextHandle = 1;
  private readonly listeners = new Map<number, () => void>();
  private readonly connections = new Map<number, { connection: SyncConnection; lent?: unknown }>();
  private unsubscribeStatus: (() => void) | undefined;

  private readonly host: StoreHost;
  private readonly port: MessagePort;
  private readonly onEnd: (session: Session) => void;

  constructor(host: StoreHost, port: MessagePort, onEnd: (session: Session) => void) {
    this.host = host;
    this.port = port;
    this.onEnd = onEnd;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  start(lock: string | undefined): void {
    expose(this.endpoint(), this.port);
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (lock !== undefined && locks !== undefined) {
      // Granted only once the page that holds it is gone (invariant 2).
      void locks.request(lock, () => this.end()).catch(() => undefined);
    }
  }

  private async opened(): Promise<EventStore> {
    if (this.ended) throw new StoreClosedError('this client closed its connection to the store');
    if (this.store === undefined) throw new StoreClosedError('hello() was not called');
    return this.store;
  }

  private track(stop: () => void, remote: unknown): number {
    const handle = this.nextHandle++;
    liveListeners.count += 1;
    this.listeners.set(handle, () => {
      liveListeners.count -= 1;
      stop();
      release(remote);
    });
    return handle;
  }

  private endpoint(): StoreEndpoint {
    const endpoint: StoreEndpoint = {
      hello: async (onStatus: RemoteListener<HostStatus>): Promise<HelloReply> => {
        if (this.ended) throw new StoreClosedError();
        if (this.store === undefined) {
          this.store = await this.host.acquire();
          const send = coalescing(onStatus);
          this.unsubscribeStatus = this.host.onStatus(send);
          // The status callback is released with the session, like any listener.
          this.track(() => {}, onStatus);
        }
        return {
          version: PROTOCOL_VERSION,
          replicaId: this.store.replicaId,
          status: this.host.status(),
        };
      },
      append: async (stream, events, options) =>
        (await this.opened()).append(stream, events, options),
      execute: async (aggregate, stream, command, input, options) =>
        (await this.opened()).execute(aggregate, stream, command, input, options),
      inspect: async (projection) => (await this.opened()).inspect(projection),
      shred: async (stream) => (await this.opened()).shred(stream),
      appendMany: async (appends) => (await this.opened()).appendMany(appends),
      read: async (query) => (await this.opened()).read(query),
      readSince: async (position, query) => (await this.opened()).readSince(position, query),
      localGet: async (key) => (await this.opened()).local.get(key),
      localSet: async (key, value) => (await this.opened()).local.set(key, value),
      subscribe: async (listener, query) => {
        const store = await this.opened();
        // Every batch must arrive, in order: postMessage keeps the order, nothing is dropped.
        const stop = store.subscribe(
          (events) => void Promise.resolve(listener(events)).catch(() => undefined),
          query,
        );
        return this.track(stop, listener);
      },
      watch: async (projection, listener) => {
        const store = await this.opened();
        const stop = store.watch(projection, coalescing(listener));
        return this.track(stop, listener);
      },
      onStorage: async (listener) => {
        const store = await this.opened();
        // Every notice arrives: they are rare, and each tells what one pass did.
        const stop = store.on(
          'storage',
          (notice) => void Promise.resolve(listener(notice)).catch(() => undefined),
        );
        return this.track(stop, listener);
      },
      unlisten: async (handle) => {
        const stop = this.listeners.get(handle);
        this.listeners.delete(handle);
        stop?.();
      },
      state: async (projection, options) => (await this.opened()).state(projection, options),
      conflicts: async (query) => (await this.opened()).conflicts(query),
      query: async (projection, name, args) => {
        if (!Array.isArray(args)) throw new ValidationError('args', 'must be an array');
        return (await this.opened()).query(projection, name, ...args);
      },
      rebuild: async (projection, onProgress) => {
        const store = await this.opened();
        try {
          await store.rebuild(
            projection,
            onProgress === undefined ? undefined : (done, total) => void onProgress([done, total]),
          );
        } finally {
          if (onProgress !== undefined) release(onProgress);
        }
      },
      syncConnect: async (target, tokenSource) => {
        const lent = typeof tokenSource === 'function' ? tokenSource : undefined;
        try {
          const store = await this.opened();
          const checked = checkTarget(target, lent);
          await this.host.syncReady(store);
          const connection = store.sync.connect(checked);
          const id = this.nextHandle++;
          this.connections.set(id, lent === undefined ? { connection } : { connection, lent });
          return id;
        } catch (error) {
          if (lent !== undefined) release(lent);
          throw error;
        }
      },
      syncClose: async (id) => {
        const entry = this.connections.get(id);
        this.connections.delete(id);
        await closeConnection(entry);
      },
      close: async () => this.end(),
    };
    return Object.freeze(Object.assign(Object.create(null) as object, endpoint)) as StoreEndpoint;
  }

  /** Ends the session: listeners, connections and the store reference go (invariant 2, 4). */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.unsubscribeStatus?.();
    for (const stop of this.listeners.values()) stop();
    this.listeners.clear();
    const connections = [...this.connections.values()];
    this.connections.clear();
    await Promise.allSettled(connections.map(closeConnection));
    const hadStore = this.store !== undefined;
    this.store = undefined;
    this.onEnd(this);
    if (hadStore) await this.host.release();
    // Let comlink answer the close() call that may have ended us before the port goes.
    setTimeout(() => this.port.close(), 0);
  }
}

async function closeConnection(
  entry: { connection: SyncConnection; lent?: unknown } | undefined,
): Promise<void> {
  try {
    await entry?.connection.close();
  } finally {
    if (entry?.lent !== undefined) release(entry.lent);
  }
}

/** The page's token function as the transport calls it (invariant 5). */
function borrowedToken(source: RemoteTokenSource): () => Promise<string> {
  return async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SyncError('UNAUTHORIZED', 'the page did not hand a token in time')),
        TOKEN_TIMEOUT_MS,
      );
    });
    try {
      const token = await Promise.race([source(), late]);
      if (typeof token !== 'string' || token.length === 0) {
        throw new SyncError(
          'UNAUTHORIZED',
          'the token function must resolve to a non-empty string',
        );
      }
      return token;
    } finally {
      clearTimeout(timer);
    }
  };
}

function checkTarget(target: RemoteSyncTarget, lent: RemoteTokenSource | undefined): SyncTarget {
  if (target === null || typeof target !== 'object' || !isUrlList(target.url)) {
    throw new ValidationError('target', 'must be { url, token? }: url a string or a list of them');
  }
  if (lent !== undefined) return { url: target.url, token: borrowedToken(lent) };
  const { token } = target;
  if (token === undefined) return { url: target.url };
  if (typeof token !== 'string') {
    throw new ValidationError('target.token', 'must be a string across a worker boundary');
  }
  return { url: target.url, token };
}
