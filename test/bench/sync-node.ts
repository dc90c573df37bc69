/**
 * Sync benchmarks in Node, against a real sync server on 127.0.0.1 (port 0, a temporary SQLite
 * file under os.tmpdir(), removed after):
 * (a) catch-up: two stores on memoryStorage holding 50,000 distinct events each, connected
 *     through the server, until both hold all 100,000: time, and bytes on the wire each way
 *     (UTF-8 length of every message text, counted in a wrapping Transport). Beside it, in the
 *     same run, Yjs syncing the same events as a Y.Array on two docs (state vector + update each
 *     way, in memory). Where the time goes: when the server held everything, the CPU time of the
 *     server's process and of the clients' (server in a child), and the same catch-up store to
 *     store over a memory transport (no server, no socket). Two baselines with a server in the
 *     path, each in a child process as ours (sync-baselines.ts): a raw durable relay (JSON.parse,
 *     one SQLite FULL transaction per message, ack, forward the text; no validation), the floor
 *     of any server that commits before it forwards; and Yjs through a server shaped as
 *     y-websocket with persistence (each update stored, applied to the room doc, forwarded).
 * (b) server ingest: 50 raw protocol writers (as test/server/helpers.ts, pre-encoded messages,
 *     up to maxInFlightBatches batches in flight each) pushing concurrently: events/s committed.
 * (c) latency from append on store A to B's subscribe callback, 100 clients connected (A, B and
 *     98 raw readers that pull and ack everything): p50 and p99.
 * Medians of RUNS runs for (a) and (b). Every loop is bounded; every wait has a deadline.
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import type { JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { encodeHlc } from '../../src/core/hlc.ts';
import { Cursor, type EventId, ReplicaId, Seq } from '../../src/core/ids.ts';
import { type EventStore, memoryStorage, memoryTransportPair, openStore } from '../../src/index.ts';
import { encodeMessage } from '../../src/sync/messages.ts';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { type BenchResult, median, percentile, result } from './results.ts';
import { sampleEvent } from './store-node.ts';
import { type BaselineRun, fillYjs, relayCatchUp, yjsServerCatchUp } from './sync-baselines.ts';
import {
  type BenchServer,
  type ByteCount,
  counting,
  filledStore,
  headReader,
  SPACE,
  serveAsServerChild,
  startChildServer,
  startServer,
  syncUrl,
  waitUntil,
  wsTransport,
} from './sync-server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CATCHUP_EVENTS = Number(process.env.BENCH_SYNC_EVENTS ?? 50_000);
const WRITERS = 50;
const LATENCY_CLIENTS = 100;
const LATENCY_SAMPLES = Number(process.env.BENCH_SYNC_LATENCY_SAMPLES ?? 300);

// ---- helpers ---------------------------------------------------------------------------------

/**
 * The same server in a child process (this file, run with BENCH_SYNC_SERVER_CHILD=1), as it runs
 * in production: its own process, so its work does not queue behind the clients' on one thread.
 */
function startServerChild(): Promise<BenchServer> {
  return startChildServer(
    fileURLToPath(import.meta.url),
    { BENCH_SYNC_SERVER_CHILD: '1' },
    'the server child',
  );
}

if (process.env.BENCH_SYNC_SERVER_CHILD === '1') await serveAsServerChild(await startServer());

// ---- (a) catch-up ----------------------------------------------------------------------------

interface CatchUpRun {
  ms: number;
  /** When the server held all events (its ingest done). */
  serverMs: number;
  aMs: number;
  bMs: number;
  a: ByteCount;
  b: ByteCount;
  /** CPU time of this process (both stores) during the catch-up, ms. */
  clientCpuMs: number;
  /** CPU time of the server's process during the catch-up, ms (server in a child only). */
  serverCpuMs: number | undefined;
}

