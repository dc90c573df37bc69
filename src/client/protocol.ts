/// <reference lib="dom" preserve="true" />
// Declarations name the DOM's Worker, MessagePort and IndexedDB types: a Node project whose
// tsconfig leaves the DOM library out still compiles against them.
/**
 * The worker boundary's wire types, in one place (comlink's protocol.ts is the model).
 *
 * Two layers cross it:
 * - Control messages on the raw endpoint (the Worker, or the SharedWorker's port): a
 *   discriminated union on `type`, always prefixed `chronicle:` so that they are recognisable
 *   in logs and never confused with comlink's own messages.
 * - The store itself, exposed with comlink over a MessageChannel that the client sends in its
 *   `chronicle:connect` message: `StoreEndpoint`, the EventStore methods in their boundary form
 *   (listeners are comlink proxies, unsubscribe functions are numeric handles).
 *
 * Invariants:
 * 1. Every value that crosses is structured-cloneable, a transferred MessagePort, or a comlink
 *    proxy; no function crosses unproxied.
 * 2. A client that goes away without calling close() is detected by the Web Lock it holds
 *    (`lock`): the worker waits for that lock, and gets it only when the page is gone.
 * 3. PROTOCOL_VERSION changes whenever a message or the endpoint changes shape; a worker and a
 *    page of different versions refuse each other with a clear error instead of misbehaving.
 */
import type { SerializedError } from '../core/errors.ts';
import type { JsonValue, NewEvent, StoredEvent } from '../core/events.ts';
import type { SyncStatus } from '../core/sync-types.ts';
import type {
  AppendOptions,
  Conflict,
  ExecuteOptions,
  ProjectionInfo,
  ReadQuery,
  ReceivedEvents,
  ReceiveQuery,
  StateAt,
  StorageNotice,
  StreamAppend,
  SubscribeQuery,
} from '../store/types.ts';

/**
 * 3: syncConnect takes a token function the page lends the worker (RemoteTokenSource).
 * 4: appendMany.
 * 5: execute (an aggregate's command, by the aggregate's name).
 * 6: inspect (a projection's version and snapshots).
 * 7: shred (crypto-shredding a stream).
 */
export const PROTOCOL_VERSION = 7;

/** Where the store runs: one SharedWorker for every tab, or a dedicated worker per tab. */
export type HostMode = 'shared' | 'dedicated';

/** Why the worker's database connection was closed from outside (storage/adapter.ts). */
export type ClosedReason = 'versionchange' | 'deleted' | 'unexpected';

/** What a client learns of its worker; pushed to every client whenever it changes. */
export interface HostStatus {
  mode: HostMode;
  /**
   * 'open' while the worker holds its database; 'closed' once another tab upgraded or deleted it
   * (`closedReason`): every call then fails with a VERSION_CHANGE error, reload to recover.
   */
  storage: 'open' | 'closed';
  closedReason?: ClosedReason;
  /** Whether this worker holds the Web Locks leadership that runs network sync. */
  leader: boolean;
  /** The combined sync status of this worker's store. */
  sync: SyncStatus;
}

export interface HelloReply {
  version: number;
  replicaId: string;
  status: HostStatus;
}

/** Messages a client posts on the raw endpoint. */
export type ClientMessage =
  | {
      type: 'chronicle:connect';
      version: number;
      /** The comlink channel for this client's StoreEndpoint (transferred). */
      port: MessagePort;
      /** A Web Lock the client holds until it goes away (invariant 2); absent without Web Locks. */
      lock?: string;
    }
  | {
      /** For tests and diagnostics: the worker answers on `reply` with a StatsMessage. */
      type: 'chronicle:stats';
      reply: MessagePort;
    };

/** Messages the worker posts back. */
export type HostMessage =
  | { type: 'chronicle:stats'; connections: number; listeners: number; leader: boolean }
  | { type: 'chronicle:refused'; error: SerializedError };

/** A listener handed to the worker as a comlink proxy: calling it there returns a promise. */
export type RemoteListener<T> = (value: T) => unknown;

/**
 * A token function the page lends the worker, as a comlink proxy: the worker calls it on every
 * (re)connect, so the page can refresh a token before it expires. Calling it in the worker
 * returns a promise, whatever the page's function returns. It travels as syncConnect's own
 * argument: comlink proxies only arguments, never a function inside an object.
 */
