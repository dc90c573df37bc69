/**
 * Several `chronicle-server` processes on one PostgreSQL database, for the multi-server tests and
 * benchmark: each server reaches the database through a byte-counting TCP proxy of its own, so a
 * test can tell how much one server read from the database (e.g. at a restart); clients are
 * stores on memory storage with a real WebSocket transport over the servers' URL list.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import WebSocket from 'ws';
import {
  type EventStore,
  memoryStorage,
  openStore,
  type SyncConnection,
  type WebSocketTransport,
  webSocketTransport,
} from '../../src/index.ts';
import { frameJson } from '../../src/sync/binary-frame.ts';
import { spaceToken } from './helpers.ts';
import { storedRecords } from './postgres-helpers.ts';
import { exited, startServerProcess } from './server-process.ts';

export const SPACE = 'space-a';

/** Bytes PostgreSQL sent through a proxy, and statements the server ran, since `reset()`. */
export interface ByteCounter {
  fromDatabase: number;
  /** Simple queries and executions of prepared ones (frontend `Q` and `E` messages). */
  statements: number;
  /** The text of each query sent (`Q`) or prepared (`P`, once per statement by `pg`). */
  queries: string[];
  reset(): void;
}

/**
 * Counts the statements in a frontend (client → PostgreSQL) byte stream: after the startup
 * message (a length, no type byte), each message is a type byte and a length that counts itself.
 */
function statementCounter(
  onStatement: () => void,
  onQuery: (text: string) => void,
): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let started = false;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (!started) {
        if (pending.length < 4) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        // An SSLRequest (length 8, code 80877103) is followed by the real startup message.
        if (!(length === 8 && pending.readInt32BE(4) === 80877103)) started = true;
        pending = pending.subarray(length);
        continue;
      }
      if (pending.length < 5) return;
      const length = pending.readInt32BE(1);
      if (pending.length < 1 + length) return;
      const type = String.fromCharCode(pending[0]!);
      if (type === 'Q' || type === 'E') onStatement();
      if (type === 'Q' || type === 'P') {
        // Q: the text; P: the statement's name, then the text (both NUL-terminated).
        const body = pending.subarray(5, 1 + length);
        const start = type === 'Q' ? 0 : body.indexOf(0) + 1;
        onQuery(body.subarray(start, body.indexOf(0, start)).toString('utf8'));
      }
      pending = pending.subarray(1 + length);
    }
  };
}

/** A TCP proxy on 127.0.0.1 to `target` (host:port) that counts the bytes coming back. */
export async function countingProxy(
  target: { host: string; port: number },
  cleanups: (() => void | Promise<void>)[],
): Promise<{ port: number; counter: ByteCounter }> {
  const counter: ByteCounter = {
    fromDatabase: 0,
    statements: 0,
    queries: [],
    reset() {
      counter.fromDatabase = 0;
      counter.statements = 0;
      counter.queries = [];
    },
  };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk: Buffer) => {
      counter.fromDatabase += chunk.length;
    });
    client.on(
      'data',
      statementCounter(
        () => {
          counter.statements += 1;
        },
        (text) => counter.queries.push(text),
      ),
    );
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { port, counter };
}