async function ourCatchUp(serverInChild: boolean): Promise<CatchUpRun> {
  const n = CATCHUP_EVENTS;
  const a = await filledStore('a', 0, n);
  const b = await filledStore('b', n, n);
  const headA = await headReader(a.storage);
  const headB = await headReader(b.storage);
  const t = serverInChild ? await startServerChild() : await startServer();
  const space = await t.storage.openSpace(SPACE);
  const bytesA: ByteCount = { sent: 0, received: 0 };
  const bytesB: ByteCount = { sent: 0, received: 0 };
  let serverMs = 0;
  let aMs = 0;
  let bMs = 0;
  try {
    const serverCpu = await t.cpuMs?.();
    const clientCpu = process.cpuUsage();
    const start = performance.now();
    const connA = a.store.sync.connect(counting(wsTransport(t, 'alice'), bytesA));
    const connB = b.store.sync.connect(counting(wsTransport(t, 'bob'), bytesB));
    await waitUntil(
      async () => {
        const now = performance.now() - start;
        if (serverMs === 0 && (await space.headPos()) >= 2 * n) serverMs = now;
        if (aMs === 0 && (await headA.head()) >= 2 * n) aMs = now;
        if (bMs === 0 && (await headB.head()) >= 2 * n) bMs = now;
        return aMs > 0 && bMs > 0;
      },
      'the catch-up through the server',
      120_000,
    );
    const ms = performance.now() - start;
    const { user, system } = process.cpuUsage(clientCpu);
    const serverCpuMs =
      serverCpu === undefined ? undefined : ((await t.cpuMs?.()) ?? serverCpu) - serverCpu;
    await connA.close();
    await connB.close();
    const clientCpuMs = (user + system) / 1000;
    return { ms, serverMs, aMs, bMs, a: bytesA, b: bytesB, clientCpuMs, serverCpuMs };
  } finally {
    await headA.close();
    await headB.close();
    await a.store.close();
    await b.store.close();
    await t.stop();
  }
}

/** The same catch-up store to store over a memory transport: the client side alone. */
async function directCatchUp(): Promise<number> {
  const n = CATCHUP_EVENTS;
  const a = await filledStore('a', 0, n);
  const b = await filledStore('b', n, n);
  const headA = await headReader(a.storage);
  const headB = await headReader(b.storage);
  try {
    const [ta, tb] = memoryTransportPair();
    const start = performance.now();
    const connA = a.store.sync.connect(ta);
    const connB = b.store.sync.connect(tb);
    await waitUntil(
      async () => (await headA.head()) >= 2 * n && (await headB.head()) >= 2 * n,
      'the direct catch-up',
      120_000,
    );
    const ms = performance.now() - start;
    await connA.close();
    await connB.close();
    return ms;
  } finally {
    await headA.close();
    await headB.close();
    await a.store.close();
    await b.store.close();
  }
}

interface YjsRun {
  ms: number;
  aToB: number;
  bToA: number;
}

/**
 * Yjs: two docs whose Y.Array holds the same events (what the application appends: stream,
 * type, data), pushed 1,000 per transaction like the stores' appends; then state vector and
 * update each way. `stored`: the docs hold the stores' full stored events instead.
 */
function yjsCatchUp(content: (index: number) => unknown): YjsRun {
  const n = CATCHUP_EVENTS;
  const a = new Y.Doc();
  const b = new Y.Doc();
  fillYjs(a, 0, n, content);
  fillYjs(b, n, n, content);
  const start = performance.now();
  const svA = Y.encodeStateVector(a);
  const svB = Y.encodeStateVector(b);
  // Each side sends its state vector, then answers the other's with an update.
  const forB = Y.encodeStateAsUpdate(a, svB);
  const forA = Y.encodeStateAsUpdate(b, svA);
  Y.applyUpdate(b, forB);
  Y.applyUpdate(a, forA);
  const ms = performance.now() - start;
  if (a.getArray('events').length !== 2 * n || b.getArray('events').length !== 2 * n) {
    throw new Error('bench: the Yjs docs did not converge');
  }
  a.destroy();
  b.destroy();
  return { ms, aToB: svA.length + forB.length, bToA: svB.length + forA.length };
}

/** Full stored events as the stores hold them (ids, HLCs, cursors), for the second Yjs baseline. */
async function storedEvents(): Promise<StoredEventRecord[]> {
  const n = CATCHUP_EVENTS;
  const a = await filledStore('a', 0, n);
  const b = await filledStore('b', n, n);
  const all = [...(await a.store.read()), ...(await b.store.read())];
  await a.store.close();
  await b.store.close();
  // Plain JSON copies (the stores hand out frozen objects).
  return all.map((e) => JSON.parse(JSON.stringify(e)) as StoredEventRecord);
}

