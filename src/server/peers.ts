/**
 * The server's optional peer dependencies: better-sqlite3 (sqliteStorage), pg (postgresStorage),
 * ws (createSyncServer), jose (JWT verification), rabbitmq-stream-js-client (rabbitmqSink) and
 * the NATS client (natsSink: @nats-io/transport-node and @nats-io/jetstream). A front-end install
 * of the package has none
 * of them, so no server module imports one at load time: each is loaded here when first needed.
 *
 * Invariants:
 * 1. A peer that is not installed throws MissingDependencyError (code MISSING_DEPENDENCY) naming
 *    the package to install; any other failure to load it (a missing dependency of the peer, a
 *    native build for another Node version) is rethrown as it is, since installing the peer
 *    again would not be the fix.
 * 2. Peers load synchronously through require: sqliteStorage() and postgresStorage() return a
 *    storage, not a promise, and fail at the call. better-sqlite3, pg and ws are CommonJS; jose
 *    is an ES module without top-level await, which require loads on Node >= 20.19 (engines).
 *    The NATS packages ship CommonJS builds (their `main`); natsSink loads them at first use.
 * 3. A peer is loaded once per process (require's own cache).
 */
import { createRequire } from 'node:module';
import type * as NatsJetStream from '@nats-io/jetstream';
import type * as NatsTransport from '@nats-io/transport-node';
import type BetterSqlite3 from 'better-sqlite3';
import type * as Jose from 'jose';
import type Pg from 'pg';
import type * as RabbitmqStream from 'rabbitmq-stream-js-client';
import type * as Ws from 'ws';
import { isMissingModule, MissingDependencyError } from '../core/errors.ts';

export type PeerName =
  | 'better-sqlite3'
  | 'pg'
  | 'ws'
  | 'jose'
  | 'rabbitmq-stream-js-client'
  | '@nats-io/transport-node'
  | '@nats-io/jetstream';

type Loader = (name: PeerName) => unknown;

const nodeRequire = createRequire(import.meta.url);
const requireLoader: Loader = (name) => nodeRequire(name);
let loader: Loader = requireLoader;

/**
 * Test seam: load peers through `load` (a stand-in that throws as require does for a package
 * that is not installed), or through require again when `load` is undefined.
 */
export function setPeerLoader(load: Loader | undefined): void {
  loader = load ?? requireLoader;
}

/**
 * The module of the peer `name` (its CommonJS `module.exports`, or an ES module's namespace).
 * `neededBy` names the API that needs it, for the error. `T` is the caller's view of its type:
 * `requirePeer<typeof import('pg')>('pg', 'postgresStorage')`.
 */
export function requirePeer<T>(name: PeerName, neededBy: string): T {
  try {
    return loader(name) as T;
  } catch (error) {
    // Invariant 1: the peer itself is missing, not something it requires.
    if (isMissingModule(error, name)) throw new MissingDependencyError(name, neededBy);
    throw error;
  }
}

/** better-sqlite3's Database class, for sqliteStorage. */
export function loadSqlite(): typeof BetterSqlite3 {
  return requirePeer<typeof BetterSqlite3>('better-sqlite3', 'sqliteStorage');
}

/** The pg module (Pool, Client, DatabaseError), for postgresStorage. */
export function loadPg(): typeof Pg {
  return requirePeer<typeof Pg>('pg', 'postgresStorage');
}

/** The ws module (WebSocketServer), for createSyncServer. */
export function loadWs(): typeof Ws {
  return requirePeer<typeof Ws>('ws', 'createSyncServer');
}

/** The jose module, for verifying standard JWTs (auth.ts). */
export function loadJose(): typeof Jose {
  return requirePeer<typeof Jose>('jose', 'JWT verification');
}

/** The RabbitMQ stream protocol client (CommonJS), for rabbitmqSink (publish-rabbitmq.ts). */
export function loadRabbitmqStream(): typeof RabbitmqStream {
  return requirePeer<typeof RabbitmqStream>('rabbitmq-stream-js-client', 'rabbitmqSink');
}

/** The NATS client and its JetStream API, for natsSink (publish-nats.ts). */
export function loadNats(): { nats: typeof NatsTransport; jetstream: typeof NatsJetStream } {
  return {
    nats: requirePeer<typeof NatsTransport>('@nats-io/transport-node', 'natsSink'),
    jetstream: requirePeer<typeof NatsJetStream>('@nats-io/jetstream', 'natsSink'),
  };
}
