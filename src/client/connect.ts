/// <reference lib="dom" preserve="true" />
// Declarations name the DOM's Worker, MessagePort and IndexedDB types: a Node project whose
// tsconfig leaves the DOM library out still compiles against them.
/**
 * connectStore(): the main thread's EventStore, served by a worker (@chronicle-es/store/worker)
 * through comlink. Same interface as openStore, plus what only the page can know or do: the worker's
 * status (storage closed by another tab, sync leadership) and persistent storage.
 *
 * Invariants:
 * 1. The client holds a Web Lock for as long as it lives; the worker waits for it and so learns
 *    when the page is gone, releasing everything the page registered (protocol.ts, 2).
 * 2. subscribe and watch return at once, like in-process; a listener removed before the worker
 *    has registered it is unregistered as soon as it is, and is never called after removal.
 * 3. Errors keep their class and code (errors.ts).
 * 4. After close(), every method rejects (or throws) StoreClosedError.
 * 5. Opening never waits on a permission: persistent storage is asked in the background (Firefox
 *    answers navigator.storage.persist() only once the user answers its prompt, maybe never), and
 *    `persisted` takes the answer when it comes.
 */
import { proxy, type Remote, wrap } from 'comlink';
import type { AnyAggregate } from '../core/aggregate.ts';
import { deserializeError, StoreClosedError, ValidationError } from '../core/errors.ts';
import type { JsonValue, NewEvent, StoredEvent } from '../core/events.ts';
import type { Projection, ProjectionQueries } from '../core/projection.ts';
import type { SyncApi, SyncConnection, SyncStatus, SyncTarget } from '../core/sync-types.ts';
import {
  type ProjectionRef,
  projectionName,
  type QueryArgs,
  type QueryName,
  type QueryResult,
} from '../store/typed.ts';
import type {
  AppendOptions,
  Conflict,
  EventStore,
  ExecuteOptions,
  LocalCache,
  ProjectionInfo,
  ReadQuery,
  ReceivedEvents,
  ReceiveQuery,
  StateAt,
  StorageNotice,
  StreamAppend,
  SubscribeQuery,
} from '../store/types.ts';
import { installErrorTransfer } from './errors.ts';
import { holdClientLock } from './lock.ts';
import {
  type ClientMessage,
  type HostStatus,
  isHostMessage,
  isUrlList,
  PROTOCOL_VERSION,
  type StoreEndpoint,
} from './protocol.ts';

export interface ConnectOptions {
  /**
   * Ask the browser for persistent storage (navigator.storage.persist()), in the background:
   * opening never waits for the answer (invariant 5). Default true.
   */
  persist?: boolean;
  /** How long to wait for the worker's answer before failing. Default 30 s. */
  timeoutMs?: number;
}

/** The EventStore of connectStore, with what the page learns of its worker. */
export interface ConnectedStore<E = unknown> extends EventStore<E> {
  /**
   * The answer of navigator.storage.persist(): true when the browser will not evict this
   * origin's data under storage pressure; false when it may, when it was not asked, or while
   * the browser has not answered yet (Firefox asks the user first). Opening never waits for the
   * answer; this field takes it when it comes (invariant 5).
   */
  readonly persisted: boolean;
  /** The worker's status: where it runs, whether its database is open, whether it leads sync. */
  readonly worker: {
    status(): HostStatus;
    on(event: 'status', listener: (status: HostStatus) => void): () => void;
  };
}

type WorkerLike = Worker | SharedWorker | MessagePort;

function endpointOf(target: WorkerLike): MessagePort | Worker {
  if (typeof SharedWorker !== 'undefined' && target instanceof SharedWorker) return target.port;
  return target as MessagePort | Worker;
}

/**
 * Asks for persistent storage without being waited for (invariant 5): `onAnswer` gets true as
 * soon as storage is known to be persistent, false when the browser refuses.
 */
