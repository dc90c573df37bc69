/**
 * Chromium benchmarks (issue 3), each beside a raw IndexedDB baseline run in the same browser and
 * the same run: (a) 10,000 appends, 100 per call; (b) 1,000 single appends, each awaited; both
 * with strict and relaxed durability; (c) replay of REPLAY_EVENTS events into a projection;
 * (d) cold start to the first projected state with REPLAY_EVENTS events, with and without a
 * snapshot, and from navigation start on a page as lean as an app's (fixtures/cold.html) beside
 * the raw browser's share of that (fixtures/baseline.html: a trivial module script; a minimal
 * worker reading one IndexedDB record, the page reading it on its main thread), and with
 * peekState reading the state on the page while the worker starts; (e) latency from append to
 * the watch callback with the new state. "in-worker" runs
 * the store in the worker's own thread; "via worker" calls it from the page through
 * connectStore, as apps do. Medians of RUNS runs; Debian's Chromium, headless, on a fresh
 * persistent profile: IndexedDB on disk, as users have it (an incognito context keeps it in
 * memory, where strict and relaxed durability cost the same and nothing reaches the disk).
 *
 * The page and its worker are a production build (Vite, bundled and minified, into a temporary
 * directory served statically), as users ship them: the dev server's one-request-per-module
 * loading would otherwise dominate every figure that includes starting a worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/chromium.ts';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { runAppendBenches } from './browser-appends.ts';
import { inWorker } from './browser-calls.ts';
import { startCatchUpServers } from './browser-catchup.ts';
import { type BenchResult, median, result } from './results.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REPLAY_EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);
const YJS_EDITS = Number(process.env.BENCH_YJS_EDITS ?? 10_000);
const CATCHUP_EVENTS = Number(process.env.BENCH_BROWSER_CATCHUP_EVENTS ?? 50_000);
/** Page loads per variant in (d): they vary more than the rest on a shared machine. */
const PAGE_LOADS = Number(process.env.BENCH_PAGE_LOADS ?? Math.max(RUNS, 5));
let dbs = 0;
const fresh = (label: string) => `bench-${label}-${Date.now().toString(36)}-${++dbs}`;

type Page$ = {
  bench: {
    callInWorker(method: string, args: unknown[]): Promise<unknown>;
    throughBatched(db: string, count: number, batch: number, d: string): Promise<number>;
    throughSingle(db: string, count: number, d: string): Promise<number>;
    throughColdStart(db: string, projection: string): Promise<{ ms: number; count: number }>;
    throughWatchLatency(db: string, samples: number): Promise<number[]>;
  };
};

async function medianOf(run: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < RUNS; i++) values.push(await run());
  return median(values);
}

/**
 * (d) from navigation start, in ms: each load a new page (a new tab), all in one context (the
 * HTTP cache and the code cache are warm after the first load, as on a returning visit). The
 * variants take turns, so that a noisy stretch of the shared machine hits them all alike.
 */
