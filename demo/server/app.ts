/**
 * The demo's one Node process: Chronicle's sync server on SQLite, and an HTTP server for the
 * built demo on one origin. `npm start` (start.ts) and the browser tests both call startDemo.
 *
 * The page reaches everything on its own origin:
 * - `/`            the built demo (dist/demo), an SPA: unknown paths get index.html;
 * - `/token`       DEMO ONLY: hands any caller a sync token for the demo's space. A real app
 *                  mints tokens in its own backend after logging the user in;
 * - `/healthz`     the sync server's health (its /healthz), 503 when it does not answer;
 * - `/sync`        a WebSocket, piped byte for byte to the sync server (which listens on a
 *                  loopback port of its own), so the page needs no second origin and no CORS.
 *
 * With CHRONICLE_SYNC_URL (start.ts) the demo uses a standalone chronicle-server instead of its
 * own: it mints tokens with that server's secret and pipes /sync and /healthz to it.
 *
 * Auth: the sync server runs with a secret (kept in <data>/demo-secret, so that tokens survive
 * a restart) rather than with auth disabled, so that the demo takes the same path as a real
 * deployment: the page asks its backend for a token and the server checks it on upgrade.
 *
 * Invariants:
 * 1. Static files are served only from inside `distDir` (no path escapes it).
 * 2. The service worker script is never cached by HTTP, so a new build reaches browsers.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import {
  createSyncServer,
  createToken,
  type ServerLogger,
  type SyncServer,
  sqliteStorage,
} from '../../src/server/index.ts';
import { boardProjection } from '../src/board.ts';

export const DEMO_SPACE = 'demo';
const TOKEN_SECONDS = 30 * 24 * 3600;

export interface SyncBackend {
  /** Where the sync server listens: its WebSocket and its /healthz. */
  target: { host: string; port: number; tls: boolean };
  /** The embedded sync server; undefined when the demo uses a standalone chronicle-server. */
  server: SyncServer | undefined;
  /** DEMO ONLY: a read/write token for the demo's space, or an encrypted board's. */
  mintToken(space?: string): string;
  close(): Promise<void>;
}

/** An encrypted board's space (demo/src/board-link.ts invariant 2). */
const BOARD_SPACE = /^board-[a-z0-9]{16}$/;

const mintDemoToken = (secret: string, space = DEMO_SPACE) =>
  createToken(secret, {
    space,
    sub: 'demo-page',
    scope: ['read', 'write'],
    expiresInSeconds: TOKEN_SECONDS,
  });

/**
 * A standalone chronicle-server at `url` (ws://host:port or wss://…) run with `secret`: the demo
 * mints its tokens with that secret and pipes /sync and /healthz to it, and runs no server itself.
 */
export function standaloneBackend(url: string, secret: string): SyncBackend {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`the sync server URL is not a URL: ${url}`);
  }
  const tls = parsed.protocol === 'wss:' || parsed.protocol === 'https:';
  if (!tls && parsed.protocol !== 'ws:' && parsed.protocol !== 'http:') {
    throw new TypeError(`the sync server URL must be ws:// or wss://, got ${url}`);
  }
  mintDemoToken(secret); // a secret the server could not use fails here, not on the first page
  return {
    target: {
      host: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: Number(parsed.port || (tls ? 443 : 80)),
      tls,
    },
    server: undefined,
    mintToken: (space) => mintDemoToken(secret, space),
    close: async () => {},
  };
}

