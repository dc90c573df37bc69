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
import { WebSocketServer } from 'ws';
import { filledStore, startServer, syncUrl, waitUntil, wsTransport } from './sync-server.ts';

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
  const t = await startServer(SPACE);
  const raw = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  try {
    // 1000 events an append; block k goes to stream card-k.
    const { store: source } = await filledStore(
      'catchup-source',
      0,
      count,
      (k) => `card-${k % 500}`,
    );
    const upload = source.sync.connect(wsTransport(t, 'source'));
    const space = await t.storage.openSpace(SPACE);
    await waitUntil(
      async () => (await space.headPos()) >= count,
      'the catch-up source to upload',
      120_000,
      10,
    );
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
    await t.stop();
    throw error;
  }
  const address = raw.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    syncUrl: (sub) => syncUrl(t, sub),
    rawUrl: `ws://127.0.0.1:${port}`,
    async close() {
      for (const client of raw.clients) client.terminate();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
      await t.stop();
    },
  };
}