function appContent(i: number): unknown {
  const n = CATCHUP_EVENTS;
  const block = i < n ? `a-${Math.floor(i / 1000)}` : `b-${Math.floor((i - n) / 1000)}`;
  return { stream: `stream-${block}`, ...sampleEvent(i) };
}

/** JSON.stringify + JSON.parse of the stored events, the floor of any JSON protocol. */
function jsonCost(events: StoredEventRecord[]): number {
  const start = performance.now();
  for (let i = 0; i < events.length; i += 500) {
    const text = JSON.stringify({ type: 'events', events: events.slice(i, i + 500) });
    JSON.parse(text);
  }
  return performance.now() - start;
}

async function catchUpBenches(): Promise<BenchResult[]> {
  const ours: CatchUpRun[] = [];
  const child: CatchUpRun[] = [];
  const direct: number[] = [];
  const yjs: YjsRun[] = [];
  const yjsStored: YjsRun[] = [];
  const json: number[] = [];
  const relay: BaselineRun[] = [];
  const yjsServer: BaselineRun[] = [];
  const stored = await storedEvents();
  const n = CATCHUP_EVENTS;
  for (let run = 0; run < RUNS; run++) {
    yjs.push(yjsCatchUp(appContent));
    yjsStored.push(yjsCatchUp((i) => stored[i]));
    json.push(jsonCost(stored));
    ours.push(await ourCatchUp(false));
    child.push(await ourCatchUp(true));
    direct.push(await directCatchUp());
    relay.push(await relayCatchUp(stored.slice(0, n), stored.slice(n, 2 * n)));
    yjsServer.push(await yjsServerCatchUp(appContent, n));
    const last = ours[ours.length - 1]!;
    const ms = (runs: { ms: number }[]) => Math.round(runs[runs.length - 1]!.ms);
    console.error(
      `  catch-up run ${run + 1}: ours ${Math.round(last.ms)} ms (server held all at ${Math.round(last.serverMs)} ms), ` +
        `server in a child process ${ms(child)} ms, direct ${Math.round(direct[direct.length - 1]!)} ms, ` +
        `raw relay floor ${ms(relay)} ms, Yjs through a server ${ms(yjsServer)} ms, Yjs ${ms(yjs)} ms`,
    );
  }
  const mb = (bytes: number) => bytes / 1e6;
  const m = (values: number[]) => median(values);
  const up = m(ours.map((r) => (r.a.sent + r.b.sent) / 2));
  const down = m(ours.map((r) => (r.a.received + r.b.received) / 2));
  const yjsEachWay = m(yjs.map((r) => (r.aToB + r.bToA) / 2));
  const yjsStoredEachWay = m(yjsStored.map((r) => (r.aToB + r.bToA) / 2));
  const label = `sync/catch-up 2 × ${n} events`;
  return [
    result(
      `${label}: time through the server`,
      'ms',
      m(ours.map((r) => r.ms)),
      m(yjs.map((r) => r.ms)),
      'baseline: Yjs Y.Array of the same events (stream, type, data), in memory, same run',
    ),
    result(
      `${label}: bytes sent per client (up)`,
      'MB',
      mb(up),
      mb(yjsEachWay),
      'UTF-8 of every message a client sent; baseline: Yjs state vector + update, one way',
    ),
    result(
      `${label}: bytes received per client (down)`,
      'MB',
      mb(down),
      mb(yjsEachWay),
      'UTF-8 of every message a client received',
    ),
    result(
      `${label}: time, vs Yjs on full stored events`,
      'ms',
      m(ours.map((r) => r.ms)),
      m(yjsStored.map((r) => r.ms)),
      'baseline: Yjs Y.Array holding the stored events (ids, hlc, cursor...)',
    ),
    result(`${label}: bytes up, vs Yjs on full stored events`, 'MB', mb(up), mb(yjsStoredEachWay)),
    result(
      `${label}: time, server in its own process`,
      'ms',
      m(child.map((r) => r.ms)),
      m(yjs.map((r) => r.ms)),
      'the same through a server run as a child process (as deployed); baseline Yjs',
    ),
    result(
      `${label}: server CPU, server in its own process`,
      'ms',
      m(child.map((r) => r.serverCpuMs ?? 0)),
      m(yjs.map((r) => r.ms)),
      "user + system CPU of the server's process during the catch-up (less noisy than time)",
    ),
    result(
      `${label}: client CPU, both stores`,
      'ms',
      m(child.map((r) => r.clientCpuMs)),
      m(yjs.map((r) => r.ms)),
      'CPU of the process holding both stores, server in its own; Yjs also runs both docs on one thread',
    ),
    result(
      `${label}: server held all events`,
      'ms',
      m(ours.map((r) => r.serverMs)),
      undefined,
      'time from connect until the server committed both logs (server in this process)',
    ),
    result(
      `${label}: store to store, memory transport`,
      'ms',
      m(direct),
      m(yjs.map((r) => r.ms)),
      'no server and no socket: the client side alone; baseline Yjs',
    ),
    result(
      `${label}: JSON stringify + parse of the events once`,
      'ms',
      m(json),
      undefined,
      'the floor of a JSON protocol, per hop',
    ),
    result(
      `${label}: raw durable relay (floor)`,
      'ms',
      m(relay.map((r) => r.ms)),
      m(yjs.map((r) => r.ms)),
      'JSON + SQLite FULL + relay, no validation: the floor of a durable server in the path ' +
        '(server in a child, 1,000 events a message, 4 in flight); baseline Yjs in memory',
    ),
    result(
      `${label}: Yjs through a server (y-websocket shape)`,
      'ms',
      m(yjsServer.map((r) => r.ms)),
      m(yjs.map((r) => r.ms)),
      'server in a child holds the room doc, persists each update (SQLite FULL), applies and ' +
        'forwards it; state vector + update each way; baseline Yjs in memory',
    ),
    result(
      `${label}: time, server in its own process, vs Yjs through a server`,
      'ms',
      m(child.map((r) => r.ms)),
      m(yjsServer.map((r) => r.ms)),
      'ours with its server as a child; baseline Yjs through a server, also a child',
    ),
    result(
      `${label}: time, server in its own process, vs the raw relay floor`,
      'ms',
      m(child.map((r) => r.ms)),
      m(relay.map((r) => r.ms)),
      'ours with its server as a child; baseline the raw durable relay',
    ),
    result(
      `${label}: server CPU, raw durable relay (floor)`,
      'ms',
      m(relay.map((r) => r.serverCpuMs)),
      undefined,
      "user + system CPU of the relay's process during the catch-up",
    ),
    result(
      `${label}: client CPU, raw durable relay (floor)`,
      'ms',
      m(relay.map((r) => r.clientCpuMs)),
      undefined,
      'CPU of the process holding both relay clients (stringify, parse, push)',
    ),
    result(
      `${label}: server CPU, Yjs through a server`,
      'ms',
      m(yjsServer.map((r) => r.serverCpuMs)),
      undefined,
      "user + system CPU of the Yjs server's process during the catch-up",
    ),
    result(
      `${label}: client CPU, Yjs through a server`,
      'ms',
      m(yjsServer.map((r) => r.clientCpuMs)),
      undefined,
      'CPU of the process holding both client docs',
    ),
  ];
}