/** The sync server on `<dataDir>/demo.sqlite` (the directory is created if missing). */
export async function startSyncBackend(options: {
  dataDir: string;
  log?: ServerLogger;
}): Promise<SyncBackend> {
  mkdirSync(options.dataDir, { recursive: true });
  const secretFile = join(options.dataDir, 'demo-secret');
  if (!existsSync(secretFile))
    writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const secret = process.env.CHRONICLE_SECRET || readFileSync(secretFile, 'utf8').trim();
  const server = await createSyncServer({
    port: 0,
    host: '127.0.0.1',
    storage: sqliteStorage(join(options.dataDir, 'demo.sqlite')),
    auth: { secret },
    // Browsers offer permessage-deflate: a new device's catch-up crosses in about half the bytes.
    wireCompression: true,
    // The board's projection, folded on the server: a new device joins from its snapshot and the
    // recent tail instead of the whole log (docs/storage-growth.md part 4). Encrypted boards'
    // spaces get none (the server cannot read them); their devices replay.
    snapshots: { projections: [boardProjection] },
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  return {
    target: { host: '127.0.0.1', port: server.port, tls: false },
    server,
    mintToken: (space) => mintDemoToken(secret, space),
    close: () => server.close(),
  };
}

/** Answers GET /token (DEMO ONLY, see the header); false for other requests. */
export function handleToken(backend: SyncBackend, req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://demo');
  if (url.pathname !== '/token') return false;
  const asked = url.searchParams.get('space');
  const space = asked !== null && BOARD_SPACE.test(asked) ? asked : DEMO_SPACE;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify({ token: backend.mintToken(space), space }));
  return true;
}

/**
 * Answers GET /healthz with the sync server's own health (its status and JSON), so that a load
 * balancer or a person checking the demo's one origin sees whether sync works; a sync server
 * that does not answer is a 503. False for other requests.
 */
export function handleHealth(backend: SyncBackend, req: IncomingMessage, res: ServerResponse) {
  if ((req.url ?? '').split('?')[0] !== '/healthz') return false;
  const { host, port, tls } = backend.target;
  const upstream = (tls ? httpsRequest : request)(
    { host, port, path: '/healthz', timeout: 5_000 },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, {
        'Content-Type': answer.headers['content-type'] ?? 'application/json',
        'Cache-Control': 'no-store',
      });
      answer.pipe(res);
    },
  );
  const unavailable = () => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(503, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ status: 'unavailable', reason: 'the sync server did not answer' }));
  };
  upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
  upstream.on('error', unavailable);
  upstream.end();
  return true;
}

/** Pipes a WebSocket upgrade on /sync to the sync server, headers and all. */
export function proxyUpgrade(
  backend: SyncBackend,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
) {
  socket.on('error', () => socket.destroy());
  if ((req.url ?? '').split('?')[0] !== '/sync') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    return;
  }
  const { host, port, tls } = backend.target;
  const opened = () => {
    const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  };
  const upstream = tls
    ? tlsConnect({ host, port, servername: host }, opened)
    : connect(port, host, opened);
  upstream.on('error', () => socket.destroy());
  upstream.on('close', () => socket.destroy());
  socket.on('close', () => upstream.destroy());
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

function serveStatic(distDir: string, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const root = resolve(distDir);
  let file = resolve(root, `.${normalize(`/${path}`)}`);
  if (file !== root && !file.startsWith(root + sep)) {
    res.writeHead(403).end(); // invariant 1
    return;
  }
  const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
  if (!isFile(file)) {
    // An SPA: any path without an extension is the page; a missing asset is a 404.
    if (extname(path) !== '') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    file = join(root, 'index.html');
  }
  const cache = file.includes(`${sep}assets${sep}`)
    ? 'public, max-age=31536000, immutable' // hashed names
    : 'no-cache'; // index.html, sw.js (invariant 2), manifest, icons
  const body = readFileSync(file);
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': body.length,
    'Cache-Control': cache,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export interface DemoServer {
  /** http://host:port/ — the one URL to open. */
  url: string;
  backend: SyncBackend;
  close(): Promise<void>;
}

export async function startDemo(options: {
  distDir: string;
  dataDir: string;
  port?: number;
  host?: string;
  log?: ServerLogger;
  /** A standalone chronicle-server to use instead of the embedded one (standaloneBackend). */
  sync?: { url: string; secret: string };
}): Promise<DemoServer> {
  const backend =
    options.sync === undefined
      ? await startSyncBackend({
          dataDir: options.dataDir,
          ...(options.log === undefined ? {} : { log: options.log }),
        })
      : standaloneBackend(options.sync.url, options.sync.secret);
  const http: Server = createServer((req, res) => {
    if (handleToken(backend, req, res)) return;
    if (handleHealth(backend, req, res)) return;
    serveStatic(options.distDir, req, res);
  });
  http.on('upgrade', (req, socket, head) => proxyUpgrade(backend, req, socket, head));
  try {
    await new Promise<void>((done, fail) => {
      http.once('error', fail);
      http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => done());
    });
  } catch (error) {
    await backend.close();
    throw error;
  }
  const address = http.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    backend,
    close: async () => {
      const closed = new Promise<void>((done) => http.close(() => done()));
      http.closeAllConnections();
      await backend.close();
      await closed;
    },
  };
}
