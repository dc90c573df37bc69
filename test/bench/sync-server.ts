/**
 * What the Node sync benchmarks (sync-node.ts) and the Chromium catch-up (browser-catchup.ts)
 * share: a real sync server on 127.0.0.1 (port 0, a temporary SQLite file under os.tmpdir(),
 * removed on stop), a ws transport to it, stores filled with sampleEvent, and a bounded wait.
 * No side effects on import.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Transport } from '../../src/core/sync-types.ts';
import {
  type EventStore,
  memoryStorage,
  openStore,
  type StorageAdapter,
  webSocketTransport,
} from '../../src/index.ts';
import {
  createSyncServer,
  createToken,
  type ServerStorage,
  type SyncServer,
  silentLogger,
  sqliteStorage,
} from '../../src/server/index.ts';
import { forkBenchChild, serveParent } from './bench-child.ts';
import { sampleEvent } from './browser-shared.ts';

export const SECRET = 'bench-secret-0123456789';
/** The space of the sync benchmarks; another bench may use a space of its own. */
export const SPACE = 'bench';

export interface BenchServer {
  server: SyncServer;
  storage: ServerStorage;
  token(sub: string): string;
  stop(): Promise<void>;
  /** CPU time (user + system, ms) the server's process has used: only for a server of its own. */
  cpuMs?(): Promise<number>;
}

/** A read and write token for `sub` in `space`, valid for an hour. */
export function benchToken(sub: string, space = SPACE): string {
  return createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds: 3600 });
}

/**
 * A bench server in a child process (bench-child.ts), as a server is deployed: its work does not
 * queue behind the clients' on one thread. `modulePath` is forked with `env`; finding it set,
 * that module serves with serveAsServerChild. Its head and CPU time are asked of the child.
 */
export async function startChildServer(
  modulePath: string,
  env: Record<string, string>,
  what: string,
): Promise<BenchServer> {
  const child = await forkBenchChild(modulePath, env, what);
  return {
    server: { url: child.url } as SyncServer,
    storage: {
      openSpace: async () => ({ headPos: () => child.ask('head') }),
    } as unknown as ServerStorage,
    token: (sub) => benchToken(sub),
    cpuMs: () => child.ask('cpu'),
    stop: () => child.stop(),
  };
}

/** The child's side of startChildServer: serves `t` to the parent (its URL, `head`, `stop`). */
export async function serveAsServerChild(t: BenchServer): Promise<void> {
  const space = await t.storage.openSpace(SPACE);
  serveParent(t.server.url, { head: () => space.headPos() }, () => t.stop());
}

/**
 * A sync server in this process; its tokens are for `space`. `requireSignatures` false takes
 * the events of stores with signing off (core/integrity.ts).
 */
export async function startServer(
  space = SPACE,
  options: { requireSignatures?: boolean } = {},
): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-'));
  const storage = sqliteStorage(join(dir, 'server.sqlite'));
  const server = await createSyncServer({
    storage,
    auth: { secret: SECRET },
    log: silentLogger,
    ...(options.requireSignatures === false && { requireSignatures: false }),
  });
  return {
    server,
    storage,
    token: (sub) => benchToken(sub, space),
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The URL of the bench server's sync endpoint with a token for `sub`, as a page or ws connects. */
export function syncUrl(t: BenchServer, sub: string): string {
  return `${t.server.url}/?token=${encodeURIComponent(t.token(sub))}`;
}

/**
 * A client's WebSocket transport to the bench server. BENCH_WIRE=text takes its binary members
 * away: the connection stays on protocol 4's text frames, the figures before binary frames
 * (sync/binary-frame.ts) in the same code.
 */
export function wsTransport(t: BenchServer, sub: string): Transport {
  const transport: Transport = webSocketTransport(t.server.url, {
    token: t.token(sub),
    // ws's class is structurally a browser WebSocket for what the transport uses.
    WebSocket: WebSocket as never,
  });
  if (process.env.BENCH_WIRE === 'text') {
    delete transport.sendBinary;
    delete transport.onBinary;
  }
  return transport;
}

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  pollMs = 2,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * A store on its own memoryStorage, filled with `count` events from index `offset`, 1000 an
 * append; block `i / 1000` goes to stream `stream(block)` (by default `stream-<name>-<block>`).
 */
export async function filledStore(
  name: string,
  offset: number,
  count: number,
  stream: (block: number) => string = (block) => `stream-${name}-${block}`,
): Promise<{ store: EventStore; storage: StorageAdapter }> {
  const storage = memoryStorage();
  const store = await openStore({ name, storage });
  for (let i = 0; i < count; i += 1000) {
    const events = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) events.push(sampleEvent(offset + j));
    await store.append(stream(i / 1000), events);
  }
  return { store, storage };
}

export interface ByteCount {
  sent: number;
  received: number;
}

/**
 * Counts the bytes of every message that crosses `inner`: a text's UTF-8 length, a binary
 * frame's byteLength (sync/binary-frame.ts), both ways. The binary members are passed on where
 * `inner` has them, so the connection negotiates as it would without the count.
 */
export function counting(inner: Transport, count: ByteCount): Transport {
  inner.onMessage((text) => {
    count.received += Buffer.byteLength(text, 'utf8');
  });
  inner.onBinary?.((bytes) => {
    count.received += bytes.byteLength;
  });
  const wrapped: Transport = {
    kind: inner.kind,
    open: () => inner.open(),
    send(text) {
      inner.send(text);
      count.sent += Buffer.byteLength(text, 'utf8');
    },
    onMessage: (listener) => inner.onMessage(listener),
    onClose: (listener) => inner.onClose(listener),
    close: (code, reason) => inner.close(code, reason),
  };
  const buffered = inner.bufferedBytes;
  if (buffered !== undefined) wrapped.bufferedBytes = () => buffered.call(inner);
  const sendBinary = inner.sendBinary;
  const onBinary = inner.onBinary;
  if (sendBinary !== undefined && onBinary !== undefined) {
    wrapped.sendBinary = (bytes) => {
      sendBinary.call(inner, bytes);
      count.sent += bytes.byteLength;
    };
    wrapped.onBinary = (listener) => onBinary.call(inner, listener);
  }
  return wrapped;
}

/** Reads a storage's head through its own handle (handles on one memoryStorage share data). */
export async function headReader(storage: StorageAdapter): Promise<{
  head(): Promise<number>;
  close(): Promise<void>;
}> {
  const log = await storage.open();
  return { head: () => log.headPos(), close: () => log.close() };
}
