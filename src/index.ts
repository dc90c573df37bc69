/**
 * Chronicle: an offline-first event store for the browser.
 *
 * @example
 * import { openStore, defineProjection, memoryStorage } from 'chronicle';
 * const count = defineProjection({ name: 'count', version: 1, initial: () => 0, apply: (n) => n + 1 });
 * const store = await openStore({ name: 'app', storage: memoryStorage(), projections: [count] });
 * await store.append('todo-1', { type: 'added', data: { title: 'Milk' } });
 * await store.state('count'); // 1
 */

import { createStore } from './store/store.ts';
import type { EventStore, StoreOptions } from './store/types.ts';

export * from './client/index.ts';

export type { ErrorCode, IdempotencyReason, SerializedError } from './core/errors.ts';
export {
  ChronicleError,
  ConcurrencyError,
  IdempotencyError,
  NotFoundError,
  ProjectionError,
  QuotaExceededError,
  StorageError,
  StoreClosedError,
  SyncError,
  ValidationError,
} from './core/errors.ts';
export type {
  ExpectedVersion,
  JsonObject,
  JsonPrimitive,
  JsonValue,
  NewEvent,
  StoredEvent,
} from './core/events.ts';
export type { Projection, ProjectionDefinition, ProjectionQuery } from './core/projection.ts';
export { defineProjection } from './core/projection.ts';
export type {
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
export type {
  AppendOptions,
  Conflict,
  EventStore,
  ReadQuery,
  StateAt,
  StoreOptions,
  SubscribeQuery,
} from './store/types.ts';

/**
 * Opens an event store in this thread: in Node, in tests, or inside the worker (see
 * `chronicle/worker`). The default storage is IndexedDB under `options.name`.
 */
export function openStore<E = unknown>(options: StoreOptions<E>): Promise<EventStore<E>> {
  return createStore<E>(options);
}