// ---- raw protocol clients for (b) and (c) ----------------------------------------------------

interface Received {
  type: string;
  [key: string]: unknown;
}

/** Opens a raw WebSocket, takes the server's hello, says hello; resolves with the socket. */
function rawConnect(
  t: BenchServer,
  sub: string,
  replica: string,
  head: number,
  onMessage: (m: Received, ws: WebSocket) => void,
): Promise<WebSocket> {
  const url = syncUrl(t, sub);
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('bench: raw client handshake timed out')),
      20_000,
    );
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Received;
      if (m.type === 'hello') {
        ws.send(
          JSON.stringify({
            type: 'hello',
            protocol: PROTOCOL_VERSION,
            replica,
            epoch: `epoch-${replica}`,
            head,
            seq: head,
            time: Date.now(),
          }),
        );
        clearTimeout(timer);
        resolve(ws);
        return;
      }
      onMessage(m, ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`bench: HTTP ${res.statusCode}`));
    });
  });
}

/** `count` valid stored events of `replica` (seqs 1..count), ~300 bytes of data each. */
function writerEvents(replica: string, count: number, offset: number): StoredEventRecord[] {
  const out: StoredEventRecord[] = [];
  const wall = Date.now() - 60_000;
  for (let i = 1; i <= count; i++) {
    const seq = Seq.make(i);
    const hlc = encodeHlc({ wall: wall + i, counter: 0 });
    const sample = sampleEvent(offset + i);
    out.push({
      id: `ev-${replica}-${i}` as EventId,
      type: sample.type,
      data: sample.data as JsonValue,
      stream: `stream-${replica}`,
      version: i,
      replica: replica as ReplicaId,
      seq,
      hlc,
      time: wall + i,
      cursor: Cursor.make(hlc, replica as ReplicaId, seq),
    });
  }
  return out;
}

