/**
 * A Transport over a WebSocket to a sync server, for browsers and Node (pass `WebSocket` from the
 * `ws` package on Node 20, which has no global WebSocket).
 *
 * Invariants:
 * 1. The token travels as the `token` query parameter: browsers cannot set headers on a
 *    WebSocket upgrade. A token function is called on every open, so a refreshed token is used
 *    on reconnect.
 * 2. onClose runs once per connection, including a connection that failed while opening.
 * 3. Close codes other than 1000 and 3000–4999 are sent as 1000 (browsers throw on them); the
 *    code asked for is kept in the reason.
 * 4. Text frames carry text messages, binary frames bytes (onBinary; `binaryType` is set to
 *    'arraybuffer', a browser's default 'blob' would need an await per frame). The transport
 *    offers binary (sendBinary/onBinary, core/sync-types.ts); whether a connection uses it is
 *    the sessions' hellos' to say (protocol invariant 11), so a server that does not read
 *    binary frames never gets one.
 * 5. Failover over a list of URLs (servers sharing one database): each open() tries the current
 *    URL; every connection that ends (failed to open, dropped, or closed) moves to the next for
 *    the following open(). The caller's reconnect backoff spaces the attempts; the transport
 *    never retries by itself. The list is shuffled once per transport (options.random): clients
 *    start on servers at random and, when one server dies, its clients spread over the others in
 *    their own orders instead of all landing on the one after it. A transport does not know its
 *    replica (a per-replica choice would need it), and a random order needs no coordination.
 */
import { SyncError } from '../../core/errors.ts';
import type { Transport, TransportCloseInfo } from '../../core/sync-types.ts';

/** The part of the WebSocket API this transport uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  /** Set to 'arraybuffer' where the socket has it (invariant 4). */
  binaryType?: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketTransportOptions {
  /** Sent as the `token` query parameter; a function is called on every open. */
  token?: string | (() => Promise<string>);
  /** The WebSocket class: `ws`'s on Node, the global one in browsers (default). */
  WebSocket?: WebSocketConstructor;
  /** open() rejects when no connection is made within this time. Default 10 s. */
  openTimeoutMs?: number;
  /**
   * In [0, 1): shuffles a list of URLs once (invariant 5). Default Math.random; injectable for
   * tests. A single URL ignores it.
   */
  random?: () => number;
}

/**
 * A WebSocket transport; `currentUrl()` names the server of its current or next connection.
 * (Not `url`: a sync target with a `url` property is taken for a `{ url, token }` address.)
 */
export interface WebSocketTransport extends Transport {
  currentUrl(): string;
}

export const DEFAULT_OPEN_TIMEOUT_MS = 10_000;
const OPEN = 1;

/** The bytes of a binary message (ArrayBuffer, a view such as ws's Buffer, or ws's fragments). */
function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    const parts = data.map(bytesOf);
    if (parts.some((p) => p === undefined)) return undefined;
    const out = new Uint8Array(parts.reduce((n, p) => n + p!.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p!, at);
      at += p!.length;
    }
    return out;
  }
  return undefined;
}

function safeCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** The URLs in a random order (Fisher–Yates), for invariant 5. */
function shuffled(urls: readonly string[], random: () => number): string[] {
  const out = [...urls];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * @example webSocketTransport('wss://sync.example.com', { token: () => getToken() })
 * @example webSocketTransport(['wss://a.example.com', 'wss://b.example.com'], { token }) // failover
 */
export function webSocketTransport(
  urls: string | readonly string[],
  options: WebSocketTransportOptions = {},
): WebSocketTransport {
  const list = typeof urls === 'string' ? [urls] : shuffled(urls, options.random ?? Math.random);
  if (list.length === 0) throw new SyncError('TRANSPORT', 'webSocketTransport needs a URL');
  let current = 0;
  const messageListeners = new Set<(text: string) => void>();
  const binaryListeners = new Set<(bytes: Uint8Array) => void>();
  const closeListeners = new Set<(info: TransportCloseInfo) => void>();
  let socket: WebSocketLike | undefined;

  const resolveCtor = (): WebSocketConstructor => {
    if (options.WebSocket !== undefined) return options.WebSocket;
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (global === undefined) {
      throw new SyncError('TRANSPORT', 'no WebSocket here: pass { WebSocket } from the ws package');
    }
    return global;
  };

  const withToken = async (url: string): Promise<string> => {
    if (options.token === undefined) return url;
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    const target = new URL(url);
    target.searchParams.set('token', token);
    return target.toString();
  };

  return {
    kind: 'websocket',
    currentUrl: () => list[current]!,
    async open() {
      if (socket !== undefined && socket.readyState === OPEN) return;
      const Ctor = resolveCtor();
      const index = current;
      const url = list[index]!;
      /** Invariant 5: the next open() goes to the next URL, once per connection. */
      const moveOn = () => {
        if (current === index) current = (index + 1) % list.length;
      };
      let ws: WebSocketLike;
      try {
        ws = new Ctor(await withToken(url));
      } catch (error) {
        // A malformed URL in a list must not hold every later attempt on it.
        moveOn();
        throw error;
      }
      if ('binaryType' in ws) ws.binaryType = 'arraybuffer';
      await new Promise<void>((resolve, reject) => {
        socket = ws;
        let opened = false;
        let ended = false;
        const timer = setTimeout(() => {
          if (opened || ended) return;
          ended = true;
          moveOn();
          ws.close();
          reject(new SyncError('TRANSPORT', `no connection to ${url} within the open timeout`));
          for (const listener of [...closeListeners]) {
            listener({
              reason: 'open timeout',
              error: { code: 'TRANSPORT', message: 'open timeout' },
            });
          }
        }, options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS);
        ws.onopen = () => {
          opened = true;
          clearTimeout(timer);
          resolve();
        };
        ws.onmessage = (event: { data: unknown }) => {
          if (socket !== ws) return;
          const data = event.data;
          if (typeof data === 'string') {
            for (const listener of [...messageListeners]) listener(data);
            return;
          }
          const bytes = bytesOf(data);
          if (bytes === undefined) return;
          for (const listener of [...binaryListeners]) listener(bytes);
        };
        ws.onerror = () => {
          // Browsers give no detail; the close event that follows carries the code.
        };
        ws.onclose = (event: { code?: number; reason?: string }) => {
          clearTimeout(timer);
          if (ended) return;
          ended = true;
          moveOn();
          if (socket === ws) socket = undefined;
          const code = event.code ?? 1006;
          const info: TransportCloseInfo = { code, reason: event.reason ?? '' };
          if (code !== 1000 && code !== 1001) {
            info.error = {
              code: 'TRANSPORT',
              message: `connection closed with ${code}${event.reason ? `: ${event.reason}` : ''}`,
            };
          }
          if (!opened)
            reject(new SyncError('TRANSPORT', info.error?.message ?? 'connection refused'));
          for (const listener of [...closeListeners]) listener(info);
        };
      });
    },
    send(text: string) {
      if (socket === undefined || socket.readyState !== OPEN) {
        throw new SyncError('TRANSPORT', 'the WebSocket is not open');
      }
      socket.send(text);
    },
    sendBinary(bytes: Uint8Array) {
      if (socket === undefined || socket.readyState !== OPEN) {
        throw new SyncError('TRANSPORT', 'the WebSocket is not open');
      }
      socket.send(bytes);
    },
    onMessage(listener) {
      messageListeners.add(listener);
      return () => messageListeners.delete(listener);
    },
    onBinary(listener) {
      binaryListeners.add(listener);
      return () => binaryListeners.delete(listener);
    },
    onClose(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
    close(code = 1000, reason = '') {
      const ws = socket;
      if (ws === undefined) return;
      const safe = safeCloseCode(code);
      const text = safe === code ? reason : `${code} ${reason}`;
      // A close reason is limited to 123 bytes of UTF-8.
      ws.close(safe, text.slice(0, 60));
    },
    bufferedBytes() {
      return socket?.bufferedAmount ?? 0;
    },
  };
}
