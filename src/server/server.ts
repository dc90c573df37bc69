/**
 * The sync server: an HTTP server that authenticates WebSocket upgrades, then runs one peer
 * session per connection on the log of the token's space. A server is a peer that persists.
 *
 * Invariants:
 * 1. Authentication happens on the HTTP upgrade request, before the upgrade completes: a missing,
 *    forged or expired token gets 401, a foreign Origin (when `origins` is set) 403, and no
 *    WebSocket or session is ever created for them.
 * 2. A connection is bound to the one space its token names; nothing else is reachable from it.
 * 3. Request headers are bounded in size, count and time before any of our code runs (node's
 *    maxHeaderSize → 431, a count check → 431, headersTimeout): huge or endless upgrades cost
 *    little and never take the process down.
 * 4. close() stops accepting, lets in-flight commits finish (their acks go out), closes every
 *    socket with 1001, then closes the storage. Nothing is acknowledged that was not committed.
 */
import { createServer, type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { SyncError } from '../core/errors.ts';
import { CloseCode } from '../sync/protocol.ts';
import { verifyToken } from './auth.ts';
import { Connection, type ConnectionClaims } from './connection.ts';
import { resolveLimits, type ServerLimits } from './limits.ts';
import {
  type LogEntry,
  makeLog,
  type ServerLogger,
  ServerMetrics,
  stderrLogger,
} from './metrics.ts';
import { loadWs } from './peers.ts';
import type { ServerStorage } from './storage.ts';

/** The space every connection uses when auth is disabled. */
export const DEFAULT_SPACE = 'default';

export interface SyncServerOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  storage: ServerStorage;
  /** `false` disables authentication: one default space, full scope (development only). */
  auth: { secret: string } | false;
  limits?: Partial<ServerLimits>;
  /** Allowed `Origin` values; when set, an upgrade from another origin gets 403. */
  origins?: string[];
  /** Receives one structured entry per connection event. Default: JSON lines on stderr. */
  log?: ServerLogger;
  /** Wall clock (ms), injectable for tests. */
  now?: () => number;
}

export interface SyncServer {
  /** `ws://host:port` */
  readonly url: string;
  readonly port: number;
  readonly metrics: ServerMetrics;
  /** Open connections. */
  connectionCount(): number;
  close(): Promise<void>;
}

class UpgradeRefusal extends Error {
  readonly status: number;
  readonly code: string;
  readonly reason: string | undefined;

  constructor(status: number, code: string, message: string, reason?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const match = /^Bearer[ \t]+(\S+)$/i.exec(auth);
    if (match) return match[1];
  }
  try {
    return new URL(req.url ?? '/', 'http://localhost').searchParams.get('token') ?? undefined;
  } catch {
    return undefined;
  }
}

/** Writes an HTTP error on a socket that was never upgraded, then closes it. */
function writeRefusal(socket: Duplex, refusal: UpgradeRefusal): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Starts a sync server.
 *
 * @example
 * const server = await createSyncServer({ storage: sqliteStorage('./data/chronicle.sqlite'), auth: { secret } });
 * console.log(server.url); // ws://127.0.0.1:54321
 */
export async function createSyncServer(options: SyncServerOptions): Promise<SyncServer> {
  const { WebSocketServer } = loadWs();
  const limits = resolveLimits(options.limits);
  const now = options.now ?? Date.now;
  const log = makeLog(options.log ?? stderrLogger);
  const metrics = new ServerMetrics();
  const storage = options.storage;
  const auth = options.auth;
  if (auth !== false && (typeof auth.secret !== 'string' || auth.secret.length === 0)) {
    throw new TypeError('auth.secret must be a non-empty string (or pass auth: false)');
  }
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

  const http: Server = createServer({ maxHeaderSize: limits.maxHeaderBytes }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(closing ? 503 : 200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ status: closing ? 'closing' : 'ok', connections: connections.size }),
      );
    } else if (req.method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(metrics.render());
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'not found' } }));
    }
  });
  // One header more than allowed is kept so that "too many" can be told from "exactly enough".
  http.maxHeadersCount = limits.maxHeadersCount + 1;
  http.headersTimeout = limits.headersTimeoutMs;
  http.requestTimeout = Math.max(limits.headersTimeoutMs, 30_000);
  http.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Headers past maxHeaderSize (a huge Sec-WebSocket-Protocol, thousands of headers) land here
    // before any upgrade handling (invariant 3). Answer and drop the socket; never crash.
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 408
          : 400;
    metrics.refused(status);
    if (!socket.destroyed && socket.writable) {
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy();
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });

  const authenticate = (req: IncomingMessage): ConnectionClaims => {
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
    if (auth === false) return { space: DEFAULT_SPACE, sub: 'anonymous', scope: ['read', 'write'] };
    try {
      return verifyToken(auth.secret, tokenOf(req), now());
    } catch (error) {
      if (error instanceof SyncError) {
        throw new UpgradeRefusal(401, 'UNAUTHORIZED', error.message, String(error.details.reason));
      }
      throw error;
    }
  };

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A reset from the client must never become an uncaught 'error'.
    socket.on('error', () => socket.destroy());
    const remote = req.socket.remoteAddress;
    let claims: ConnectionClaims;
    try {
      if (closing) throw new UpgradeRefusal(503, 'UNAVAILABLE', 'the server is shutting down');
      claims = authenticate(req);
      if (connections.size >= limits.maxConnections) {
        throw new UpgradeRefusal(503, 'LIMIT_EXCEEDED', 'too many connections', 'maxConnections');
      }
    } catch (error) {
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
      return;
    }
    const space = claims.space;
    const overSpaceLimit = (perSpace.get(space) ?? 0) >= limits.maxConnectionsPerSpace;
    perSpace.set(space, (perSpace.get(space) ?? 0) + 1);
    const opening = overSpaceLimit ? Promise.resolve(undefined) : storage.openSpace(space);
    opening.then(
      (spaceLog) => {
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
  });

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

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `ws://${host}:${address.port}`;
  log({ level: 'info', event: 'listening', url, storage: storage.name, auth: auth !== false });

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    closing = true;
    clearInterval(heartbeat);
    clearInterval(ackCheck);
    const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
    http.closeIdleConnections();
    // Let commits in flight finish, then one turn for their acks to be sent (invariant 4).
    while (inflight.size > 0) await Promise.allSettled([...inflight]);
    await new Promise((resolve) => setImmediate(resolve));
    const open = [...connections];
    for (const connection of open) connection.end(CloseCode.goingAway, 'server shutting down');
    await Promise.all(open.map((c) => c.closed()));
    wss.close();
    await stopped;
    await storage.close();
    log({ level: 'info', event: 'closed', url });
  };

  return {
    url,
    port: address.port,
    metrics,
    connectionCount: () => connections.size,
    close() {
      closed ??= close();
      return closed;
    },
  };
}

export type { LogEntry };
