/**
 * The fan-out benchmark's server, run as a child process (bench-child.ts) so that it is measured
 * alone: FANOUT_SERVER=chronicle runs our sync server on a temporary SQLite file;
 * FANOUT_SERVER=raw runs the floor of any relay, a plain `ws` server that forwards every frame
 * to every other socket as it came, storing and checking nothing. The parent reads their CPU and
 * memory from /proc (a saturated server answers late).
 * No side effects on import unless FANOUT_SERVER is set.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { createSyncServer, silentLogger, sqliteStorage } from '../../src/server/index.ts';
import { serveParent } from './bench-child.ts';
import { SECRET } from './sync-server.ts';

/**
 * With FANOUT_CPU_PROF set to a directory, profiles this process as `node --cpu-prof` would
 * (which NODE_OPTIONS may not carry); the returned function writes the .cpuprofile there.
 */
async function startProfile(): Promise<() => Promise<void>> {
  const dir = process.env.FANOUT_CPU_PROF;
  if (dir === undefined) return async () => {};
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `fanout-server-${process.pid}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}

async function serveChronicle(): Promise<void> {
  const writeProfile = await startProfile();
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-fanout-'));
  const server = await createSyncServer({
    storage: sqliteStorage(join(dir, 'server.sqlite')),
    auth: { secret: SECRET },
    log: silentLogger,
    // The defaults, except room for every client of the bench in one space.
    limits: { maxConnectionsPerSpace: 5_000 },
  });
  serveParent(server.url, {}, async () => {
    await writeProfile();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

async function serveRaw(): Promise<void> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const sockets = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('error', () => {});
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (data, isBinary) => {
      for (const other of sockets) {
        if (other !== ws && other.readyState === WebSocket.OPEN) {
          other.send(data, { binary: isBinary });
        }
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  serveParent(url, {}, async () => {
    for (const ws of sockets) ws.terminate();
    wss.close();
    await new Promise((resolve) => http.close(resolve));
  });
}

const mode = process.env.FANOUT_SERVER;
if (mode === 'chronicle') await serveChronicle();
else if (mode === 'raw') await serveRaw();
