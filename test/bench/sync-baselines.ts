/**
 * Two baselines for the catch-up bench (sync-node.ts, part (a)), each with its server in a child
 * process as ours runs (this file, forked with `--import tsx` and BENCH_BASELINE_CHILD set), its
 * SQLite file (WAL, synchronous=FULL) in a temporary directory under os.tmpdir(), removed at stop:
 * (i) a raw durable relay, the floor of any server that commits before it forwards: for each
 *     client message it JSON.parses it, inserts every event as a row in one transaction, acks the
 *     sender and forwards the same text to the other client. No validation, no dedupe beyond a
 *     UNIQUE index: it does less than any real server must. Clients send 1,000 events a message,
 *     at most 4 unacked.
 * (ii) Yjs through a server, shaped as y-websocket with a persistence adapter: the server holds
 *     the room's Y.Doc, persists each update it receives as a row before applying and forwarding
 *     it; y-protocols' sync handshake (state vector, then the update it asks for) each way.
 * Every wait has a deadline; every child is killed at stop. No side effects on import, except
 * as the child.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import WebSocket, { WebSocketServer } from 'ws';
import * as Y from 'yjs';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { forkBenchChild, serveParent, withDeadline } from './bench-child.ts';

type ChildKind = 'relay' | 'yjs';

/** Big enough for the Yjs baseline's one update per direction (~13 MB for 50,000 events). */
const MAX_PAYLOAD = 256 * 1024 * 1024;
/** Events per client message of the relay, and unacked messages a client keeps in flight. */
const RELAY_BATCH = 1000;
const RELAY_WINDOW = 4;
/** Rows per multi-row INSERT in the relay (prepared once). */
const ROWS_PER_INSERT = 25;
const DEADLINE_MS = 120_000;

// y-protocols' sync message kinds, the first byte of every binary frame.
const SYNC_STEP_1 = 0; // a state vector: "send me what I lack"
const SYNC_STEP_2 = 1; // the update answering a state vector
const UPDATE = 2; // an update forwarded as it arrived

export interface BaselineRun {
  ms: number;
  /** CPU time (user + system) of the server's process during the run, ms. */
  serverCpuMs: number;
  /** CPU time of this process (both clients) during the run, ms. */
  clientCpuMs: number;
}

/** Pushes `content(offset + i)` for i < n into doc's 'events' array, 1,000 per transaction. */
export function fillYjs(
  doc: Y.Doc,
  offset: number,
  n: number,
  content: (index: number) => unknown,
): void {
  const array = doc.getArray<unknown>('events');
  for (let i = 0; i < n; i += 1000) {
    doc.transact(() => {
      const items: unknown[] = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) items.push(content(offset + j));
      array.push(items);
    });
  }
}

function frame(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + payload.length);
  out[0] = kind;
  out.set(payload, 1);
  return out;
}

/**
 * Sync step 1 (a state vector) gets sync step 2 (the update it lacks) from `doc`, on either side;
 * anything else is an update: its payload.
 */
function answerOrUpdate(ws: WebSocket, doc: Y.Doc, data: unknown): Uint8Array | undefined {
  const bytes = data as Buffer;
  const payload = bytes.subarray(1);
  if (bytes[0] !== SYNC_STEP_1) return payload;
  ws.send(frame(SYNC_STEP_2, Y.encodeStateAsUpdate(doc, payload)));
  return undefined;
}

// ---- the child: servers ----------------------------------------------------------------------