export async function pageLoads(
  context: BrowserContext,
  url: string,
  db: string,
  only?: readonly string[],
) {
  const paths = {
    script: 'baseline.html',
    rawWorker: `baseline.html?idb=${encodeURIComponent(db)}`,
    rawMain: `baseline.html?idb=${encodeURIComponent(db)}&main=1`,
    withSnapshot: `cold.html?db=${encodeURIComponent(db)}&projection=board`,
    withoutSnapshot: `cold.html?db=${encodeURIComponent(db)}&projection=board-nosnap`,
    peekWithSnapshot: `cold.html?db=${encodeURIComponent(db)}&projection=board&peek=1`,
    peekBeside: `cold.html?db=${encodeURIComponent(db)}&projection=board&peek=beside`,
    peekWithoutSnapshot: `cold.html?db=${encodeURIComponent(db)}&projection=board-nosnap&peek=1`,
  };
  const load = async (path: string) => {
    const page = await context.newPage();
    await page.goto(`${url}/test/browser/fixtures/${path}`);
    const r = (await (
      await page.waitForFunction(() => (window as unknown as { cold?: unknown }).cold, undefined, {
        timeout: 60_000,
      })
    ).jsonValue()) as { sinceNavigation?: number; error?: string; peekAnswered?: boolean };
    await page.close();
    if (r.sinceNavigation === undefined) throw new Error(`page load failed: ${r.error}`);
    // With a snapshot at the head, peekState must answer: else its figure would be the store's.
    if (path.includes('projection=board&peek') && r.peekAnswered !== true) {
      throw new Error(`peekState did not answer on ${path}`);
    }
    return r.sinceNavigation;
  };
  const times: Record<keyof typeof paths, number[]> = {
    script: [],
    rawWorker: [],
    rawMain: [],
    withSnapshot: [],
    withoutSnapshot: [],
    peekWithSnapshot: [],
    peekBeside: [],
    peekWithoutSnapshot: [],
  };
  const keys = (Object.keys(paths) as (keyof typeof paths)[]).filter(
    (k) => only === undefined || only.includes(k),
  );
  for (const key of keys) await load(paths[key]); // fills the HTTP and code caches
  for (let i = 0; i < PAGE_LOADS; i++) {
    for (const key of keys) times[key].push(await load(paths[key]));
  }
  const of = (values: number[]) => (values.length === 0 ? Number.NaN : median(values));
  return {
    script: of(times.script),
    rawWorker: of(times.rawWorker),
    rawMain: of(times.rawMain),
    withSnapshot: of(times.withSnapshot),
    withoutSnapshot: of(times.withoutSnapshot),
    peekWithSnapshot: of(times.peekWithSnapshot),
    peekBeside: of(times.peekBeside),
    peekWithoutSnapshot: of(times.peekWithoutSnapshot),
  };
}

/**
 * A new device catching up CATCHUP_EVENTS events from the sync server (browser-catchup.ts), in
 * the worker's thread, beside the raw baseline of the same events over a plain WebSocket.
 */
async function catchUpBenches(via: Page): Promise<BenchResult[]> {
  const servers = await startCatchUpServers(CATCHUP_EVENTS);
  try {
    const raw = await medianOf(() =>
      inWorker(via, 'rawCatchUp', fresh('raw-catchup'), servers.rawUrl, CATCHUP_EVENTS),
    );
    const store = (localFirst: boolean) =>
      medianOf(() =>
        inWorker(
          via,
          'storeCatchUp',
          fresh('store-catchup'),
          servers.syncUrl(`device-${++dbs}`),
          CATCHUP_EVENTS,
          localFirst,
        ),
      );
    const empty = await store(false);
    const afterLocal = await store(true);
    const perSec = (ms: number) => (CATCHUP_EVENTS / ms) * 1000;
    const label = `chromium: a new device catches up ${CATCHUP_EVENTS / 1000}k events`;
    return [
      result(
        `${label}, raw WebSocket + IndexedDB`,
        'events/s',
        perSec(raw),
        undefined,
        'plain JSON arrays of 2000 events, one strict transaction each, no library',
      ),
      result(
        `${label} from the sync server, in-worker store`,
        'events/s',
        perSec(empty),
        perSec(raw),
        'server on 127.0.0.1 (SQLite), store on IndexedDB with a projection, until subscribe saw all',
      ),
      result(
        `${label} from the sync server, after one local append`,
        'events/s',
        perSec(afterLocal),
        perSec(raw),
        'every event received sorts before the local one, so each is placed among stored segments',
      ),
    ];
  } finally {
    await servers.close();
  }
}

