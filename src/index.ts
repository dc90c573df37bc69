/**
 * Chronicle: an offline-first event store for the browser.
 *
 * @example
 * import { openStore, defineProjection, memoryStorage } from '@chronicle-es/store';
 * type TodoEvents = { TodoAdded: { title: string }; TodoDone: { done: boolean } };
 * const open = defineProjection<number, TodoEvents>({ name: 'open', version: 1, initial: () => 0,
 *   apply: (n, e) => (e.type === 'TodoAdded' ? n + 1 : n) });
 * const store = await openStore<TodoEvents>({ name: 'app', storage: memoryStorage(),
 *   projections: [open] });
 * await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
 * await store.state(open); // 1, typed number
 */

import { createStore } from './store/create-store.ts';
import type { EventStore, StoreOptions } from './store/types.ts';
import { type SyncControllerOptions, syncFactory } from './sync/controller.ts';

export * from './client/index.ts';

export type {
  Aggregate,
  AggregateDefinition,
  AnyAggregate,
  CommandContext,
  CommandHandler,
  CommandHandlers,
  CommandInput,
  CommandName,
  CommandResult,
  Rejection,
} from './core/aggregate.ts';
export { COMMAND_META, defineAggregate, reject } from './core/aggregate.ts';
export type { ErrorCode, IdempotencyReason, SerializedError } from './core/errors.ts';
export {
  ChronicleError,
  CommandRejectedError,
  ConcurrencyError,
  HistoryUnavailableError,
  IdempotencyError,
  NotFoundError,
  ProjectionError,
  QuotaExceededError,
  SeqConflictError,
  StorageError,
  StoreClosedError,
  SyncError,
  UnreadableError,
  ValidationError,
} from './core/errors.ts';
export type {
  EventsOf,
  EventType,
  ExpectedVersion,
  JsonObject,
  JsonPrimitive,
  JsonValue,
  LooseEvents,
  NewEvent,
  NewEventBase,
  NewEventOf,
  StoredEvent,
  StoredEventBase,
  StoredEventOf,
} from './core/events.ts';
export type { KeyMaterial } from './core/keyring.ts';
export {
  decodeEncryptionKey,
  encodeEncryptionKey,
  generateEncryptionKey,
  keyFromPassphrase,
} from './core/keyring.ts';
export type {
  Projection,
  ProjectionDefinition,
  ProjectionQueries,
  ProjectionQuery,
} from './core/projection.ts';
export { defineProjection } from './core/projection.ts';
export type { RetainPolicy } from './core/retention.ts';
export type { ProjectionVersion, SpaceSnapshot } from './core/space-snapshot.ts';
export type {
  ConnectionStatus,
  RefusedEvent,
  RejectedAppend,
  RejectedCommand,
  SyncApi,
  SyncConnection,
  SyncState,
  SyncStatus,
  SyncTarget,
  Transport,
  TransportCloseInfo,
} from './core/sync-types.ts';
export type { Upcaster } from './core/upcast.ts';
export type { EventLimits } from './core/validate.ts';
export type { Durability, EventLog, StorageAdapter } from './storage/adapter.ts';
export { indexedDbStorage } from './storage/indexeddb.ts';
export { memoryStorage } from './storage/memory.ts';
export type { EncryptionOptions, UnreadableStatus } from './store/encryption-types.ts';
export type { JoinMode } from './store/join.ts';
export type {
  AnyProjection,
  ProjectionRef,
  QueryArgs,
  QueryName,
  QueryResult,
} from './store/typed.ts';
export type {
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
  StoreOptions,
  StreamAppend,
  SubscribeQuery,
} from './store/types.ts';
export type { SyncControllerOptions } from './sync/controller.ts';
export type { BroadcastChannelTransportOptions } from './sync/transports/broadcast-channel.ts';
export { broadcastChannelTransport } from './sync/transports/broadcast-channel.ts';
export type {
  MemoryFaults,
  MemoryTransport,
  MemoryTransportOptions,
} from './sync/transports/memory.ts';
export { memoryTransportPair } from './sync/transports/memory.ts';
export type {
  WebSocketTransport,
  WebSocketTransportOptions,
} from './sync/transports/websocket.ts';
export { webSocketTransport } from './sync/transports/websocket.ts';

/** openStore's options: the store's, plus how its sync connections behave. */
export type OpenStoreOptions<E = unknown> = StoreOptions<E> & {
  /** Backoff, limits, and the WebSocket class for `sync.connect({ url })` where there is no global one (Node 20). */
  syncOptions?: SyncControllerOptions;
};

/**
 * Opens an event store in this thread: in Node, in tests, or inside the worker (see
 * `@chronicle-es/store/worker`). The default storage is IndexedDB under `options.name`.
 *
 * @example
 * const store = await openStore({ name: 'app', storage: memoryStorage() });
 * const [a, b] = memoryTransportPair();
 * store.sync.connect(a); // and another store connects b
 */
export function openStore<E = unknown>(options: OpenStoreOptions<E>): Promise<EventStore<E>> {
  const { syncOptions, ...storeOptions } = options;
  return createStore<E>({
    ...storeOptions,
    syncFactory: storeOptions.syncFactory ?? syncFactory(syncOptions),
  });
}