// ---- (b) server ingest -----------------------------------------------------------------------

interface Writer {
  replica: string;
  messages: string[];
  /** `to` of each message, in order. */
  tos: number[];
  events: number;
}

function prepareWriter(index: number, count: number, batch: number): Writer {
  const replica = ReplicaId.make();
  const events = writerEvents(replica, count, index * count);
  const messages: string[] = [];
  const tos: number[] = [];
  for (let from = 0; from < count; from += batch) {
    const slice = events.slice(from, from + batch);
    const to = from + slice.length;
    messages.push(
      encodeMessage({
        type: 'events',
        from,
        to,
        toId: slice[slice.length - 1]!.id,
        events: slice,
      }),
    );
    tos.push(to);
  }
  return { replica, messages, tos, events: count };
}

/** Events per second the server commits from WRITERS writers pushing `perWriter` events each. */
async function ingestRun(perWriter: number, batch: number): Promise<number> {
  const t = await startServer();
  const writers = Array.from({ length: WRITERS }, (_, i) => prepareWriter(i, perWriter, batch));
  const window = 4; // DEFAULT_SYNC_LIMITS.maxInFlightBatches: what a store's session keeps in flight
  try {
    const done: Promise<void>[] = [];
    const starters: (() => void)[] = [];
    for (let w = 0; w < writers.length; w++) {
      const writer = writers[w]!;
      let next = 0;
      let acked = 0;
      let pulled = false;
      let go = false;
      let finish!: () => void;
      let fail!: (error: Error) => void;
      done.push(
        new Promise<void>((resolve, reject) => {
          finish = resolve;
          fail = reject;
        }),
      );
      const sendMore = (ws: WebSocket) => {
        while (go && pulled && next < writer.messages.length && next - acked < window) {
          ws.send(writer.messages[next]!);
          next += 1;
        }
      };
      const ws = await rawConnect(t, `writer-${w}`, writer.replica, writer.events, (m, socket) => {
        if (m.type === 'pull') {
          pulled = true;
          sendMore(socket);
        } else if (m.type === 'ack') {
          const to = m.to as number;
          while (acked < writer.tos.length && writer.tos[acked]! <= to) acked += 1;
          if (acked === writer.tos.length) finish();
          else sendMore(socket);
        } else if (m.type === 'error') {
          fail(new Error(`bench: writer refused: ${String(m.code)} ${String(m.message)}`));
        }
      });
      starters.push(() => {
        go = true;
        sendMore(ws);
      });
    }
    // Every writer has said hello; wait until the server pulled from all of them.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const start = performance.now();
    for (const s of starters) s();
    await Promise.race([
      Promise.all(done),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('bench: ingest timed out')), 120_000),
      ),
    ]);
    const ms = performance.now() - start;
    const total = writers.reduce((n, w) => n + w.events, 0);
    const head = await (await t.storage.openSpace(SPACE)).headPos();
    if (head !== total) throw new Error(`bench: server holds ${head} events, expected ${total}`);
    return (total * 1000) / ms;
  } finally {
    await t.stop();
  }
}

