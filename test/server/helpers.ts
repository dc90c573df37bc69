/**
 * Test helpers: a server on 127.0.0.1 with a temporary SQLite file, and a raw protocol client
 * that speaks the wire messages directly (so tests can also speak them wrongly).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { createToken, type Scope } from '../../src/server/auth.ts';
import type { ServerLimits } from '../../src/server/limits.ts';
import type { LogEntry } from '../../src/server/metrics.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { fromWire, toWire } from '../sync/wire.ts';

export const SECRET = 'test-secret-0123456789';

/** A read and write token of `space` for `sub`, signed with SECRET (ten minutes by default). */
export function spaceToken(space: string, sub = 'writer', expiresInSeconds = 600): string {
  return createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds });
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-server-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestServer {
  server: SyncServer;
  storage: ServerStorage;
  path: string;
  logs: LogEntry[];
  token(options?: {
    space?: string;
    sub?: string;
    scope?: Scope[];
    expiresInSeconds?: number;
  }): string;
  stop(): Promise<void>;
}

export async function startTestServer(
  options: {
    limits?: Partial<ServerLimits>;
    origins?: string[];
    auth?: false;
    /**
     * Default false here: most server tests speak the protocol with hand-made, unsigned events.
     * The product's default (true) is what the tamper, convergence and end-to-end tests run.
     */
    requireSignatures?: boolean;
    wireCompression?: boolean;
    /** The server's default (true) unless set. */
    binaryFrames?: boolean;
  } = {},
): Promise<TestServer> {
  const tmp = tempDir();
  const path = join(tmp.dir, 'server.sqlite');
  const storage = sqliteStorage(path);
  const logs: LogEntry[] = [];
  const server = await createSyncServer({
    storage,
    auth: options.auth === false ? false : { secret: SECRET },
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.origins ? { origins: options.origins } : {}),
    requireSignatures: options.requireSignatures ?? false,
    ...(options.wireCompression !== undefined && { wireCompression: options.wireCompression }),
    ...(options.binaryFrames !== undefined && { binaryFrames: options.binaryFrames }),
    log: (entry) => {
      if (logs.length < 10_000) logs.push(entry);
    },
  });
  return {
    server,
    storage,
    path,
    logs,
    token: (t = {}) =>
      createToken(SECRET, {
        space: t.space ?? 'space-a',
        sub: t.sub ?? 'alice',
        scope: t.scope ?? ['read', 'write'],
        expiresInSeconds: t.expiresInSeconds ?? 600,
      }),
    async stop() {
      await server.close();
      tmp.cleanup();
    },
  };
}

export interface Received {
  type: string;
  [key: string]: unknown;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** A WebSocket client that queues every message and lets a test wait for the next matching one. */
export class RawClient {
  readonly messages: Received[] = [];
  readonly closed: Promise<CloseInfo>;
  private waiters: { match: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];
  private cursor = 0;

  readonly ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = fromWire<Received>(String(data));
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(message)) return true;
        w.resolve(message);
        return false;
      });
    });
  }

  static connect(
    url: string,
    options: {
      token?: string;
      headers?: Record<string, string>;
      query?: boolean;
      /** Offer permessage-deflate (ws's default, and every browser's): true. */
      perMessageDeflate?: boolean;
    } = {},
  ): Promise<RawClient> {
    const target =
      options.token && options.query !== false
        ? `${url}/?token=${encodeURIComponent(options.token)}`
        : url;
    const headers = { ...options.headers };
    if (options.token && options.query === false) headers.authorization = `Bearer ${options.token}`;
    const ws = new WebSocket(target, {
      headers,
      perMessageDeflate: options.perMessageDeflate ?? true,
    });
    const client = new RawClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(toWire(message));
  }

  /** The next message (after those already taken) that matches, within `timeoutMs`. */
  next(match: (m: Received) => boolean = () => true, timeoutMs = 5000): Promise<Received> {
    for (let i = this.cursor; i < this.messages.length; i++) {
      const m = this.messages[i]!;
      if (match(m)) {
        this.cursor = i + 1;
        return Promise.resolve(m);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('timed out waiting for a message')),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          this.cursor = this.messages.length;
          resolve(m);
        },
      });
    });
  }

  nextOfType(type: string, timeoutMs?: number): Promise<Received> {
    return this.next((m) => m.type === type, timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}

let replicaCounter = 0;

/** A raw client that did the handshake: hello both ways, and (for writers) the server's pull. */
export class ProtocolClient {
  /** Position in this client's (pretend) log that the server acknowledged. */
  pos = 0;
  serverHello!: Received;

  readonly raw: RawClient;
  readonly replica: string;

  private constructor(raw: RawClient, replica: string) {
    this.raw = raw;
    this.replica = replica;
  }

  static async connect(
    url: string,
    token: string | undefined,
    options: { replica?: string; expectPull?: boolean; hello?: Record<string, unknown> } = {},
  ): Promise<ProtocolClient> {
    replicaCounter += 1;
    const replica = options.replica ?? `client${String(replicaCounter).padStart(10, '0')}`;
    const raw = await RawClient.connect(url, token === undefined ? {} : { token });
    const client = new ProtocolClient(raw, replica);
    client.serverHello = await raw.nextOfType('hello');
    raw.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      replica,
      epoch: `epoch-${replica}`,
      head: 0,
      seq: 0,
      time: Date.now(),
      ...options.hello,
    });
    if (options.expectPull !== false) await raw.nextOfType('pull');
    return client;
  }

  /** Sends a batch covering the next positions; resolves with the server's answer (ack or error). */
  async push(events: StoredEventRecord[]): Promise<Received> {
    const from = this.pos;
    const to = from + events.length;
    this.raw.send({ type: 'events', from, to, toId: events[events.length - 1]?.id, events });
    const answer = await this.raw.next((m) => m.type === 'ack' || m.type === 'error');
    if (answer.type === 'ack') this.pos = answer.to as number;
    return answer;
  }

  /** Pulls the server's log from the start, acking every batch, until it says caught up. */
  async pullAll(timeoutMs = 10_000): Promise<StoredEventRecord[]> {
    this.raw.send({ type: 'pull' });
    const events: StoredEventRecord[] = [];
    for (let i = 0; i < 100_000; i++) {
      const batch = await this.raw.nextOfType('events', timeoutMs);
      events.push(...(batch.events as StoredEventRecord[]));
      this.raw.send({ type: 'ack', to: batch.to });
      if (batch.caughtUp === true) return events;
    }
    throw new Error('pullAll did not finish');
  }

  close(): void {
    this.raw.close();
  }
}

/** GET a path on the server's HTTP side. */
export function httpGet(
  server: SyncServer,
  path: string,
): Promise<{ status: number; body: string; type: string }> {
  const url = new URL(path, server.url.replace('ws:', 'http:'));
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until `check` holds, polling; fails after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
