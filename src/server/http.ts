/**
 * The HTTP side of the sync server: the standalone server with its operations routes and header
 * hardening, and what both modes (standalone, attached to an app's server) need of a request.
 *
 * Invariants:
 * 1. Request headers are bounded in size, count and time before any of our code runs (node's
 *    maxHeaderSize → 431, a count check → 431, headersTimeout): huge or endless upgrades cost
 *    little and never take the process down. Attached to an app's server, size and time are
 *    that server's settings; the count check still runs on every upgrade we handle.
 * 2. A refusal is a complete HTTP response on a socket that was never upgraded, then closed.
 */
import { createServer, type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerLimits } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';

export class UpgradeRefusal extends Error {
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

/** The request's path without its query, or undefined when the target cannot be parsed. */
export function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

/** The bearer token, or the `token` query parameter (browsers cannot set headers). */
export function tokenOf(req: IncomingMessage): string | undefined {
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

/** Writes an HTTP error on a socket that was never upgraded, then closes it (invariant 2). */
export function writeRefusal(socket: Duplex, refusal: UpgradeRefusal): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export interface StandaloneRoutes {
  metrics: ServerMetrics;
  /** Whether the server is shutting down, and how many connections it holds. */
  health(): { closing: boolean; connections: number };
}

/** The standalone server: `/healthz`, `/metrics`, 404 elsewhere, hardened headers (invariant 1). */
export function createStandaloneServer(limits: ServerLimits, routes: StandaloneRoutes): Server {
  const http = createServer({ maxHeaderSize: limits.maxHeaderBytes }, (req, res) => {
    const path = pathOf(req);
    if (req.method === 'GET' && path === '/healthz') {
      const { closing, connections } = routes.health();
      res.writeHead(closing ? 503 : 200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: closing ? 'closing' : 'ok', connections }));
    } else if (req.method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(routes.metrics.render());
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
    // before any upgrade handling (invariant 1). Answer and drop the socket; never crash.
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 408
          : 400;
    routes.metrics.refused(status);
    if (!socket.destroyed && socket.writable) {
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy();
  });
  return http;
}
