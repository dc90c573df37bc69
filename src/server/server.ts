/**
 * The sync server: authenticates WebSocket upgrades, then runs one peer session per connection
 * on the log of the token's space. A server is a peer that persists. It opens its own HTTP port,
 * or attaches to an app's Node HTTP server (Express, Fastify, plain node:http) on one path.
 *
 * Invariants:
 * 1. Authentication happens on the HTTP upgrade request, before the upgrade completes: a missing,
 *    forged or expired token gets 401, a foreign Origin (when `origins` is set) 403, and no
 *    WebSocket or session is ever created for them.
 * 2. A connection is bound to the one space its token names; nothing else is reachable from it.
 * 3. Request headers are bounded before any of our code runs (http.ts, 1).
 * 4. close() stops accepting, lets in-flight commits finish (their acks go out), closes every
 *    socket with 1001, then closes the storage. Nothing is acknowledged that was not committed.
 * 5. Attached (`server`), we handle only upgrades whose path is `path`: other requests and
 *    upgrades are the app's, untouched (not even answered). close() detaches and leaves the
 *    app's server open. `/healthz` and `/metrics` are not served there: the app mounts them
 *    (SyncServer.metrics.render(), connectionCount()) where it wants.
 */

import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { SyncError } from '../core/errors.ts';
import { CloseCode } from '../sync/protocol.ts';
import { type AuthOptions, DEFAULT_SPACE, makeAuthenticator } from './authenticator.ts';
import { Connection, type ConnectionClaims } from './connection.ts';
import { createStandaloneServer, pathOf, tokenOf, UpgradeRefusal, writeRefusal } from './http.ts';
import { resolveLimits, type ServerLimits } from './limits.ts';
import {
  type LogEntry,
  makeLog,
  type ServerLogger,
  ServerMetrics,
  stderrLogger,
} from './metrics.ts';
import { loadWs } from './peers.ts';
import { Publisher, type PublishOptions } from './publisher.ts';
import { type SnapshotOptions, Snapshotter } from './snapshotter.ts';
import type { ServerStorage } from './storage.ts';
import { perMessageDeflateOf, type WireCompressionOptions } from './wire-compression.ts';

export { DEFAULT_SPACE };

export interface SyncServerOptions {
  /** Default 0: a free port. Not with `server`. */
  port?: number;
  /** Default '127.0.0.1'. Not with `server`. */
  host?: string;
  /**
   * An app's Node HTTP server to attach to instead of opening a port (Express: the value of
   * `app.listen()`; Fastify: `fastify.server`). Requires `path` (invariant 5).
   */
  server?: Server;
  /**
   * The path of sync upgrades (e.g. '/sync'). Required with `server`; standalone, upgrades to
   * any other path get 404 (default: every path).
   */
  path?: string;
  storage: ServerStorage;
  /**
   * `{ secret }`: createToken's tokens. `{ jwt }`: standard JWTs (HS256; RS256, ES256, EdDSA
   * from a key or a JWKS URL). `{ verifyToken }`: the app's own check. `false`: no
   * authentication, one default space, full scope (development only).
   */
  auth: AuthOptions;
  limits?: Partial<ServerLimits>;
  /** Allowed `Origin` values; when set, an upgrade from another origin gets 403. */
  origins?: string[];
  /** Receives one structured entry per connection event. Default: JSON lines on stderr. */
  log?: ServerLogger;
  /** Wall clock (ms), injectable for tests. */
  now?: () => number;
  /**
   * Tamper evidence (core/integrity.ts): every event a client sends is verified before it is
   * stored, and one whose signature or chain does not hold is refused (TAMPERED). Default true:
   * an unsigned event is refused too; false takes unsigned events (clients with signing off).
   */
  requireSignatures?: boolean;
  /**
   * Publish every space's log to a message broker (publisher.ts): `{ sink: natsSink({ url }) }`.
   * Off by default. The server closes the sink when it closes.
   */
  publish?: PublishOptions;
  /**
   * permessage-deflate on connections whose client offers it (wire-compression.ts): `true` for
   * the defaults, or its options. Off by default.
   */
  wireCompression?: boolean | WireCompressionOptions;
  /**
   * Binary frames (sync/binary-frame.ts, protocol invariant 11): the server's hello offers them,
   * and a client that offers them too gets its batches with signatures, link hashes and sealed
   * data as bytes, and may send its own so. Default true; false keeps every connection text.
   */
  binaryFrames?: boolean;
  /**
   * Server snapshots (snapshotter.ts; docs/storage-growth.md part 4): the app's projections
   * (and upcasters, if its store has them), folded beside the sessions; every `every` events
   * (default 10,000) each space's states are stored, and a device whose projections' names and
   * versions match joins from them instead of replaying the log. Off by default. The
   * projections are the app's code, run on the server: register only code you trust.
   */
  snapshots?: SnapshotOptions;
}

