/**
 * The Node side of the Chromium catch-up benchmark: a new device (a store in a worker, on
 * IndexedDB) catching up `count` events from a real sync server on 127.0.0.1, beside a raw
 * baseline in the same browser: the same events sent as plain JSON arrays over a WebSocket of
 * their own, written to IndexedDB one transaction per message, no library.
 *
 * The server's log is filled by a Node store on memoryStorage, uploaded through the server
 * before the timing starts; the raw messages are the events the server stored, 2000 a message
 * (the sync protocol's batch size), so both sides carry the same content.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { memoryStorage, openStore, webSocketTransport } from '../../src/index.ts';
import {
  createSyncServer,
  createToken,
  silentLogger,
  sqliteStorage,
} from '../../src/server/index.ts';
import { sampleEvent } from './browser-shared.ts';

const SECRET = 'bench-catchup-secret-0123456789';
const SPACE = 'catchup';
const PER_MESSAGE = 2000;

export interface CatchUpServers {
  /** A sync URL (token in the query) for a new device's subject. */
  syncUrl(sub: string): string;
  /** The raw server: every connection gets all events, PER_MESSAGE a message. */
  rawUrl: string;
  close(): Promise<void>;
}

export async function startCatchUpServers(count: number): Promise<CatchUpServers> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-catchup-'));
  const storage = sqliteStorage(join(dir, 'server.sqlite'));
  const server = await createSyncServer({ storage, auth: { secret: SECRET }, log: silentLogger });
  const token = (sub: string) =>
    createToken(SECRET, { space: SPACE, sub, scope: ['read', 'write'], expiresInSeconds: 3600 });
  const raw = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  try {
    const source = await openStore({ name: 'catchup-source', storage: memoryStorage() });
    for (let i = 0; i < count; i += 1000) {
      const n = Math.min(1000, count - i);
      await source.append(
        `card-${(i / 1000) % 500}`,
        Array.from({ length: n }, (_, k) => sampleEvent(i + k)),
      );
    }
    const upload = source.sync.connect(
      // ws's class is structurally a browser WebSocket for what the transport uses.
      webSocketTransport(server.url, { token: token('source'), WebSocket: WebSocket as never }),
    );
    const space = await storage.openSpace(SPACE);
    const deadline = Date.now() + 120_000;
    while ((await space.headPos()) < count) {
      if (Date.now() > deadline) throw new Error('bench: the catch-up source did not upload');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await upload.close();
    await source.close();
    const messages: string[] = [];
    for (let pos = 0; pos < count; pos += PER_MESSAGE) {
      const records = await space.readByPos(pos, PER_MESSAGE);
      messages.push(JSON.stringify(records.map((r) => r.event)));
    }
    raw.on('connection', (socket) => {
      for (const message of messages) socket.send(message);
    });
    await new Promise<void>((resolve) => {
      if (raw.address() !== null) resolve();
      else raw.once('listening', () => resolve());
    });
  } catch (error) {
    raw.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const address = raw.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    syncUrl: (sub) => `${server.url}/?token=${encodeURIComponent(token(sub))}`,
    rawUrl: `ws://127.0.0.1:${port}`,
    async close() {
      for (const client of raw.clients) client.terminate();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
