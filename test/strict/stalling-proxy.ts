/**
 * A WebSocket proxy on 127.0.0.1 in front of a sync server that stalls one connection, for the
 * tests of a command's first run arriving late (late-first-run.test.ts). Each client connection
 * gets a connection of its own to the server, and messages are relayed both ways as they are.
 *
 * Invariants:
 * 1. `stallOn(match)`: the first client message that matches (its text, or a binary frame's bytes
 *    read as latin1, so an id in it is found either way) is held, with every later message of that
 *    connection, and the client's side is cut at once: to the client the connection dropped before
 *    any reply, so it cannot know whether the server got the batch. The server's side stays open,
 *    as a load balancer's leg to a server still holds what the client sent; the server answers
 *    its pings (ws does), so it sees a live peer.
 * 2. While the gate is shut (`gate(false)`, shut by a stall) new connections are refused with
 *    503: the client keeps retrying, as on a network that is down for it.
 * 3. `release()` sends the held messages to the server in order, on the stalled connection; what
 *    the server sends there from then on is kept (`late`), as JSON text. What it sends on other
 *    connections is relayed and kept too (`heard`).
 * 4. `delayReplies(match)`: the next server message that matches is kept from its client, with
 *    every later one of that connection (their order stays), until `flushReplies()`.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { frameJson } from '../../src/sync/binary-frame.ts';

interface Held {
  data: Buffer;
  binary: boolean;
}

export interface StallingProxy {
  url: string;
  /** Invariant 1; resolves once a message matched and the client's side was cut. */
  stallOn(match: (text: string) => boolean): Promise<void>;
  /** Invariant 2. */
  gate(open: boolean): void;
  /** Invariant 3. */
  release(): void;
  /** What the server sent on the stalled connection after `release()`, as JSON text. */
  late: string[];
  /** What the server sent to clients on connections not stalled, as JSON text. */
  heard: string[];
  /** Invariant 4. */
  delayReplies(match: (text: string) => boolean): void;
  flushReplies(): void;
  close(): Promise<void>;
}

const toBuffer = (data: WebSocket.RawData): Buffer =>
  Array.isArray(data)
    ? Buffer.concat(data)
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : (data as Buffer);

export async function stallingProxy(target: string): Promise<StallingProxy> {
  let open = true;
  let stall: { match: (text: string) => boolean; done: () => void } | undefined;
  let stalled: { upstream: WebSocket; held: Held[] } | undefined;
  let releasing = false;
  let delay: ((text: string) => boolean) | undefined;
  let delayed: { client: WebSocket; held: Held[] } | undefined;
  const late: string[] = [];
  const heard: string[] = [];
  const sockets = new Set<WebSocket>();
  const server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, done) => done(open, 503),
  });

  server.on('connection', (client: WebSocket, request: IncomingMessage) => {
    const upstream = new WebSocket(`${target}${request.url ?? '/'}`);
    sockets.add(client);
    sockets.add(upstream);
    let queue: Held[] | undefined = [];
    let held: Held[] | undefined;
    const forward = (m: Held) => {
      if (queue !== undefined) queue.push(m);
      else if (upstream.readyState === WebSocket.OPEN) upstream.send(m.data, { binary: m.binary });
    };
    upstream.on('open', () => {
      const waiting = queue ?? [];
      queue = undefined;
      for (const m of waiting) forward(m);
    });
    upstream.on('message', (data, binary) => {
      const buffer = toBuffer(data);
      const text = binary ? frameJson(buffer) : buffer.toString('utf8');
      if (held === undefined) heard.push(text);
      if (held !== undefined) {
        if (releasing) late.push(text);
        return;
      }
      if (delayed?.client === client) {
        delayed.held.push({ data: buffer, binary });
        return;
      }
      if (delay?.(text)) {
        delay = undefined;
        delayed = { client, held: [{ data: buffer, binary }] };
        return;
      }
      if (client.readyState === WebSocket.OPEN) client.send(buffer, { binary });
    });
    client.on('message', (data, binary) => {
      const m = { data: toBuffer(data), binary };
      if (held !== undefined) {
        held.push(m);
        return;
      }
      if (stall?.match(m.data.toString(binary ? 'latin1' : 'utf8'))) {
        // Invariant 1: held with what follows, the client cut, the server's side kept.
        held = [m];
        stalled = { upstream, held };
        open = false;
        const done = stall.done;
        stall = undefined;
        client.terminate();
        done();
        return;
      }
      forward(m);
    });
    for (const ws of [client, upstream]) ws.on('error', () => {});
    client.on('close', () => {
      sockets.delete(client);
      if (held === undefined) upstream.close();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.close();
    });
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  return {
    url: `ws://127.0.0.1:${port}`,
    late,
    heard,
    stallOn(match) {
      return new Promise<void>((done) => {
        stall = { match, done };
      });
    },
    gate(value) {
      open = value;
    },
    release() {
      if (stalled === undefined) throw new Error('nothing was stalled');
      releasing = true;
      for (const m of stalled.held) stalled.upstream.send(m.data, { binary: m.binary });
    },
    delayReplies(match) {
      delay = match;
    },
    flushReplies() {
      const { client, held } = delayed ?? { held: [] };
      delayed = undefined;
      for (const m of held) client?.send(m.data, { binary: m.binary });
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
