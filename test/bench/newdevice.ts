/**
 * `npm run bench -- newdevice` (issue 18, part 3: "time for a new device to show the board for a
 * 1M-event space, against today's full catch-up"): the built demo, as `npm start` serves it,
 * opened on a fresh on-disk Chromium profile once its space holds BENCH_NEWDEVICE_EVENTS events
 * (default 100,000; the issue's figure is 1,000,000) of the demo's mix (size-events.ts).
 *
 * A Node store appends the mix, signed as a device sends it, 100 events an appendMany, and syncs
 * it through the demo's own sync server (SQLite, wire compression as the demo runs it). Then
 * each run opens the demo in a new profile and times, from navigation:
 * - the first card on the board;
 * - the whole board: as many cards as the board projection of the same events holds, folded in
 *   Node, with the page saying it is up to date.
 * Two ways in, side by side in the same run:
 * - replay (`?join=replay`): the full catch-up; the new device downloads and stores every event;
 * - snapshot (the demo's default): the device joins from the server's snapshot of the board
 *   (docs/storage-growth.md parts 3 and 4) and downloads the events after it. The bench waits
 *   until the server's snapshotter is done with the space (its newest snapshot less than
 *   `every`, 10,000 events, behind the head), as a space that has been live for a while would be.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BrowserContext } from 'playwright-core';
import WebSocket from 'ws';
import { DEMO_SPACE, startDemo } from '../../demo/server/app.ts';
import { buildDemo } from '../../demo/server/build.ts';
import { boardProjection } from '../../demo/src/board.ts';
import { memoryStorage, openStore } from '../../src/index.ts';
import { silentLogger } from '../../src/server/index.ts';
import { decodeSnapshotBody } from '../../src/server/snapshot-codec.ts';
import { webSocketTransport } from '../../src/sync/transports/websocket.ts';
import { launchProfile } from './browser-scale.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { waitUntil } from './sync-server.ts';

const EVENTS = Number(process.env.BENCH_NEWDEVICE_EVENTS ?? 100_000);
const RUNS = Number(process.env.BENCH_NEWDEVICE_RUNS ?? 3);
/** The demo server's snapshotter's default `every` (SnapshotOptions). */
const SNAPSHOT_EVERY = 10_000;

/** The newest position the demo server's snapshots of its space cover (0: none yet). */
function snapshotPos(dataDir: string): number {
  const db = new Database(join(dataDir, 'demo.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare('SELECT max(pos) AS pos FROM space_snapshots WHERE space = ?')
      .get(DEMO_SPACE) as { pos: number | null } | undefined;
    return row?.pos ?? 0;
  } catch {
    return 0; // the table is made by the snapshotter's first write
  } finally {
    db.close();
  }
}

/** The size of the newest snapshot's JSON as a joining device receives it, and deflated as stored. */
async function snapshotBytes(dataDir: string): Promise<{ json: number; stored: number }> {
  const db = new Database(join(dataDir, 'demo.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare(
        'SELECT pos, cursor, count, deflated, body FROM space_snapshots WHERE space = ? ORDER BY pos DESC LIMIT 1',
      )
      .get(DEMO_SPACE) as
      | { pos: number; cursor: string; count: number; deflated: number; body: Buffer }
      | undefined;
    if (row === undefined) return { json: 0, stored: 0 };
    const body = await decodeSnapshotBody(row.body, row.deflated === 1);
    const { pos, cursor, count } = row;
    return {
      json: JSON.stringify({ pos, cursor, count, ...body }).length,
      stored: row.body.length,
    };
  } finally {
    db.close();
  }
}

interface Run {
  firstCardMs: number;
  boardMs: number;
}

async function openNewDevice(url: string, cards: number, profile: string): Promise<Run> {
  const context: BrowserContext = await launchProfile(profile);
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(60 * 60_000);
    const start = performance.now();
    await page.goto(url);
    await page.waitForFunction(
      () => document.querySelector('#board .card .card-title') !== null,
      undefined,
      {
        polling: 20,
      },
    );
    const firstCardMs = performance.now() - start;
    await page.waitForFunction(
      (expected) => {
        const status = document.getElementById('sync-status');
        return (
          document.querySelectorAll('#board .card .card-title').length === expected &&
          status?.dataset.state === 'idle' &&
          status.dataset.pending === '0'
        );
      },
      cards,
      { polling: 100 },
    );
    return { firstCardMs, boardMs: performance.now() - start };
  } finally {
    await context.close();
  }
}

/** What filling a space found, kept beside its data when BENCH_NEWDEVICE_DATA names a folder. */
interface Filled {
  events: number;
  cards: number;
  fillSeconds: number;
  snapshotSeconds: number;
}

/**
 * Fills the demo's space in `dataDir` with EVENTS events of the mix through the running demo's
 * server, and waits for its snapshot.
 */
