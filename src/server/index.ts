/**
 * `@chronicle-es/store/server`: the Node sync server. A server is a peer that persists: it runs
 * the same sync session as a client, over one log per space. Its drivers (better-sqlite3, pg, ws)
 * are optional peer dependencies, loaded when first used (peers.ts).
 */
export { MissingDependencyError } from '../core/errors.ts';
export type { ArchiveCheck, ArchiveFailure } from './archive-files.ts';
export {
  createToken,
  type Scope,
  type TokenClaims,
  type TokenOptions,
  verifyToken,
} from './auth.ts';
export type { AppTokenVerifier, AuthOptions } from './authenticator.ts';
export type { CompactionOptions, PostgresCompactionOptions } from './compaction-options.ts';
export type {
  JwtAuthOptions,
  JwtPayload,
  VerifiedClaims,
} from './jwt-options.ts';
export { DEFAULT_SERVER_LIMITS, type ServerLimits } from './limits.ts';
export {
  type LogEntry,
  type PublishStatus,
  type ServerLogger,
  silentLogger,
  stderrLogger,
} from './metrics.ts';
export { type PostgresStorageOptions, postgresStorage } from './postgres.ts';
export {
  decodeToken as decodeNatsToken,
  type NatsSinkOptions,
  natsSink,
} from './publish-nats.ts';
export {
  DEFAULT_RABBITMQ_STREAM,
  RabbitmqSinkError,
  type RabbitmqSinkOptions,
  rabbitmqSink,
} from './publish-rabbitmq.ts';
export type { BrokerSink, PublishedEvent } from './publish-sink.ts';
export { type SinkUrlOptions, sinkFromUrl } from './publish-sinks.ts';
export type { PublishOptions } from './publisher.ts';
export {
  createSyncServer,
  DEFAULT_SPACE,
  type SyncServer,
  type SyncServerOptions,
} from './server.ts';
export type { SnapshotSource } from './snapshot-source.ts';
export { type SnapshotOptions, Snapshotter } from './snapshotter.ts';
export { type SqliteStorageOptions, sqliteStorage } from './sqlite.ts';
export type {
  ArchiveOptions,
  ArchiveReport,
  CompactionReport,
  EventOrigin,
  OriginCheck,
  PublisherLock,
  ServerStorage,
  SnapshotStore,
  SpaceHead,
  SpaceLog,
  StoredSnapshotMeta,
} from './storage.ts';