async function ingestBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const [perWriter, batch] of [
    [2_000, 100],
    [400, 10],
  ] as const) {
    const rates: number[] = [];
    for (let run = 0; run < RUNS; run++) rates.push(await ingestRun(perWriter, batch));
    console.error(`  ingest, batches of ${batch}: ${rates.map(Math.round).join(', ')} events/s`);
    out.push(
      result(
        `sync/server ingest, ${WRITERS} writers × ${perWriter} events, ${batch} per batch`,
        'events/s',
        median(rates),
        undefined,
        'raw protocol writers, 4 batches in flight each; SQLite synchronous=FULL, committed and acked',
      ),
    );
  }
  return out;
}

// ---- (c) latency -----------------------------------------------------------------------------

async function latencyBenches(): Promise<BenchResult[]> {
  const t = await startServer();
  const readers: WebSocket[] = [];
  const stores: EventStore[] = [];
  let readerEvents = 0;
  try {
    const a = await openStore({ name: 'a', storage: memoryStorage() });
    const b = await openStore({ name: 'b', storage: memoryStorage() });
    stores.push(a, b);
    const connA = a.sync.connect(wsTransport(t, 'alice'));
    const connB = b.sync.connect(wsTransport(t, 'bob'));
    for (let i = 0; i < LATENCY_CLIENTS - 2; i++) {
      const ws = await rawConnect(t, `reader-${i}`, ReplicaId.make(), 0, (m, socket) => {
        if (m.type !== 'events') return;
        readerEvents += (m.events as { data: unknown[] }).data.length;
        socket.send(JSON.stringify({ type: 'ack', to: m.to }));
      });
      ws.send(JSON.stringify({ type: 'pull' }));
      readers.push(ws);
    }
    await waitUntil(
      () => a.sync.status().state === 'idle' && b.sync.status().state === 'idle',
      'both stores idle',
      20_000,
      10,
    );
    if (t.server.connectionCount() !== LATENCY_CLIENTS) {
      throw new Error(`bench: ${t.server.connectionCount()} connections, not ${LATENCY_CLIENTS}`);
    }
    const waiting = new Map<string, (at: number) => void>();
    const off = b.subscribe((events) => {
      const at = performance.now();
      for (const e of events) waiting.get(e.id)?.(at);
    });
    const samples: number[] = [];
    const warmup = 20;
    for (let i = 0; i < warmup + LATENCY_SAMPLES; i++) {
      const id = `lat-${i}-${Math.random().toString(36).slice(2)}`;
      const delivered = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('bench: an event was not delivered')),
          10_000,
        );
        waiting.set(id, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
      const start = performance.now();
      await a.append('latency', { id, type: 'Ping', data: sampleEvent(i).data });
      const at = await delivered;
      waiting.delete(id);
      if (i >= warmup) samples.push(at - start);
      // A little idle time between samples, as between a user's actions.
      await new Promise((resolve) => setTimeout(resolve, 2 + (i % 7)));
    }
    off();
    // The raw readers got every event too: the server fanned each one out to 99 clients.
    const total = warmup + LATENCY_SAMPLES;
    await waitUntil(() => readerEvents >= total * readers.length, 'the readers', 10_000, 10);
    await connA.close();
    await connB.close();
    console.error(
      `  latency: p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms`,
    );
    const note = `${samples.length} samples, A and B stores + ${LATENCY_CLIENTS - 2} raw clients pulling everything`;
    return [
      result(
        `sync/latency append → delivery, ${LATENCY_CLIENTS} clients: p50`,
        'ms',
        percentile(samples, 50),
        undefined,
        note,
      ),
      result(
        `sync/latency append → delivery, ${LATENCY_CLIENTS} clients: p99`,
        'ms',
        percentile(samples, 99),
        undefined,
        note,
      ),
      result(
        `sync/latency append → delivery, ${LATENCY_CLIENTS} clients: max`,
        'ms',
        Math.max(...samples),
        undefined,
        note,
      ),
    ];
  } finally {
    for (const ws of readers) ws.terminate();
    for (const s of stores) await s.close();
    await t.stop();
  }
}

export async function runSyncNodeBenches(): Promise<BenchResult[]> {
  const only = process.env.BENCH_SYNC_PARTS ?? 'abc';
  const out: BenchResult[] = [];
  if (only.includes('a')) out.push(...(await catchUpBenches()));
  if (only.includes('b')) out.push(...(await ingestBenches()));
  if (only.includes('c')) out.push(...(await latencyBenches()));
  return out;
}