async function fill(demo: Awaited<ReturnType<typeof startDemo>>, dataDir: string): Promise<Filled> {
  const writer = await openStore({
    name: 'newdevice-writer',
    storage: memoryStorage(),
    projections: [boardProjection],
  });
  const server = demo.backend.server;
  if (server === undefined) throw new Error('bench: the demo runs no sync server of its own');
  const connection = writer.sync.connect(
    webSocketTransport(server.url, {
      token: demo.backend.mintToken(DEMO_SPACE),
      WebSocket: WebSocket as never,
    }),
  );
  try {
    const started = performance.now();
    const mix = new DemoMix(20);
    for (let i = 0; i < EVENTS; i += 100) {
      const batch = Array.from({ length: Math.min(100, EVENTS - i) }, () => mix.next());
      await writer.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
    }
    await waitUntil(
      () => writer.sync.status().pending === 0,
      'the writer to sync',
      60 * 60_000,
      50,
    );
    const fillSeconds = (performance.now() - started) / 1000;
    const board = await writer.state(boardProjection);
    const columns = new Set(Object.keys(board.columns));
    const cards = Object.values(board.cards).filter((c) => columns.has(c.column)).length;
    // The writer holds the whole log in memory (1M events: gigabytes), in the process that also
    // runs the demo's server and its snapshotter, which then crawled in garbage collection.
    await connection.close();
    await writer.close();
    // The snapshotter builds at the head it finds once `every` events came after its newest
    // snapshot (snapshotter.ts invariant 2), not at multiples of `every`: it is done with the
    // space once its newest snapshot is less than `every` behind the head.
    const folded = Math.max(1, EVENTS - SNAPSHOT_EVERY + 1);
    const snapshotStarted = performance.now();
    await waitUntil(
      () => snapshotPos(dataDir) >= folded,
      'the server to snapshot the space',
      60 * 60_000,
      500,
    );
    const snapshotSeconds = (performance.now() - snapshotStarted) / 1000;
    return { events: EVENTS, cards, fillSeconds, snapshotSeconds };
  } finally {
    await connection.close().catch(() => {});
    await writer.close().catch(() => {});
  }
}

export async function runNewDeviceBenches(): Promise<BenchResult[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'chronicle-bench-newdevice-'));
  // BENCH_NEWDEVICE_DATA: a folder that keeps the filled space (1M events: 15 minutes to fill)
  // for the next run of the same size.
  const kept = process.env.BENCH_NEWDEVICE_DATA;
  const dataDir = kept === undefined ? join(tmp, 'data') : join(kept, `${EVENTS}`);
  const filledFile = join(dataDir, 'filled.json');
  await buildDemo(join(tmp, 'dist'));
  const demo = await startDemo({ distDir: join(tmp, 'dist'), dataDir, log: silentLogger });
  try {
    const filled: Filled = existsSync(filledFile)
      ? (JSON.parse(readFileSync(filledFile, 'utf8')) as Filled)
      : await fill(demo, dataDir);
    if (kept !== undefined) writeFileSync(filledFile, JSON.stringify(filled));
    const { cards, fillSeconds, snapshotSeconds } = filled;
    const size = await snapshotBytes(dataDir);
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    const progress = (text: string) => console.error(`newdevice (${EVENTS} events): ${text}`);
    progress(
      `filled in ${fillSeconds.toFixed(0)} s, ${cards} cards; snapshot ${mb(size.json)} of JSON (${Math.round(size.json / cards)} B a card), ${mb(size.stored)} deflated`,
    );
    const replay: Run[] = [];
    const joined: Run[] = [];
    const ways = (process.env.BENCH_NEWDEVICE_WAYS ?? 'replay,snapshot').split(',');
    // Alternating, so that both see the same machine load over the runs.
    for (let r = 0; r < RUNS; r++) {
      for (const [way, runs, url] of [
        ['replay', replay, `${demo.url}?join=replay`],
        ['snapshot', joined, demo.url],
      ] as const) {
        if (!ways.includes(way)) continue;
        const profile = join(tmp, `profile-${r}`);
        const run = await openNewDevice(url, cards, profile);
        runs.push(run);
        progress(
          `${url} first card ${run.firstCardMs.toFixed(0)} ms, whole board ${run.boardMs.toFixed(0)} ms`,
        );
        rmSync(profile, { recursive: true, force: true });
      }
    }
    const n = EVENTS >= 1_000_000 ? `${EVENTS / 1_000_000}M` : `${EVENTS / 1000}k`;
    const note = `the demo (npm start) on a fresh on-disk Chromium profile, ${cards} cards; filling the space took ${fillSeconds.toFixed(0)} s, the server's snapshots ${snapshotSeconds.toFixed(0)} s more; the snapshot is ${mb(size.json)} of JSON (${mb(size.stored)} deflated on the server); ${RUNS} runs ${ways.length > 1 ? 'each way' : `(${ways.join('')} only)`}`;
    const line = (what: string, runs: Run[], key: keyof Run, baseline?: Run[]) =>
      result(
        `newdevice: ${n}-event space, ${what}`,
        'ms',
        median(runs.map((r) => r[key])),
        baseline === undefined || baseline.length === 0
          ? undefined
          : median(baseline.map((r) => r[key])),
        note,
      );
    const out: BenchResult[] = [];
    if (replay.length > 0) {
      out.push(line('the first card on the board, full catch-up (replay)', replay, 'firstCardMs'));
      out.push(line('the whole board, up to date, full catch-up (replay)', replay, 'boardMs'));
    }
    if (joined.length > 0) {
      out.push(
        line('the first card on the board, joined from a snapshot', joined, 'firstCardMs', replay),
      );
      out.push(
        line('the whole board, up to date, joined from a snapshot', joined, 'boardMs', replay),
      );
    }
    return out;
  } finally {
    await demo.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