export async function runBrowserBenches(): Promise<BenchResult[]> {
  const server = await startBuiltServer([
    'test/browser/fixtures/bench.html',
    'test/browser/fixtures/cold.html',
    'test/browser/fixtures/baseline.html',
  ]);
  const { url } = server;
  const profile = mkdtempSync(join(tmpdir(), 'chronicle-bench-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
  });
  const out: BenchResult[] = [];
  try {
    const page = await context.newPage();
    await page.goto(`${url}/test/browser/fixtures/bench.html`);
    await page.waitForFunction(() => document.title === 'ready');
    const via = page as Page;
    const perSec = (count: number, ms: number) => (count / ms) * 1000;

    // (a)–(c): appends, beside both raw baselines (browser-appends.ts).
    out.push(...(await runAppendBenches(page)));
    if (process.env.BENCH_BROWSER_APPENDS_ONLY === '1') return out;

    // (c) replay and (d) cold start, over one seeded log each.
    const rawDb = fresh('raw-c');
    await inWorker(via, 'rawSeed', rawDb, REPLAY_EVENTS);
    const rawC = await medianOf(async () => (await inWorker(via, 'rawReplay', rawDb)).ms);
    const storeDb = fresh('store-c');
    await inWorker(via, 'storeSeed', storeDb, REPLAY_EVENTS);
    const storeC = await medianOf(
      async () => (await inWorker(via, 'storeOpenAndFold', storeDb, 'board-nosnap')).ms,
    );
    out.push(
      result(
        `chromium: replay ${REPLAY_EVENTS}, raw getAll pages + fold`,
        'events/s',
        perSec(REPLAY_EVENTS, rawC),
      ),
      result(
        `chromium: replay ${REPLAY_EVENTS}, in-worker (open + fold)`,
        'events/s',
        perSec(REPLAY_EVENTS, storeC),
        perSec(REPLAY_EVENTS, rawC),
      ),
    );
    // The first fold of 'board' writes its snapshots; later opens start from the last one.
    await inWorker(via, 'storeOpenAndFold', storeDb, 'board');
    const coldWith = await medianOf(
      async () => (await inWorker(via, 'storeOpenAndFold', storeDb, 'board')).ms,
    );
    const viaWith = await medianOf(
      async () =>
        (
          await via.evaluate(
            (db) => (window as unknown as Page$).bench.throughColdStart(db, 'board'),
            storeDb,
          )
        ).ms,
    );
    const viaWithout = await medianOf(
      async () =>
        (
          await via.evaluate(
            (db) => (window as unknown as Page$).bench.throughColdStart(db, 'board-nosnap'),
            storeDb,
          )
        ).ms,
    );
    // Page load to first projected state: a fresh navigation each time (page, worker, store),
    // on the lean cold-start page beside the raw browser's share of it (pageLoads below).
    const loads = await pageLoads(context, url, storeDb);
    out.push(
      result(`chromium: cold start ${REPLAY_EVENTS}, with snapshot, in-worker`, 'ms', coldWith),
      result(`chromium: cold start ${REPLAY_EVENTS}, without snapshot, in-worker`, 'ms', storeC),
      result(
        `chromium: cold start ${REPLAY_EVENTS}, with snapshot, via worker`,
        'ms',
        viaWith,
        undefined,
        'worker start + connect + state',
      ),
      result(
        `chromium: cold start ${REPLAY_EVENTS}, without snapshot, via worker`,
        'ms',
        viaWithout,
        undefined,
        'worker start + connect + state',
      ),
      result(
        'chromium: page load → module script running (raw baseline)',
        'ms',
        loads.script,
        undefined,
        'navigation start → a trivial module script runs, same page shell',
      ),
      result(
        'chromium: page load → worker read IndexedDB (raw baseline)',
        'ms',
        loads.rawWorker,
        undefined,
        'navigation start → a minimal module worker opened the database, read one record, told the page',
      ),
      result(
        'chromium: page load → page read IndexedDB (raw baseline)',
        'ms',
        loads.rawMain,
        undefined,
        'navigation start → the page opened the database on its main thread and read one record',
      ),
      result(
        `chromium: page load → first state ${REPLAY_EVENTS}, with snapshot, peekState on the page`,
        'ms',
        loads.peekWithSnapshot,
        loads.rawMain,
        'navigation start → peekState answered on the page, then the worker starts (README; production build); baseline: raw page read',
      ),
      result(
        `chromium: page load → first state ${REPLAY_EVENTS}, with snapshot, peekState beside the worker`,
        'ms',
        loads.peekBeside,
        loads.rawMain,
        'navigation start → peekState answered on the page, the worker started at the same time; baseline: raw page read',
      ),
      result(
        `chromium: page load → first state ${REPLAY_EVENTS}, without snapshot, peekState first`,
        'ms',
        loads.peekWithoutSnapshot,
        loads.withoutSnapshot,
        'peekState gives up (too many events to fold), then the worker answers; baseline: the worker alone',
      ),
      result(
        `chromium: page load → first state ${REPLAY_EVENTS}, with snapshot`,
        'ms',
        loads.withSnapshot,
        loads.rawWorker,
        'navigation start → state on the page (production build, lean worker); baseline: raw worker read',
      ),
      result(
        `chromium: page load → first state ${REPLAY_EVENTS}, without snapshot`,
        'ms',
        loads.withoutSnapshot,
        loads.rawWorker,
        'navigation start → state on the page (production build, lean worker); baseline: raw worker read',
      ),
    );

    // (e) append → watch latency.
    const latencyDb = fresh('latency');
    const inLatency = await inWorker(via, 'storeWatchLatency', latencyDb, 200);
    const viaLatency = await via.evaluate(
      (db) => (window as unknown as Page$).bench.throughWatchLatency(db, 200),
      latencyDb,
    );
    out.push(
      result('chromium: append → watch, in-worker (median of 200)', 'ms', median(inLatency)),
      result('chromium: append → watch, via worker (median of 200)', 'ms', median(viaLatency)),
    );

    // Issue 4 on a real device: a new store in the worker catching up from a sync server.
    out.push(...(await catchUpBenches(via)));

    // Issue 6: a Yjs document of YJS_EDITS one-character updates, opened with bindYDoc (in the
    // worker's thread, like y-indexeddb, which runs where its doc is) without and with a
    // snapshot, beside y-indexeddb loading the same edits; and the bytes stored per edit.
    const yjsDb = fresh('yjs');
    const yidbDb = fresh('y-indexeddb');
    await inWorker(via, 'yjsSeed', yjsDb, YJS_EDITS);
    await inWorker(via, 'yIndexedDbSeed', yidbDb, YJS_EDITS);
    const opened = async (run: () => Promise<{ ms: number; length: number }>) => {
      const r = await run();
      if (r.length < YJS_EDITS) throw new Error(`opened ${r.length} characters of ${YJS_EDITS}`);
      return r.ms;
    };
    const yidbOpen = await medianOf(() => opened(() => inWorker(via, 'yIndexedDbOpen', yidbDb)));
    const yjsWithout = await medianOf(() => opened(() => inWorker(via, 'yjsOpen', yjsDb)));
    const yjsBytes = await inWorker(via, 'yjsBytes', yjsDb);
    await inWorker(via, 'yjsSnapshot', yjsDb);
    const yjsWith = await medianOf(() => opened(() => inWorker(via, 'yjsOpen', yjsDb)));
    const yidbBytes = await inWorker(via, 'yIndexedDbBytes', yidbDb);
    const k = `${YJS_EDITS / 1000}k`;
    out.push(
      result(`chromium: yjs open ${k} updates, y-indexeddb`, 'ms', yidbOpen),
      result(
        `chromium: yjs open ${k} updates, no snapshot`,
        'ms',
        yjsWithout,
        yidbOpen,
        'baseline: y-indexeddb; store open + bindYDoc ready',
      ),
      result(
        `chromium: yjs open ${k} updates + snapshot`,
        'ms',
        yjsWith,
        yidbOpen,
        'baseline: y-indexeddb; store open + bindYDoc ready',
      ),
      result(
        'chromium: yjs bytes stored per edit',
        'B',
        yjsBytes / YJS_EDITS,
        yidbBytes / YJS_EDITS,
        'JSON of the stored events; baseline: y-indexeddb update records (merged every 500)',
      ),
    );
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await server.close();
  }
  return out;
}