export type RemoteTokenSource = () => Promise<unknown>;

/** The sync targets that can cross a thread: a server address with a string token. */
export interface RemoteSyncTarget {
  /** One server, or several sharing one database (failover: SyncTarget). */
  url: string | string[];
  token?: string;
}

/**
 * The store as the worker exposes it to one client (comlink over that client's port). Exactly
 * the EventStore methods; `unlisten` is the boundary form of the functions that subscribe and
 * watch return, `syncConnect`/`syncClose` of `sync.connect()` and `SyncConnection.close()`,
 * `localGet`/`localSet` of `local.get()` and `local.set()`.
 */
export interface StoreEndpoint {
  hello(onStatus: RemoteListener<HostStatus>): Promise<HelloReply>;
  append(
    stream: string,
    events: NewEvent<unknown> | NewEvent<unknown>[],
    options?: AppendOptions,
  ): Promise<StoredEvent<unknown>[]>;
  appendMany(appends: StreamAppend[]): Promise<StoredEvent<unknown>[][]>;
  execute(
    aggregate: string,
    stream: string,
    command: string,
    input: unknown,
    options?: ExecuteOptions,
  ): Promise<StoredEvent<unknown>[]>;
  read(query?: ReadQuery): Promise<StoredEvent<unknown>[]>;
  readSince(position: number, query?: ReceiveQuery): Promise<ReceivedEvents<unknown>>;
  localGet(key: string): Promise<JsonValue | undefined>;
  localSet(key: string, value: JsonValue): Promise<void>;
  subscribe(
    listener: RemoteListener<StoredEvent<unknown>[]>,
    query?: SubscribeQuery,
  ): Promise<number>;
  watch(projection: string, listener: RemoteListener<unknown>): Promise<number>;
  /** store.on('storage', listener). */
  onStorage(listener: RemoteListener<StorageNotice>): Promise<number>;
  unlisten(handle: number): Promise<void>;
  state(projection: string, options?: { at?: StateAt }): Promise<unknown>;
  conflicts(query?: { stream?: string }): Promise<Conflict<unknown>[]>;
  query(projection: string, name: string, args: unknown[]): Promise<unknown>;
  rebuild(projection: string, onProgress?: RemoteListener<[number, number]>): Promise<void>;
  inspect(projection: string): Promise<ProjectionInfo>;
  shred(stream: string): Promise<void>;
  /** `tokenSource`, when given, is called for a token on every (re)connect (and `target.token` is ignored). */
  syncConnect(target: RemoteSyncTarget, tokenSource?: RemoteTokenSource): Promise<number>;
  syncClose(connection: number): Promise<void>;
  /** Ends this client's session: its listeners are released; the store closes with its last client. */
  close(): Promise<void>;
}

/** A sync target's `url` as it may cross the boundary: a string, or a non-empty list of them. */
export function isUrlList(value: unknown): value is string | readonly string[] {
  if (typeof value === 'string') return true;
  return Array.isArray(value) && value.length > 0 && value.every((url) => typeof url === 'string');
}

export function isClientMessage(value: unknown): value is ClientMessage {
  if (value === null || typeof value !== 'object') return false;
  const type = (value as { type?: unknown }).type;
  return type === 'chronicle:connect' || type === 'chronicle:stats';
}

export function isHostMessage(value: unknown): value is HostMessage {
  if (value === null || typeof value !== 'object') return false;
  const type = (value as { type?: unknown }).type;
  return type === 'chronicle:stats' || type === 'chronicle:refused';
}

/**
 * For tests and diagnostics: asks a worker (or a SharedWorker's port) how many clients and
 * listeners it holds. Works on a fresh SharedWorker port too, so that a test can ask without
 * holding a client.
 */
export function requestStats(
  endpoint: Pick<MessagePort, 'postMessage'> | Pick<Worker, 'postMessage'>,
): Promise<Extract<HostMessage, { type: 'chronicle:stats' }>> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port1.onmessage = (event: MessageEvent<unknown>) => {
      const data = event.data;
      if (isHostMessage(data) && data.type === 'chronicle:stats') {
        port1.close();
        resolve(data);
      }
    };
    const message: ClientMessage = { type: 'chronicle:stats', reply: port2 };
    endpoint.postMessage(message, [port2]);
  });
}