function askPersistence(onAnswer: (persisted: boolean) => void): void {
  // persist() exists only in windows; a worker may call persisted() but not ask.
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (storage === undefined || typeof storage.persist !== 'function') return;
  // persisted() only reads; persist() may wait on a prompt the user never answers.
  void Promise.resolve()
    .then(() => storage.persisted())
    .then((already) => (already ? true : storage.persist()))
    .then(onAnswer, () => undefined);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new StoreClosedError(`the worker did not answer ${what} within ${ms} ms`)),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Connects to a store served by `serveStore` in a SharedWorker, a dedicated Worker, or over a
 * MessagePort.
 *
 * @example
 * const worker = new SharedWorker(new URL('./store.worker.ts', import.meta.url), { type: 'module' });
 * const store = await connectStore<TodoEvent>(worker);
 * await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
 */
export async function connectStore<E = unknown>(
  worker: WorkerLike,
  options: ConnectOptions = {},
): Promise<ConnectedStore<E>> {
  installErrorTransfer();
  const raw = endpointOf(worker);
  const lock = await holdClientLock();
  const channel = new MessageChannel();
  const remote = wrap<StoreEndpoint>(channel.port1);
  const refused = new Promise<never>((_, reject) => {
    channel.port1.addEventListener('message', (event: MessageEvent<unknown>) => {
      const data = event.data;
      if (isHostMessage(data) && data.type === 'chronicle:refused') {
        reject(deserializeError(data.error));
      }
    });
  });
  refused.catch(() => undefined);
  const connect: ClientMessage = {
    type: 'chronicle:connect',
    version: PROTOCOL_VERSION,
    port: channel.port2,
  };
  if (lock !== undefined) connect.lock = lock.name;
  if (raw instanceof MessagePort) raw.start();
  raw.postMessage(connect, [channel.port2]);

  const client = new Client<E>(remote, () => {
    lock?.release();
    channel.port1.close();
  });
  if (options.persist !== false) askPersistence((persisted) => client.setPersisted(persisted));
  try {
    const hello = await withTimeout(
      Promise.race([remote.hello(proxy((s: HostStatus) => client.setStatus(s))), refused]),
      options.timeoutMs ?? 30_000,
      'hello',
    );
    client.ready(hello.replicaId, hello.status);
    if (lock === undefined && typeof addEventListener === 'function') {
      // Without Web Locks the worker cannot see the page go (lock.ts, 2): say goodbye.
      addEventListener('pagehide', () => void client.close().catch(() => undefined), {
        once: true,
      });
    }
    return client;
  } catch (error) {
    lock?.release();
    channel.port1.close();
    throw error;
  }
}

class Client<E> implements ConnectedStore<E> {
  replicaId = '';
  persisted = false;
  readonly sync: SyncApi;
  readonly worker: ConnectedStore<E>['worker'];
  private closed = false;
  private hostStatus!: HostStatus;
  /** A status arrived through the listener (see ready()). */
  private statusPushed = false;
  private readonly statusListeners = new Set<(status: HostStatus) => void>();
  private readonly syncListeners = new Set<(status: SyncStatus) => void>();

  private readonly remote: Remote<StoreEndpoint>;
  private readonly dispose: () => void;

  constructor(remote: Remote<StoreEndpoint>, dispose: () => void) {
    this.remote = remote;
    this.dispose = dispose;
    this.worker = {
      status: () => ({ ...this.hostStatus }),
      on: (_event, listener) => {
        this.statusListeners.add(listener);
        return () => this.statusListeners.delete(listener);
      },
    };
    this.sync = {
      connect: (target) => this.syncConnect(target),
      status: () => ({ ...this.hostStatus.sync }),
      on: (_event, listener) => {
        this.syncListeners.add(listener);
        return () => this.syncListeners.delete(listener);
      },
    };
  }

