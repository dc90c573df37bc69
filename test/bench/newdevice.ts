/**
 * `npm run bench -- newdevice` (issue 18, part 3: "time for a new device to show the board for a
 * 1M-event space, against today's full catch-up"): the built demo, as `npm start` serves it,
 * opened on a fresh on-disk Chromium profile once its space holds BENCH_NEWDEVICE_EVENTS events
 * (default 100,000; the figure is 1,000,000) of the demo's mix (size-events.ts).
 *
 * A Node store appends the mix, signed as a device sends it, 100 events an appendMany, and syncs
 * it through the demo's own sync server (SQLite, wire compression as the demo runs it). Then
 * each run opens the demo in a new profile and times, from navigation:
 * - the first card on the board;
 * - the whole board: as many cards as the board projection of the same events holds, folded in
 *   Node, with the page saying it is up to date.
 * This is today's full catch-up: the new device downloads and stores every event, then shows the
 * board. Joining from a server-side snapshot (docs/storage-growth.md) will run beside it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import WebSocket from 'ws';
import { DEMO_SPACE, startDemo } from '../../demo/server/app.ts';
import { buildDemo } from '../../demo/server/build.ts';
import { boardProjection } from '../../demo/src/board.ts';
import { memoryStorage, openStore } from '../../src/index.ts';
import { silentLogger } from '../../src/server/index.ts';
import { webSocketTransport } from '../../src/sync/transports/websocket.ts';
import { launchProfile } from './browser-scale.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { waitUntil } from './sync-server.ts';

const EVENTS = Number(process.env.BENCH_NEWDEVICE_EVENTS ?? 100_000);
const RUNS = Number(process.env.BENCH_NEWDEVICE_RUNS ?? 3);

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

export async function runNewDeviceBenches(): Promise<BenchResult[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'chronicle-bench-newdevice-'));
  await buildDemo(join(tmp, 'dist'));
  const demo = await startDemo({
    distDir: join(tmp, 'dist'),
    dataDir: join(tmp, 'data'),
    log: silentLogger,
  });
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
    const runs: Run[] = [];
    for (let r = 0; r < RUNS; r++) {
      const profile = join(tmp, `profile-${r}`);
      runs.push(await openNewDevice(demo.url, cards, profile));
      rmSync(profile, { recursive: true, force: true });
    }
    const n = EVENTS >= 1_000_000 ? `${EVENTS / 1_000_000}M` : `${EVENTS / 1000}k`;
    const note = `the demo (npm start) on a fresh on-disk Chromium profile, ${cards} cards; full catch-up; filling the space took ${fillSeconds.toFixed(0)} s`;
    return [
      result(
        `newdevice: ${n}-event space, the first card on the board`,
        'ms',
        median(runs.map((r) => r.firstCardMs)),
        undefined,
        note,
      ),
      result(
        `newdevice: ${n}-event space, the whole board, up to date`,
        'ms',
        median(runs.map((r) => r.boardMs)),
        undefined,
        note,
      ),
    ];
  } finally {
    await connection.close().catch(() => {});
    await writer.close().catch(() => {});
    await demo.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