/** A fresh database on the cluster at `url`; resolves with its connection string. */
export async function freshDatabase(
  url: string,
  cleanups: (() => void | Promise<void>)[],
): Promise<string> {
  const name = `multi_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await c.end();
  });
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

export interface ServerSlot {
  url: string;
  port: number;
  child: ChildProcess;
  /** What this server read from the database (through its proxy). */
  counter: ByteCounter;
  running: boolean;
}

/**
 * `count` server processes on the database at `databaseUrl`, each through its own counting
 * proxy (unless `proxy: false`); kill() and restart() keep a slot's port, so clients' URL lists stay valid.
 */
export async function startServers(
  databaseUrl: string,
  count: number,
  cleanups: (() => void | Promise<void>)[],
  options: { proxy?: boolean } = {},
) {
  const db = new URL(databaseUrl);
  const slots: ServerSlot[] = [];
  const proxied: string[] = [];
  for (let i = 0; i < count; i++) {
    if (options.proxy === false) {
      // Straight to the database (benchmarks): nothing counted.
      proxied.push(databaseUrl);
      const counter: ByteCounter = { fromDatabase: 0, statements: 0, queries: [], reset() {} };
      slots.push({ url: '', port: 0, child: undefined as never, counter, running: false });
      continue;
    }
    const { port, counter } = await countingProxy(
      { host: db.hostname, port: Number(db.port) },
      cleanups,
    );
    const viaProxy = new URL(databaseUrl);
    viaProxy.port = String(port);
    proxied.push(viaProxy.toString());
    slots.push({ url: '', port: 0, child: undefined as never, counter, running: false });
  }
  const start = async (i: number) => {
    const slot = slots[i]!;
    const { child, url } = await startServerProcess({ postgres: proxied[i]! }, cleanups, slot.port);
    slot.child = child;
    slot.url = url;
    slot.port = Number(new URL(url).port);
    slot.running = true;
  };
  // One at a time: the first creates the schema (the others would wait on its lock anyway).
  for (let i = 0; i < count; i++) await start(i);
  return {
    slots,
    urls: () => slots.map((s) => s.url),
    /** SIGKILL: no shutdown, connections cut by the kernel. */
    async kill(i: number) {
      const slot = slots[i]!;
      slot.child.kill('SIGKILL');
      await exited(slot.child);
      slot.running = false;
    },
    /** Starts slot i again on its port; its byte counter restarts from 0. */
    async restart(i: number) {
      slots[i]!.counter.reset();
      await start(i);
    },
  };
}

export function tokenFor(sub: string): string {
  return spaceToken(SPACE, sub, 3600);
}

/** A store's connection through `transport`, and what crossed it. */
export interface Client {
  name: string;
  store: EventStore;
  transport: WebSocketTransport;
  connection: SyncConnection;
  /** Times (performance.now()) of the acks the server sent on this connection. */
  acks: number[];
  /** Connections that ended, and when the last one did (performance.now()). */
  closes: number;
  closedAt: number;
  /** Events sent and received in `events` messages (re-sends included). */
  eventsSent: number;
  eventsReceived: number;
  /** The servers' hellos: the replica and epoch of the log they serve. */
  hellos: { replica: string; epoch: string }[];
}

/**
 * A store on memory storage (or `store`, given) connected through `urls`, taken in the order
 * given (the shuffle is pinned, so a test places clients); the reconnect backoff is the
 * controller's default.
 */
export async function openClient(
  name: string,
  urls: readonly string[],
  store?: EventStore,
): Promise<Client> {
  const s = store ?? (await openStore({ name, storage: memoryStorage() }));
  // random 0.99: the shuffle swaps nothing (websocket.ts), the list stays in the order given.
  const transport = webSocketTransport(urls, {
    token: tokenFor(name),
    WebSocket: WebSocket as never,
    random: () => 0.99,
  });
  const client: Client = {
    name,
    store: s,
    transport,
    connection: undefined as never,
    acks: [],
    closes: 0,
    closedAt: 0,
    eventsSent: 0,
    eventsReceived: 0,
    hellos: [],
  };
  transport.onMessage((text) => {
    const m = JSON.parse(text) as WireMessage;
    if (m.type === 'ack') client.acks.push(performance.now());
    if (m.type === 'hello') client.hellos.push({ replica: m.replica!, epoch: m.epoch! });
    client.eventsReceived += eventCount(m);
  });
  transport.onClose(() => {
    client.closes += 1;
    client.closedAt = performance.now();
  });
  // Binary frames (sync/binary-frame.ts) count as their JSON part says, as texts do.
  transport.onBinary?.((bytes) => {
    client.eventsReceived += eventCount(JSON.parse(frameJson(bytes)) as WireMessage);
  });
  const send = transport.send.bind(transport);
  transport.send = (text: string) => {
    send(text);
    client.eventsSent += eventCount(JSON.parse(text) as WireMessage);
  };
  const sendBinary = transport.sendBinary?.bind(transport);
  if (sendBinary !== undefined) {
    transport.sendBinary = (bytes: Uint8Array) => {
      sendBinary(bytes);
      client.eventsSent += eventCount(JSON.parse(frameJson(bytes)) as WireMessage);
    };
  }
  client.connection = s.sync.connect(transport);
  return client;
}

/** A wire message as far as these counts look: a batch's events are columns, `data` one per event. */
interface WireMessage {
  type?: string;
  events?: { data?: unknown[] };
  replica?: string;
  epoch?: string;
}

function eventCount(m: WireMessage): number {
  return m.type === 'events' ? (m.events?.data?.length ?? 0) : 0;
}

/** The given list rotated to start at `start`. */
export function rotated<T>(list: readonly T[], start: number): T[] {
  return [...list.slice(start), ...list.slice(0, start)];
}

/** Every event id the database holds for the space (rows and sealed blocks alike). */
export async function databaseIds(databaseUrl: string): Promise<string[]> {
  return (await storedRecords(databaseUrl, SPACE)).map((r) => r.event.id);
}

/** Bytes of the space's stored events (their JSON text): what a full re-read would fetch at least. */
export async function logBytes(databaseUrl: string): Promise<number> {
  const records = await storedRecords(databaseUrl, SPACE);
  return records.reduce((sum, r) => sum + Buffer.byteLength(JSON.stringify(r.event)), 0);
}