  ready(replicaId: string, status: HostStatus): void {
    this.replicaId = replicaId;
    // The status pushed through the listener travels on its own port, so it can arrive before
    // the hello reply; it is never older than the reply's (the worker registers the listener,
    // then reads the status for the reply). Keep it rather than go back in time.
    if (!this.statusPushed) this.hostStatus = status;
  }

  setPersisted(persisted: boolean): void {
    this.persisted = persisted;
  }

  setStatus(status: HostStatus): void {
    const syncChanged = JSON.stringify(status.sync) !== JSON.stringify(this.hostStatus?.sync);
    this.statusPushed = true;
    this.hostStatus = status;
    for (const listener of [...this.statusListeners]) listener({ ...status });
    if (syncChanged) for (const listener of [...this.syncListeners]) listener({ ...status.sync });
  }

  private call<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return run();
  }

  append(
    stream: string,
    events: NewEvent<E> | readonly NewEvent<E>[],
    options?: AppendOptions,
  ): Promise<StoredEvent<E>[]> {
    // The worker's store is loose (serveStore); the events are the same ones.
    const loose = events as NewEvent | NewEvent[];
    return this.call(() => this.remote.append(stream, loose, options) as Promise<StoredEvent<E>[]>);
  }

  appendMany(appends: readonly StreamAppend<E>[]): Promise<StoredEvent<E>[][]> {
    const loose = [...appends] as StreamAppend[];
    return this.call(() => this.remote.appendMany(loose) as Promise<StoredEvent<E>[][]>);
  }

  execute(
    aggregate: string | AnyAggregate<E>,
    stream: string,
    command: string,
    input?: unknown,
    options?: ExecuteOptions,
  ): Promise<StoredEvent<E>[]> {
    // Only the name crosses: the worker's store runs its own declaration of the aggregate.
    const name = typeof aggregate === 'string' ? aggregate : aggregate.name;
    return this.call(
      () => this.remote.execute(name, stream, command, input, options) as Promise<StoredEvent<E>[]>,
    );
  }

  read(query?: ReadQuery<E>): Promise<StoredEvent<E>[]> {
    return this.call(() => this.remote.read(query) as Promise<StoredEvent<E>[]>);
  }

  readSince(position: number, query?: ReceiveQuery<E>): Promise<ReceivedEvents<E>> {
    return this.call(() => this.remote.readSince(position, query) as Promise<ReceivedEvents<E>>);
  }

  readonly local: LocalCache = {
    // comlink's Remote<> type distributes over the JsonValue union; the value is the same.
    get: (key) => this.call(() => this.remote.localGet(key) as Promise<JsonValue | undefined>),
    set: (key, value) => this.call(() => this.remote.localSet(key, value)),
  };

  // Only the name crosses the boundary (typed.ts invariant 2).
  state<S, Q extends ProjectionQueries<S> = ProjectionQueries<S>>(
    projection: Projection<S, E, Q>,
    options?: { at?: StateAt },
  ): Promise<S>;
  state<S = unknown>(projection: string, options?: { at?: StateAt }): Promise<S>;
  state(projection: ProjectionRef<E>, options?: { at?: StateAt }): Promise<unknown> {
    return this.call(() => this.remote.state(projectionName(projection), options));
  }

  conflicts(query?: { stream?: string }): Promise<Conflict<E>[]> {
    return this.call(() => this.remote.conflicts(query) as Promise<Conflict<E>[]>);
  }

  query<S, Q extends ProjectionQueries<S>, N extends QueryName<Q>>(
    projection: Projection<S, E, Q>,
    name: N,
    ...args: QueryArgs<Q, N>
  ): Promise<QueryResult<Q, N>>;
  query(projection: string, name: string, ...args: unknown[]): Promise<unknown>;
  query(projection: ProjectionRef<E>, name: string, ...args: unknown[]): Promise<unknown> {
    return this.call(() => this.remote.query(projectionName(projection), name, args));
  }

  rebuild(
    projection: ProjectionRef<E>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<void> {
    return this.call(() =>
      this.remote.rebuild(
        projectionName(projection),
        onProgress === undefined
          ? undefined
          : proxy(([done, total]: [number, number]) => onProgress(done, total)),
      ),
    );
  }

  inspect(projection: ProjectionRef<E>): Promise<ProjectionInfo> {
    return this.call(() => this.remote.inspect(projectionName(projection)));
  }

  shred(stream: string): Promise<void> {
    return this.call(() => this.remote.shred(stream));
  }

  subscribe(listener: (events: StoredEvent<E>[]) => void, query?: SubscribeQuery<E>): () => void {
    if (typeof listener !== 'function') throw new ValidationError('listener', 'must be a function');
    return this.listen(
      (guarded) =>
        this.remote.subscribe(
          proxy((events: StoredEvent<unknown>[]) => guarded(events as StoredEvent<E>[])),
          query,
        ),
      listener,
    );
  }

  watch<S, Q extends ProjectionQueries<S> = ProjectionQueries<S>>(
    projection: Projection<S, E, Q>,
    listener: (state: S) => void,
  ): () => void;
  watch<S = unknown>(projection: string, listener: (state: S) => void): () => void;
  watch(projection: ProjectionRef<E>, listener: (state: unknown) => void): () => void {
    if (typeof listener !== 'function') throw new ValidationError('listener', 'must be a function');
    const name = projectionName(projection);
    return this.listen(
      (guarded) =>
        this.remote.watch(
          name,
          proxy((state: unknown) => guarded(state)),
        ),
      listener,
    );
  }

  on(event: 'storage', listener: (notice: StorageNotice) => void): () => void {
    if (event !== 'storage') throw new ValidationError('event', 'must be "storage"');
    if (typeof listener !== 'function') throw new ValidationError('listener', 'must be a function');
    return this.listen(
      (guarded) => this.remote.onStorage(proxy((notice: StorageNotice) => guarded(notice))),
      listener,
    );
  }

  /** Registers a listener remotely; removal works before registration finished (invariant 2). */
  private listen<T>(
    register: (guarded: (value: T) => void) => Promise<number>,
    listener: (value: T) => void,
  ): () => void {
    if (this.closed) throw new StoreClosedError();
    let active = true;
    const handle = register((value) => {
      if (active && !this.closed) listener(value);
    });
    handle.catch((error: unknown) => {
      // Like a failing listener in-process: surfaced, never swallowed.
      if (active && !this.closed)
        queueMicrotask(() => {
          throw error;
        });
    });
    return () => {
      if (!active) return;
      active = false;
      void handle
        .then((h) => (this.closed ? undefined : this.remote.unlisten(h)))
        .catch(() => undefined);
    };
  }

  private syncConnect(target: SyncTarget): SyncConnection {
    if (this.closed) throw new StoreClosedError();
    if (!('url' in target) || !isUrlList(target.url)) {
      throw new ValidationError(
        'target',
        'a Transport cannot cross a worker boundary: pass { url, token } or configure sync in serveStore',
      );
    }
    // An array crosses the boundary; a readonly one is copied to fit the wire type.
    const url = typeof target.url === 'string' ? target.url : [...target.url];
    const { token } = target;
    if (token !== undefined && typeof token !== 'string' && typeof token !== 'function') {
      throw new ValidationError('target.token', 'must be a string or a function');
    }
    const id =
      typeof token === 'function'
        ? // Lent to the worker as a comlink proxy, called there on every (re)connect (protocol.ts,
          // RemoteTokenSource); the worker releases it when the connection closes.
          this.remote.syncConnect(
            { url },
            proxy(() => token()),
          )
        : this.remote.syncConnect(token === undefined ? { url } : { url, token });
    id.catch(() => undefined);
    return {
      close: async () => {
        await this.remote.syncClose(await id);
      },
      status: () => ({ ...this.hostStatus.sync }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.remote.close();
    } finally {
      this.dispose();
    }
  }
}
