/**
 * Runs the transport conformance suite over every transport: memory, WebSocket (against a small
 * `ws` relay on 127.0.0.1 that pairs the two connections of one path) and BroadcastChannel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { broadcastChannelTransport } from '../../src/sync/transports/broadcast-channel.ts';
import { memoryTransportPair } from '../../src/sync/transports/memory.ts';
import {
  type WebSocketConstructor,
  webSocketTransport,
} from '../../src/sync/transports/websocket.ts';
import { type TransportFactory, transportConformance } from './transport-conformance.ts';

let server: WebSocketServer;
let url = '';
const tokens: (string | null)[] = [];
let room = 0;

/** Pairs the sockets of one path; what one sends, the other gets; one closing closes the other. */
function startRelay(): Promise<void> {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  const rooms = new Map<string, WebSocket[]>();
  server.on('connection', (socket, request) => {
    const target = new URL(request.url ?? '/', 'http://x');
    tokens.push(target.searchParams.get('token'));
    const members = rooms.get(target.pathname) ?? [];
    rooms.set(target.pathname, members);
    members.push(socket);
    // Each message as it came: text frames as text, binary ones as binary.
    const backlog: [Buffer, boolean][] = [];
    socket.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      const other = members.find((m) => m !== socket);
      if (other === undefined) backlog.push([bytes, isBinary]);
      else other.send(bytes, { binary: isBinary });
    });
    const other = members.find((m) => m !== socket);
    if (other !== undefined) other.emit('flush', socket);
    socket.on('flush', (peer: WebSocket) => {
      for (const [bytes, binary] of backlog.splice(0)) peer.send(bytes, { binary });
    });
    socket.on('close', (code, reason) => {
      members.splice(members.indexOf(socket), 1);
      for (const m of members) m.close(code === 1005 ? 1000 : code, reason);
    });
  });
  return new Promise((resolve) =>
    server.on('listening', () => {
      const address = server.address();
      if (typeof address === 'object' && address !== null) url = `ws://127.0.0.1:${address.port}`;
      resolve();
    }),
  );
}

beforeAll(startRelay);
afterAll(
  () =>
    new Promise<void>((resolve) => {
      for (const client of server.clients) client.terminate();
      server.close(() => resolve());
    }),
);

const WS = WebSocket as unknown as WebSocketConstructor;

const factories: TransportFactory[] = [
  { name: 'memory', make: async () => memoryTransportPair() },
  { name: 'memory (binary)', make: async () => memoryTransportPair({ binary: true }) },
  {
    name: 'websocket',
    make: async () => {
      room += 1;
      return [
        webSocketTransport(`${url}/room-${room}`, { WebSocket: WS, token: 'a-token' }),
        webSocketTransport(`${url}/room-${room}`, { WebSocket: WS, token: async () => 'b-token' }),
      ];
    },
  },
  {
    // Failover over servers sharing one database: a list of URLs (here twice the same relay
    // path, so both ends meet whichever URL each connection takes).
    name: 'websocket (URL list)',
    make: async () => {
      room += 1;
      const urls = [`${url}/room-${room}`, `${url}/room-${room}?second`];
      return [
        webSocketTransport(urls, { WebSocket: WS, token: 'a-token' }),
        webSocketTransport(urls, { WebSocket: WS, token: 'b-token' }),
      ];
    },
  },
  {
    name: 'broadcast-channel',
    make: async () => {
      room += 1;
      const name = `chronicle-test-${room}`;
      return [
        broadcastChannelTransport(name, { heartbeatMs: 0 }),
        broadcastChannelTransport(name, { heartbeatMs: 0 }),
      ];
    },
  },
];

describe.each(factories)('$name', (factory) => {
  transportConformance(factory);
});

describe('webSocketTransport', () => {
  it('carries the token as the token query parameter, calling a token function on each open', async () => {
    tokens.length = 0;
    let calls = 0;
    const t = webSocketTransport(`${url}/token-room`, {
      WebSocket: WS,
      token: async () => `t${++calls}`,
    });
    await t.open();
    t.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await t.open();
    t.close();
    expect(tokens).toEqual(['t1', 't2']);
  });

  it('rejects open when nothing listens', async () => {
    const t = webSocketTransport('ws://127.0.0.1:1', { WebSocket: WS });
    await expect(t.open()).rejects.toMatchObject({ code: 'TRANSPORT' });
  });
});

describe('webSocketTransport over a list of URLs (failover, invariant 5)', () => {
  const DEAD = 'ws://127.0.0.1:1/';

  it('tries the next URL on the open after one that failed to open', async () => {
    // random 0.99 keeps the given order (the shuffle swaps nothing).
    const t = webSocketTransport([DEAD, `${url}/list-a`], { WebSocket: WS, random: () => 0.99 });
    expect(t.currentUrl()).toBe(DEAD);
    await expect(t.open()).rejects.toMatchObject({ code: 'TRANSPORT' });
    expect(t.currentUrl()).toBe(`${url}/list-a`);
    await t.open();
    t.close();
  });

  it('moves to the next URL after an open connection drops, and wraps around', async () => {
    const first = `${url}/list-b`;
    const t = webSocketTransport([first, DEAD], { WebSocket: WS, random: () => 0.99 });
    let closes = 0;
    t.onClose(() => {
      closes++;
    });
    await t.open();
    expect(t.currentUrl()).toBe(first);
    // The server side drops it (as a server that dies would).
    for (const client of server.clients) client.terminate();
    await new Promise<void>((resolve) => {
      const check = () => (closes === 1 ? resolve() : setTimeout(check, 5));
      check();
    });
    expect(t.currentUrl()).toBe(DEAD);
    await expect(t.open()).rejects.toMatchObject({ code: 'TRANSPORT' });
    expect(t.currentUrl()).toBe(first);
    await t.open();
    t.close();
  });

  it('starts each transport at a random place in its own shuffled order', () => {
    const urls = ['ws://a.test/', 'ws://b.test/', 'ws://c.test/'];
    const starts = [0, 0.4, 0.99].map((r) =>
      webSocketTransport(urls, { WebSocket: WS, random: () => r }).currentUrl(),
    );
    expect(new Set(starts).size).toBeGreaterThan(1);
    expect(webSocketTransport(['ws://only.test/'], { random: () => 0 }).currentUrl()).toBe(
      'ws://only.test/',
    );
  });

  it('refuses an empty list', () => {
    expect(() => webSocketTransport([], { WebSocket: WS })).toThrow(/needs a URL/);
  });
});

describe('broadcastChannelTransport', () => {
  it('pairs only two endpoints of a bus and rejects open when nobody answers', async () => {
    const lonely = broadcastChannelTransport('chronicle-lonely', { openTimeoutMs: 50 });
    await expect(lonely.open()).rejects.toMatchObject({ code: 'TRANSPORT' });
    const name = 'chronicle-bus';
    const [a, b, c] = [1, 2, 3].map(() =>
      broadcastChannelTransport(name, { heartbeatMs: 0, openTimeoutMs: 200 }),
    );
    const results = await Promise.allSettled([a!.open(), b!.open(), c!.open()]);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(2);
    for (const t of [a, b, c]) t!.close();
  });
});