function openDatabase(dir: string, kind: ChildKind): Database.Database {
  const db = new Database(join(dir, `${kind}.sqlite`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

function others(wss: WebSocketServer, self: WebSocket): WebSocket[] {
  return [...wss.clients].filter((c) => c !== self && c.readyState === WebSocket.OPEN);
}

function serveRelay(db: Database.Database, wss: WebSocketServer): void {
  db.exec(
    'CREATE TABLE events (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)',
  );
  const values = Array.from({ length: ROWS_PER_INSERT }, () => '(?, ?)').join(', ');
  const many = db.prepare(`INSERT OR IGNORE INTO events (id, body) VALUES ${values}`);
  const one = db.prepare('INSERT OR IGNORE INTO events (id, body) VALUES (?, ?)');
  const insertAll = db.transaction((events: { id: string }[]) => {
    let i = 0;
    for (; i + ROWS_PER_INSERT <= events.length; i += ROWS_PER_INSERT) {
      const args: string[] = [];
      for (let j = i; j < i + ROWS_PER_INSERT; j++) {
        args.push(events[j]!.id, JSON.stringify(events[j]));
      }
      many.run(args);
    }
    for (; i < events.length; i++) one.run(events[i]!.id, JSON.stringify(events[i]));
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const { events } = JSON.parse(String(data)) as { events: { id: string }[] };
      insertAll(events);
      ws.send(`{"ack":${events.length}}`);
      for (const other of others(wss, ws)) other.send(data as Buffer, { binary: false });
    });
  });
}

function serveYjsRoom(db: Database.Database, wss: WebSocketServer): void {
  db.exec('CREATE TABLE updates (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO updates (data) VALUES (?)');
  const doc = new Y.Doc();
  wss.on('connection', (ws) => {
    ws.send(frame(SYNC_STEP_1, Y.encodeStateVector(doc)));
    ws.on('message', (data) => {
      const payload = answerOrUpdate(ws, doc, data);
      if (payload === undefined) return;
      // Persisted before it is applied or forwarded: a client may count on what it was sent.
      insert.run(payload);
      Y.applyUpdate(doc, payload, ws);
      const forward = frame(UPDATE, payload);
      for (const other of others(wss, ws)) other.send(forward);
    });
  });
}

async function serveAsChild(kind: ChildKind, dir: string): Promise<void> {
  const db = openDatabase(dir, kind);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX_PAYLOAD });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  if (kind === 'relay') serveRelay(db, wss);
  else serveYjsRoom(db, wss);
  serveParent(
    `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    {},
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => {
          db.close();
          resolve();
        });
      }),
  );
}

const childKind = process.env.BENCH_BASELINE_CHILD;
if (childKind === 'relay' || childKind === 'yjs') {
  await serveAsChild(childKind, process.env.BENCH_BASELINE_DIR ?? '');
}

// ---- the bench process: the child's handle ---------------------------------------------------

interface BaselineServer {
  url: string;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startBaselineChild(kind: ChildKind): Promise<BaselineServer> {
  // The parent owns the directory, so it goes even if the child has to be killed.
  const dir = mkdtempSync(join(tmpdir(), `chronicle-bench-${kind}-`));
  try {
    const child = await forkBenchChild(
      fileURLToPath(import.meta.url),
      { BENCH_BASELINE_CHILD: kind, BENCH_BASELINE_DIR: dir },
      `the ${kind} child`,
    );
    return {
      url: child.url,
      cpuMs: () => child.ask('cpu'),
      async stop() {
        await child.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function connect(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { maxPayload: MAX_PAYLOAD });
  return withDeadline(
    new Promise<WebSocket>((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    }),
    20_000,
    'a baseline client to connect',
  );
}

// ---- (i) the raw durable relay -----------------------------------------------------------------

interface RelayClient {
  ws: WebSocket;
  own: readonly StoredEventRecord[];
  held: unknown[];
  messages: number;
  sent: number;
  acked: number;
}

function pump(c: RelayClient): void {
  while (c.sent < c.messages && c.sent - c.acked < RELAY_WINDOW) {
    const from = c.sent * RELAY_BATCH;
    c.ws.send(JSON.stringify({ events: c.own.slice(from, from + RELAY_BATCH) }));
    c.sent += 1;
  }
}

/**
 * Two clients holding `a` and `b` (a store's stored events each) exchange them through the raw
 * relay: from the first send until both hold all events and every message is acked.
 */
export async function relayCatchUp(
  a: readonly StoredEventRecord[],
  b: readonly StoredEventRecord[],
): Promise<BaselineRun> {
  const total = a.length + b.length;
  const server = await startBaselineChild('relay');
  const clients: RelayClient[] = [];
  try {
    for (const own of [a, b]) {
      // Both connected before the first send: the relay forwards only to who is there.
      const ws = await connect(server.url);
      const messages = Math.ceil(own.length / RELAY_BATCH);
      clients.push({ ws, own, held: [...own], messages, sent: 0, acked: 0 });
    }
    const complete = () => clients.every((c) => c.held.length >= total && c.acked === c.messages);
    const serverCpu = await server.cpuMs();
    const clientCpu = process.cpuUsage();
    const start = performance.now();
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        for (const c of clients) {
          c.ws.on('error', reject);
          c.ws.on('message', (data) => {
            const m = JSON.parse(String(data)) as { events?: unknown[]; ack?: number };
            if (m.events !== undefined) {
              for (const e of m.events) c.held.push(e);
            } else {
              c.acked += 1;
              pump(c);
            }
            if (complete()) resolve();
          });
        }
        for (const c of clients) pump(c);
      }),
      DEADLINE_MS,
      'the catch-up through the raw relay',
    );
    const ms = performance.now() - start;
    const { user, system } = process.cpuUsage(clientCpu);
    const serverCpuMs = (await server.cpuMs()) - serverCpu;
    for (const c of clients) {
      if (c.held.length !== total) {
        throw new Error(`bench: a relay client holds ${c.held.length} events, not ${total}`);
      }
    }
    return { ms, serverCpuMs, clientCpuMs: (user + system) / 1000 };
  } finally {
    for (const c of clients) c.ws.terminate();
    await server.stop();
  }
}

// ---- (ii) Yjs through a server -----------------------------------------------------------------

/**
 * Two docs filled as the in-memory Yjs baseline fills them (`n` items each from `content`, 1,000
 * per transaction) sync through the Yjs room server: from connect until both hold all 2n items.
 */
export async function yjsServerCatchUp(
  content: (index: number) => unknown,
  n: number,
): Promise<BaselineRun> {
  const docs = [new Y.Doc(), new Y.Doc()];
  fillYjs(docs[0]!, 0, n, content);
  fillYjs(docs[1]!, n, n, content);
  const length = (doc: Y.Doc) => doc.getArray('events').length;
  const server = await startBaselineChild('yjs');
  const sockets: WebSocket[] = [];
  try {
    const serverCpu = await server.cpuMs();
    const clientCpu = process.cpuUsage();
    const start = performance.now();
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        for (const doc of docs) {
          const ws = new WebSocket(server.url, { maxPayload: MAX_PAYLOAD });
          sockets.push(ws);
          ws.on('error', reject);
          ws.on('open', () => ws.send(frame(SYNC_STEP_1, Y.encodeStateVector(doc))));
          ws.on('message', (data) => {
            const payload = answerOrUpdate(ws, doc, data);
            if (payload === undefined) return;
            Y.applyUpdate(doc, payload, ws);
            if (docs.every((d) => length(d) >= 2 * n)) resolve();
          });
        }
      }),
      DEADLINE_MS,
      'the Yjs catch-up through the server',
    );
    const ms = performance.now() - start;
    const { user, system } = process.cpuUsage(clientCpu);
    const serverCpuMs = (await server.cpuMs()) - serverCpu;
    const [svA, svB] = docs.map((d) => Buffer.from(Y.encodeStateVector(d)));
    if (docs.some((d) => length(d) !== 2 * n) || !svA!.equals(svB!)) {
      throw new Error(`bench: the Yjs docs did not converge through the server`);
    }
    return { ms, serverCpuMs, clientCpuMs: (user + system) / 1000 };
  } finally {
    for (const ws of sockets) ws.terminate();
    for (const d of docs) d.destroy();
    await server.stop();
  }
}
