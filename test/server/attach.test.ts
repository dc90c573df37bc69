/**
 * The sync server attached to an app's own Node HTTP server (server.ts invariant 5): only
 * upgrades on its path are ours; the app's routes and other upgrades are left alone, and close()
 * leaves the app's server open. A plain node:http server stands in for Express or Fastify (both
 * hand out one).
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { memoryStorage, openStore } from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import type { LogEntry } from '../../src/server/metrics.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { SECRET, tempDir, waitFor } from './helpers.ts';

let app: Server;
let base: string;
let appUpgrades: string[];
let tmp: ReturnType<typeof tempDir>;
let storage: ServerStorage;
let logs: LogEntry[];

beforeEach(async () => {
  appUpgrades = [];
  app = createServer((req, res) => {
    if (req.url === '/hello') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('hello from the app');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('the app has no such page');
    }
  });
  // The app's own upgrade handler (a second WebSocket endpoint, HMR, …): answers what is its own.
  app.on('upgrade', (req, socket) => {
    if (req.url?.startsWith('/other')) {
      appUpgrades.push(req.url);
      socket.end('HTTP/1.1 418 I am a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  tmp = tempDir();
  storage = sqliteStorage(join(tmp.dir, 'server.sqlite'));
  logs = [];
});

afterEach(async () => {
  await new Promise((resolve) => app.close(resolve));
  tmp.cleanup();
});

function attach(): Promise<SyncServer> {
  return createSyncServer({
    server: app,
    path: '/sync',
    storage,
    auth: { secret: SECRET },
    log: (entry) => logs.push(entry),
  });
}

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The HTTP status an upgrade to `url` gets (101 when it opens). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

const token = (space = 'space-a') =>
  createToken(SECRET, { space, sub: 'alice', scope: ['read', 'write'], expiresInSeconds: 600 });

describe('createSyncServer({ server, path }) (server.ts invariant 5)', () => {
  it("serves sync on its path while the app's own routes keep working", async () => {
    const sync = await attach();
    expect(sync.url).toBe(`${base.replace('http:', 'ws:')}/sync`);
    expect(await get('/hello')).toEqual({ status: 200, body: 'hello from the app' });
    // Operations routes are the app's to mount: ours are not served on its server.
    expect(await get('/healthz')).toEqual({ status: 404, body: 'the app has no such page' });
    expect(await get('/metrics')).toEqual({ status: 404, body: 'the app has no such page' });

    const store = await openStore({
      name: 'attached-client',
      storage: memoryStorage(),
      syncOptions: { WebSocket: WebSocket as never },
    });
    const connection = store.sync.connect({ url: sync.url, token: async () => token() });
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'through the app' } });
    await waitFor(() => {
      const s = store.sync.status();
      return s.state === 'idle' && s.pending === 0;
    }, 10_000);
    const space = await storage.openSpace('space-a');
    expect((await space.readByPos(0, 10)).map((r) => r.event.stream)).toEqual(['todo-1']);
    expect(sync.connectionCount()).toBe(1);
    await connection.close();
    await store.close();
    await sync.close();
  });

  it('leaves upgrades on other paths to the app, and refuses a bad token on its own path', async () => {
    const sync = await attach();
    const ws = base.replace('http:', 'ws:');
    expect(await upgradeStatus(`${ws}/other?token=${token()}`)).toBe(418);
    expect(appUpgrades).toEqual([`/other?token=${token()}`]);
    expect(await upgradeStatus(`${ws}/sync`)).toBe(401);
    expect(await upgradeStatus(`${ws}/sync?token=${token()}`)).toBe(101);
    expect(logs.filter((l) => l.event === 'auth_failure')).toHaveLength(1);
    await sync.close();
  });

  it("closes its connections and storage on close() but leaves the app's server open", async () => {
    const sync = await attach();
    const ws = new WebSocket(`${sync.url}?token=${token()}`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise((resolve) => ws.once('open', resolve));
    await sync.close();
    expect(await closed).toBe(1001);
    expect(app.listening).toBe(true);
    expect(await get('/hello')).toEqual({ status: 200, body: 'hello from the app' });
    expect(app.listenerCount('upgrade')).toBe(1);
  });

  it('needs a path to attach, and no port or host of its own', async () => {
    await expect(createSyncServer({ server: app, storage, auth: false })).rejects.toThrow(/path/);
    await expect(
      createSyncServer({ server: app, path: '/sync', port: 8080, storage, auth: false }),
    ).rejects.toThrow(/port and host/);
    await storage.close();
  });
});

describe('createSyncServer({ path }) on its own port', () => {
  it('answers 404 to an upgrade on another path', async () => {
    const sync = await createSyncServer({
      path: '/sync',
      storage,
      auth: { secret: SECRET },
      log: () => {},
    });
    const origin = sync.url.replace(/\/sync$/, '');
    expect(await upgradeStatus(`${origin}/elsewhere?token=${token()}`)).toBe(404);
    expect(await upgradeStatus(`${sync.url}?token=${token()}`)).toBe(101);
    await sync.close();
  });
});
