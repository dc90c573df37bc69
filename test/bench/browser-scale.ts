/**
 * `npm run bench -- scale` (issue 14, item 7): one log of SCALE_EVENTS (1,000,000) events on
 * disk in Chromium, as users have it (a fresh persistent profile). Not part of a plain
 * `npm run bench`: seeding alone takes minutes. It measures
 * (a) the batched append rate (100 per call, strict, in the worker) over the first and the last
 *     10,000 events of the log: does it hold as the log grows?
 * (b) a replay of the whole log into a projection on the page, with the JS heap sampled during
 *     it: memory should stay bounded by the projection's state and one page, not the log;
 * (c) page load → first state with a snapshot, beside a worker that reads one record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/chromium.ts';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { pageLoads } from './browser.ts';
import { inWorker } from './browser-calls.ts';
import { type BenchResult, median, result } from './results.ts';

const SCALE_EVENTS = Number(process.env.BENCH_SCALE_EVENTS ?? 1_000_000);
const BLOCK = 10_000;
const MB = 1024 * 1024;

type PageBench = {
  bench: {
    callInWorker(method: string, args: unknown[]): Promise<unknown>;
    replayOnPage(
      db: string,
    ): Promise<{ ms: number; count: number; heapBefore: number; heapPeak: number }>;
  };
};

/** Chromium on the persistent profile folder `profile`, on disk as a user's browser has it. */
export function launchProfile(
  profile: string,
  args: readonly string[] = [],
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, ...args],
    headless: true,
  });
}

/** The bench page of the built server at `url`, ready for inWorker calls. */
export async function openBenchPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(30 * 60_000);
  await page.goto(`${url}/test/browser/fixtures/bench.html`);
  await page.waitForFunction(() => document.title === 'ready');
  return page;
}

export async function runScaleBenches(): Promise<BenchResult[]> {
  const server = await startBuiltServer([
    'test/browser/fixtures/bench.html',
    'test/browser/fixtures/cold.html',
    'test/browser/fixtures/baseline.html',
  ]);
  const profile = mkdtempSync(join(tmpdir(), 'chronicle-scale-profile-'));
  const context = await launchProfile(profile, ['--enable-precise-memory-info']);
  const db = `scale-${Date.now().toString(36)}`;
  const k = `${SCALE_EVENTS / 1000}k`;
  try {
    const page = await openBenchPage(context, server.url);

    const started = Date.now();
    const blocks = await inWorker(page, 'storeScaleSeed', db, SCALE_EVENTS, BLOCK);
    const seeded = Date.now() - started;
    const rate = (ms: number) => (BLOCK / ms) * 1000;
    // Medians of the first and the last few blocks: one block is a second or so on a noisy box.
    const first = rate(median(blocks.slice(0, 3)));
    const last = rate(median(blocks.slice(-3)));

    const replay = async () =>
      page.evaluate((name) => (window as unknown as PageBench).bench.replayOnPage(name), db);
    const replays = [await replay(), await replay()];
    const fastest = replays.reduce((a, b) => (a.ms <= b.ms ? a : b));
    if (fastest.count !== SCALE_EVENTS) {
      throw new Error(`replayed ${fastest.count} events of ${SCALE_EVENTS}`);
    }
    const growth = Math.max(...replays.map((r) => r.heapPeak - r.heapBefore));

    // The first fold of 'board' writes its snapshots; the page loads then start from the last.
    await inWorker(page, 'storeOpenAndFold', db, 'board');
    const loads = await pageLoads(context, server.url, db, [
      'rawWorker',
      'withSnapshot',
      'peekWithSnapshot',
    ]);
    return [
      result(
        `chromium scale: appends ×100, strict, in-worker, the last 10k of ${k}`,
        'events/s',
        last,
        first,
        `baseline: the first 10k of the same log; seeding ${k} took ${(seeded / 1000).toFixed(0)} s`,
      ),
      result(
        `chromium scale: replay ${k} into a projection, on the page`,
        'events/s',
        (SCALE_EVENTS / fastest.ms) * 1000,
        undefined,
        'open + fold, no snapshot; faster of two',
      ),
      result(
        `chromium scale: JS heap growth during the replay of ${k}`,
        'MB',
        growth / MB,
        undefined,
        'peak usedJSHeapSize (sampled every 10k events) minus before the open; the log is far larger',
      ),
      result(
        `chromium scale: page load → first state ${k}, with snapshot`,
        'ms',
        loads.withSnapshot,
        loads.rawWorker,
        'navigation start → state on the page (lean worker); baseline: a worker reads one record',
      ),
      result(
        `chromium scale: page load → first state ${k}, with snapshot, peekState on the page`,
        'ms',
        loads.peekWithSnapshot,
        loads.rawWorker,
        'baseline: a worker reads one record',
      ),
    ];
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await server.close();
  }
}