export interface SyncServer {
  /** `ws://host:port`, with the path when one is set (attached: the app's server's address). */
  readonly url: string;
  readonly port: number;
  readonly metrics: ServerMetrics;
  /** Open connections. */
  connectionCount(): number;
  /** Stops serving (invariant 4); an app's server it is attached to stays open (invariant 5). */
  close(): Promise<void>;
}

function urlOf(http: Server, path: string | undefined): { url: string; port: number } {
  const address = http.address() as AddressInfo | string | null;
  if (address === null || typeof address === 'string') {
    return { url: `ws://localhost${path ?? ''}`, port: 0 };
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `ws://${host}:${address.port}${path ?? ''}`, port: address.port };
}

/**
 * Starts a sync server on its own port, or attached to an app's HTTP server.
 *
 * @example
 * const server = await createSyncServer({ storage: sqliteStorage('./data/chronicle.sqlite'), auth: { secret } });
 * console.log(server.url); // ws://127.0.0.1:54321
 *
 * @example
 * const app = express(); const http = app.listen(3000);
 * const sync = await createSyncServer({ server: http, path: '/sync', storage, auth: { jwt: { jwksUrl } } });
 */
export async function createSyncServer(options: SyncServerOptions): Promise<SyncServer> {
  const { WebSocketServer } = loadWs();
  const limits = resolveLimits(options.limits);
  const now = options.now ?? Date.now;
  const log = makeLog(options.log ?? stderrLogger);
  const metrics = new ServerMetrics();
  const storage = options.storage;
  const attached = options.server;
  const path = options.path;
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw new TypeError("path must start with '/'");
  }
  if (attached !== undefined && path === undefined) {
    throw new TypeError("attaching to a server needs a path, e.g. path: '/sync'");
  }
  if (attached !== undefined && (options.port !== undefined || options.host !== undefined)) {
    throw new TypeError('port and host belong to the attached server: pass server or port/host');
  }
  const authenticate = await makeAuthenticator(options.auth, now);
  const origins = options.origins === undefined ? undefined : new Set(options.origins);
  const connections = new Set<Connection>();
  /** Connections per space, counting upgrades still opening the space (reserved slots). */
  const perSpace = new Map<string, number>();
  const inflight = new Set<Promise<unknown>>();
  let closing = false;

  const release = (space: string) => {
    const n = (perSpace.get(space) ?? 1) - 1;
    if (n <= 0) perSpace.delete(space);
    else perSpace.set(space, n);
  };

  // Beside the sessions, never inside an ingest (publisher.ts invariant 4).
  const publisher =
    options.publish === undefined ? undefined : new Publisher(storage, options.publish, { log });
  metrics.publish = publisher;
  // Beside the sessions too (snapshotter.ts invariant 1).
  const snapshotter =
    options.snapshots === undefined
      ? undefined
      : new Snapshotter(storage, options.snapshots, { log, now });

  const http =
    attached ??
    createStandaloneServer(limits, {
      metrics,
      health: () => ({ closing, connections: connections.size }),
    });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes,
    perMessageDeflate: perMessageDeflateOf(options.wireCompression),
    clientTracking: false,
  });

  /** The checks before the token (invariant 1, http.ts 1): cheap, synchronous. */
  const screen = (req: IncomingMessage): void => {
    if (req.rawHeaders.length / 2 > limits.maxHeadersCount) {
      throw new UpgradeRefusal(431, 'LIMIT_EXCEEDED', 'too many request headers');
    }
    if (origins !== undefined) {
      const origin = req.headers.origin;
      // Browsers always send Origin; a client without one is not a browser page, and Origin
      // checks only protect browser users (anyone else can forge the header).
      if (origin !== undefined && !origins.has(origin)) {
        throw new UpgradeRefusal(403, 'FORBIDDEN', 'origin not allowed', 'origin');
      }
    }
  };

  const admit = async (req: IncomingMessage): Promise<ConnectionClaims> => {
    if (closing) throw new UpgradeRefusal(503, 'UNAVAILABLE', 'the server is shutting down');
    screen(req);
    let claims: ConnectionClaims;
    try {
      claims = await authenticate(tokenOf(req));
    } catch (error) {
      if (error instanceof SyncError) {
        const reason = String(error.details.reason);
        // A key set that cannot be fetched is ours to fix, not the client's token (jwt.ts, 3).
        if (reason === 'keys-unavailable') {
          throw new UpgradeRefusal(503, 'UNAVAILABLE', error.message, reason);
        }
        throw new UpgradeRefusal(401, 'UNAUTHORIZED', error.message, reason);
      }
      throw error;
    }
    if (closing) throw new UpgradeRefusal(503, 'UNAVAILABLE', 'the server is shutting down');
    if (connections.size >= limits.maxConnections) {
      throw new UpgradeRefusal(503, 'LIMIT_EXCEEDED', 'too many connections', 'maxConnections');
    }
    return claims;
  };

  const refuse = (socket: Duplex, error: unknown, remote: string | undefined): void => {
    const refusal =
      error instanceof UpgradeRefusal
        ? error
        : new UpgradeRefusal(500, 'INTERNAL', 'internal error');
    metrics.refused(refusal.status);
    metrics.error(refusal.code);
    log({
      level: 'warn',
      event: refusal.status === 401 || refusal.status === 403 ? 'auth_failure' : 'refused',
      status: refusal.status,
      code: refusal.code,
      reason: refusal.reason ?? refusal.message,
      remote,
    });
    writeRefusal(socket, refusal);
  };

  const serve = (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    claims: ConnectionClaims,
    remote: string | undefined,
  ): void => {
    const space = claims.space;
    const overSpaceLimit = (perSpace.get(space) ?? 0) >= limits.maxConnectionsPerSpace;
    perSpace.set(space, (perSpace.get(space) ?? 0) + 1);
    const opening = overSpaceLimit ? Promise.resolve(undefined) : storage.openSpace(space);
    opening.then(
      (spaceLog) => {
        if (socket.destroyed) {
          release(space);
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          // An 'error' without a listener would crash the process (e.g. an oversized frame).
          ws.on('error', () => {});
          if (closing || spaceLog === undefined) {
            // Over the per-space limit, or shutting down while the space opened: the client
            // gets a readable reason, which a browser cannot get from an HTTP status.
            release(space);
            const code = closing ? 'UNAVAILABLE' : 'LIMIT_EXCEEDED';
            const message = closing
              ? 'the server is shutting down'
              : 'too many connections in this space';
            metrics.error(code);
            log({ level: 'warn', event: 'refused', code, reason: message, remote });
            ws.send(JSON.stringify({ type: 'error', code, message, fatal: true }));
            ws.close(closing ? CloseCode.goingAway : CloseCode.tryAgainLater, message);
            return;
          }
          metrics.connections += 1;
          metrics.connectionsTotal += 1;
          publisher?.watch(spaceLog);
          snapshotter?.watch(spaceLog);
          const connection = new Connection({
            ws,
            claims,
            space: spaceLog,
            limits,
            metrics,
            log,
            now,
            inflight,
            remote,
            requireSignatures: options.requireSignatures !== false,
            binaryFrames: options.binaryFrames !== false,
            ...(snapshotter === undefined ? {} : { snapshots: snapshotter }),
            onClosed: (c) => {
              connections.delete(c);
              metrics.connections -= 1;
              release(space);
            },
          });
          connections.add(connection);
        });
      },
      (error: unknown) => {
        release(space);
        metrics.error('STORAGE');
        log({ level: 'error', event: 'refused', code: 'STORAGE', reason: String(error), remote });
        writeRefusal(socket, new UpgradeRefusal(503, 'STORAGE', 'storage unavailable'));
      },
    );
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Attached: another path is the app's upgrade, left alone (invariant 5).
    if (path !== undefined && pathOf(req) !== path) {
      if (attached === undefined) {
        socket.on('error', () => socket.destroy());
        refuse(socket, new UpgradeRefusal(404, 'NOT_FOUND', 'not found'), req.socket.remoteAddress);
      }
      return;
    }
    // A reset from the client must never become an uncaught 'error'.
    socket.on('error', () => socket.destroy());
    const remote = req.socket.remoteAddress;
    admit(req).then(
      (claims) => {
        // The client may have gone while its token was checked.
        if (socket.destroyed) return;
        serve(req, socket, head, claims, remote);
      },
      (error: unknown) => refuse(socket, error, remote),
    );
  };
  http.on('upgrade', onUpgrade);

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, limits.heartbeatIntervalMs);
  heartbeat.unref();
  // Slow consumers are found within a quarter of maxAckWaitMs (connection.ts invariant 5).
  const ackCheck = setInterval(
    () => {
      const at = now();
      for (const connection of connections) connection.checkAcks(at);
    },
    Math.max(10, Math.min(1000, limits.maxAckWaitMs / 4)),
  );
  ackCheck.unref();

  if (attached === undefined) {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
  }
  const where = () => urlOf(http, path);
  publisher?.start();
  snapshotter?.start();
  // Kept for the `closed` entry: once the port is closed, it has no address to read.
  const listeningUrl = where().url;
  log({
    level: 'info',
    event: 'listening',
    url: listeningUrl,
    storage: storage.name,
    auth: options.auth !== false,
    attached: attached !== undefined,
  });

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    closing = true;
    clearInterval(heartbeat);
    clearInterval(ackCheck);
    // What is not published yet is published by the next start (publisher.ts invariant 5).
    const publisherClosed = publisher?.close();
    // A build in flight stops at its next page; the next start resumes (snapshotter.ts 3).
    const snapshotterClosed = snapshotter?.close();
    const stopped =
      attached === undefined
        ? new Promise<void>((resolve) => http.close(() => resolve()))
        : Promise.resolve();
    if (attached === undefined) http.closeIdleConnections();
    // Let commits in flight finish, then one turn for their acks to be sent (invariant 4).
    while (inflight.size > 0) await Promise.allSettled([...inflight]);
    await new Promise((resolve) => setImmediate(resolve));
    const open = [...connections];
    for (const connection of open) connection.end(CloseCode.goingAway, 'server shutting down');
    await Promise.all(open.map((c) => c.closed()));
    wss.close();
    await stopped;
    // Until here, an upgrade on our path was answered 503; from now on it is the app's.
    http.off('upgrade', onUpgrade);
    await publisherClosed;
    await snapshotterClosed;
    await storage.close();
    log({ level: 'info', event: 'closed', url: listeningUrl });
  };

  return {
    get url() {
      return where().url;
    },
    get port() {
      return where().port;
    },
    metrics,
    connectionCount: () => connections.size,
    close() {
      closed ??= close();
      return closed;
    },
  };
}

export type { LogEntry };
