/**
 * `npm run bench -- wire` (issue 18, part 1: "the wire may use the same encoding"): a new device's
 * catch-up of the demo's mix through a real server, with permessage-deflate off and on
 * (server/wire-compression.ts), side by side in one run.
 *
 * A writer store appends BENCH_WIRE_EVENTS (default 20,000) events of the demo's mix
 * (size-events.ts; signed, as a device sends them) and syncs them to a server on a SQLite file.
 * Then, for each setting, a server in a child process (as in production) serves that file, and a
 * fresh store on memoryStorage connects through `ws` (which offers permessage-deflate, as browsers
 * do) and catches up: the time until it holds every event, the bytes its TCP socket read (frames
 * as sent, compressed or not), and the CPU time of the server's process and of this one.
 * Medians of BENCH_RUNS (3) runs per setting, the settings interleaved.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { memoryStorage, openStore } from '../../src/index.ts';
import { createSyncServer, silentLogger, sqliteStorage } from '../../src/server/index.ts';
import { webSocketTransport } from '../../src/sync/transports/websocket.ts';
import { forkBenchChild, serveParent } from './bench-child.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { benchToken, headReader, SECRET, SPACE, waitUntil } from './sync-server.ts';

const EVENTS = Number(process.env.BENCH_WIRE_EVENTS ?? 20_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SETTINGS = ['off', 'level 1', 'level 6'] as const;
type Setting = (typeof SETTINGS)[number];

function wireCompressionOf(setting: Setting) {
  if (setting === 'off') return false;
  return { level: setting === 'level 1' ? 1 : 6 };
}

async function serveAsChild(): Promise<void> {
  const storage = sqliteStorage(process.env.BENCH_WIRE_DB!);
  const server = await createSyncServer({
    storage,
    auth: { secret: SECRET },
    log: silentLogger,
    wireCompression: wireCompressionOf(process.env.BENCH_WIRE_SETTING as Setting),
  });
  serveParent(server.url, {}, () => server.close());
}

if (process.env.BENCH_WIRE_CHILD === '1') await serveAsChild();

/** Fills `file` with the demo's mix, synced by a writer store through a server in this process. */
async function fill(file: string): Promise<void> {
  const storage = sqliteStorage(file);
  const server = await createSyncServer({ storage, auth: { secret: SECRET }, log: silentLogger });
  const store = await openStore({ name: 'wire-writer', storage: memoryStorage() });
  const connection = store.sync.connect(
    webSocketTransport(server.url, { token: benchToken('writer'), WebSocket: WebSocket as never }),
  );
  try {
    const mix = new DemoMix(18);
    for (let i = 0; i < EVENTS; i += 100) {
      const batch = Array.from({ length: Math.min(100, EVENTS - i) }, () => mix.next());
      await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
    }
    const log = await storage.openSpace(SPACE);
    await waitUntil(
      async () => (await log.headPos()) >= EVENTS && store.sync.status().pending === 0,
      'the writer to sync',
      10 * 60_000,
      20,
    );
  } finally {
    await connection.close();
    await store.close();
    await server.close();
  }
}

interface Run {
  ms: number;
  socketBytes: number;
  serverCpuMs: number;
  clientCpuMs: number;
}

async function catchUp(file: string, setting: Setting): Promise<Run> {
  const child = await forkBenchChild(
    fileURLToPath(import.meta.url),
    { BENCH_WIRE_CHILD: '1', BENCH_WIRE_DB: file, BENCH_WIRE_SETTING: setting },
    'the wire bench server',
  );
  const sockets: WebSocket[] = [];
  // ws's class, recording each socket so that its TCP byte count can be read.
  class Counted extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  const storage = memoryStorage();
  const store = await openStore({ name: `wire-reader-${setting}`, storage });
  const head = await headReader(storage);
  try {
    const serverCpu = await child.ask('cpu');
    const clientCpu = process.cpuUsage();
    const start = performance.now();
    const connection = store.sync.connect(
      webSocketTransport(child.url, { token: benchToken('reader'), WebSocket: Counted as never }),
    );
    await waitUntil(
      async () => (await head.head()) >= EVENTS,
      `the reader to catch up (${setting})`,
      10 * 60_000,
      5,
    );
    const ms = performance.now() - start;
    const { user, system } = process.cpuUsage(clientCpu);
    const serverCpuMs = (await child.ask('cpu')) - serverCpu;
    const socketBytes = sockets.reduce(
      (n, s) => n + ((s as unknown as { _socket?: { bytesRead: number } })._socket?.bytesRead ?? 0),
      0,
    );
    await connection.close();
    return { ms, socketBytes, serverCpuMs, clientCpuMs: (user + system) / 1000 };
  } finally {
    await head.close();
    await store.close();
    await child.stop();
  }
}

export async function runWireBenches(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-wire-'));
  const file = join(dir, 'server.sqlite');
  try {
    await fill(file);
    const runs = new Map<Setting, Run[]>(SETTINGS.map((s) => [s, []]));
    for (let r = 0; r < RUNS; r++) {
      for (const setting of SETTINGS) runs.get(setting)!.push(await catchUp(file, setting));
    }
    const med = (setting: Setting, pick: (run: Run) => number) =>
      median(runs.get(setting)!.map(pick));
    const out: BenchResult[] = [];
    const n = `${EVENTS / 1000}k`;
    for (const setting of SETTINGS) {
      const base = setting === 'off' ? undefined : 'off';
      const vs = (pick: (run: Run) => number) => (base === undefined ? undefined : med(base, pick));
      out.push(
        result(
          `wire: new device catch-up ${n} demo events, permessage-deflate ${setting}: bytes read`,
          'B/event',
          med(setting, (r) => r.socketBytes) / EVENTS,
          vs((r) => r.socketBytes / EVENTS),
          'TCP bytes the reader socket read; baseline: deflate off, same run',
        ),
        result(
          `wire: new device catch-up ${n} demo events, permessage-deflate ${setting}: time`,
          'ms',
          med(setting, (r) => r.ms),
          vs((r) => r.ms),
          'until the reader holds every event, 127.0.0.1; baseline: deflate off, same run',
        ),
        result(
          `wire: new device catch-up ${n} demo events, permessage-deflate ${setting}: server CPU`,
          'ms',
          med(setting, (r) => r.serverCpuMs),
          vs((r) => r.serverCpuMs),
          "the server child's user+system CPU during the catch-up; baseline: deflate off",
        ),
        result(
          `wire: new device catch-up ${n} demo events, permessage-deflate ${setting}: client CPU`,
          'ms',
          med(setting, (r) => r.clientCpuMs),
          vs((r) => r.clientCpuMs),
          "this process's CPU (the reader store); baseline: deflate off",
        ),
      );
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
