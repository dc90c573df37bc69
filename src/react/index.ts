/**
 * React hooks over an event store, for a store from openStore or connectStore alike:
 * useProjection, useQuery and useSyncStatus. Built on React's useSyncExternalStore over the
 * store's watch and sync status, so concurrent renders never tear, and a component renders once
 * per state the store emits that differs from the last (watch coalesces bursts of changes).
 *
 * React (19) is an optional peer dependency of the package: only this entry point imports it.
 */
export { useProjection, useQuery, useSyncStatus } from './hooks.ts';
export type {
  LooselyQueried,
  ProjectionLike,
  QueryArgs,
  QueryName,
  QueryResult,
  SyncingStore,
  WatchableStore,
} from './types.ts';
