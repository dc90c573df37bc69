/**
 * A TCP proxy on 127.0.0.1 between the soak's clients and its server, which cuts and stalls
 * connections on command. It knows nothing of WebSocket: a cut destroys both sockets (as a
 * dropped network does), a stall stops reading both ways for a while (as a congested or
 * sleeping link does) and lets TCP's own back-pressure do the rest.
 *
 * Invariants:
 * 1. While the server is down (no target), new connections are refused at once (destroyed).
 * 2. A connection's two sockets live and die together.
 * 3. Nothing is buffered beyond one chunk per direction: a stalled or slow side pauses the other.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  stalledUntil: number;
  stallTimer?: ReturnType<typeof setTimeout>;
}

export interface FaultProxy {
  /** `ws://127.0.0.1:port` of the proxy. */
  url: string;
  /** Where to forward new connections; undefined refuses them (invariant 1). */
  setTarget(port: number | undefined): void;
  /** Destroys each open connection with probability `fraction`; returns how many. */
  cut(fraction: number, random: () => number): number;
  /** Stalls each open connection for `ms` with probability `fraction`; returns how many. */
  stall(fraction: number, ms: number, random: () => number): number;
  /** Ends every stall now. */
  unstallAll(): void;
  close(): Promise<void>;
}

function forward(from: Socket, to: Socket, pair: Pair): void {
  from.on('data', (chunk: Buffer) => {
    // Invariant 3: hold the source while the other side cannot take more.
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => {
    if (Date.now() >= pair.stalledUntil) from.resume();
  });
}

export async function startProxy(): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let target: number | undefined;

  const destroy = (pair: Pair) => {
    if (pair.stallTimer !== undefined) clearTimeout(pair.stallTimer);
    pair.client.destroy();
    pair.upstream.destroy();
    pairs.delete(pair);
  };

  const server: Server = createServer((client) => {
    if (target === undefined) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = tcpConnect({ host: '127.0.0.1', port: target });
    upstream.setNoDelay(true);
    const pair: Pair = { client, upstream, stalledUntil: 0 };
    pairs.add(pair);
    // Until the upstream is connected, its writes queue in memory: bounded by one handshake.
    forward(client, upstream, pair);
    forward(upstream, client, pair);
    for (const s of [client, upstream]) {
      s.on('error', () => destroy(pair));
      s.on('close', () => destroy(pair));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');

  return {
    url: `ws://127.0.0.1:${address.port}`,
    setTarget(port) {
      target = port;
    },
    cut(fraction, random) {
      let n = 0;
      for (const pair of [...pairs]) {
        if (random() < fraction) {
          destroy(pair);
          n += 1;
        }
      }
      return n;
    },
    stall(fraction, ms, random) {
      let n = 0;
      for (const pair of pairs) {
        if (random() >= fraction) continue;
        n += 1;
        pair.stalledUntil = Date.now() + ms;
        pair.client.pause();
        pair.upstream.pause();
        if (pair.stallTimer !== undefined) clearTimeout(pair.stallTimer);
        pair.stallTimer = setTimeout(() => {
          pair.stalledUntil = 0;
          pair.client.resume();
          pair.upstream.resume();
        }, ms);
      }
      return n;
    },
    unstallAll() {
      for (const pair of pairs) {
        if (pair.stallTimer !== undefined) clearTimeout(pair.stallTimer);
        pair.stalledUntil = 0;
        pair.client.resume();
        pair.upstream.resume();
      }
    },
    async close() {
      for (const pair of [...pairs]) destroy(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
