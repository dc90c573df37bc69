/**
 * `npm run bench -- compact` (issue 18, part 1: "batched appends and replay no more than 15%
 * slower than uncompressed in the same run"): IndexedDB's compact stored form of a segment
 * (core/segment-codec.ts compactSegment: `$sig`s and usual `$link`s as bytes, canonical ids left
 * out, streams by place) against the plain form (storage/idb-written-form.ts storePlainSegments),
 * in one browser session each for Chromium and Firefox, on a profile on disk.
 *
 * Each pair runs both forms, in turns (compact first in even pairs, plain first in odd ones), on
 * fresh databases in the bench worker (compact-worker.ts):
 * (a) EVENTS events of the demo's mix (size-events.ts, the mix the storage sizes were measured
 *     on) appended 100 an appendMany, signing on (the default); then the wait until the
 *     background signer has signed them all and written the signed copies back (both timed);
 * (b) that log replayed on a fresh open into a projection without snapshots, REPLAYS times;
 * (c) a fresh database catching up the same number of events from a real sync server on
 *     127.0.0.1 (SQLite), written and signed by another replica (a Node store), then replayed
 *     as in (b).
 * Rows: value = compact, baseline = plain, each the median over the pairs (a pair's replay is
 * the median of its REPLAYS); the note gives the median of the pairs' ratios (compact / plain),
 * which a noisy stretch of the shared machine moves less, and the load average.
 */
import { loadavg } from 'node:os';
import { memoryStorage, openStore } from '../../src/index.ts';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { type BenchPage, inWorker } from './browser-calls.ts';
import { onBenchPage } from './browser-session.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { type BenchServer, startServer, syncUrl, waitUntil, wsTransport } from './sync-server.ts';

const PAIRS = Number(process.env.BENCH_COMPACT_PAIRS ?? 8);
const EVENTS = Number(process.env.BENCH_COMPACT_EVENTS ?? 20_000);
const REPLAYS = Number(process.env.BENCH_COMPACT_REPLAYS ?? 3);
const BROWSERS = (process.env.BENCH_COMPACT_BROWSERS ?? 'chromium,firefox').split(',');
const SPACE = 'compact-ab';
/** The local logs' mix; the synced log is another part of it (another replica's). */
const SEED = 18;
const SYNCED_SEED = 19;
const BATCH = 100;

type Form = 'compact' | 'plain';
const WORKLOADS = ['appends', 'signing', 'replay', 'catchUp', 'syncedReplay'] as const;
type Workload = (typeof WORKLOADS)[number];
type Times = Record<Workload, Record<Form, number[]>>;

/**
 * Fills `space` (SPACE) of `t` with `count` events of the mix, from a Node store that signs them
 * unless `signing` is false.
 */
export async function seedServer(
  t: BenchServer,
  count: number,
  { space = SPACE, signing = true }: { space?: string; signing?: boolean } = {},
): Promise<void> {
  const store = await openStore({
    name: `${space}-writer`,
    storage: memoryStorage(),
    ...(!signing && { signing: false }),
  });
  const events = DemoMix.range(SYNCED_SEED, 0, count);
  for (let i = 0; i < count; i += BATCH) {
    const batch = events.slice(i, i + BATCH);
    await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
  }
  const upload = store.sync.connect(wsTransport(t, 'writer'));
  const held = await t.storage.openSpace(space);
  await waitUntil(async () => (await held.headPos()) >= count, 'the writer to upload', 300_000, 20);
  await upload.close();
  await store.close();
}

let dbs = 0;
const fresh = (label: string) => `compact-ab-${label}-${Date.now().toString(36)}-${++dbs}`;

function expectCount(what: string, count: number): void {
  if (count !== EVENTS) throw new Error(`bench: ${what} folded ${count} events, not ${EVENTS}`);
}

/** PAIRS pairs of both forms on `page`; every time of every pair, in ms. */
async function pairs(page: BenchPage, browser: string, urlFor: (sub: string) => string) {
  const times = Object.fromEntries(
    WORKLOADS.map((w) => [w, { compact: [], plain: [] }]),
  ) as unknown as Times;
  // Pair -1 warms the worker up (its chunks, the mix, the JIT) and is not counted.
  for (let p = -1; p < PAIRS; p++) {
    const order: Form[] = p % 2 === 0 ? ['compact', 'plain'] : ['plain', 'compact'];
    const local = { compact: fresh('local-c'), plain: fresh('local-p') };
    const synced = { compact: fresh('synced-c'), plain: fresh('synced-p') };
    for (const form of order) {
      const t = await inWorker(page, 'compactAppends', local[form], form === 'plain', EVENTS, SEED);
      times.appends[form].push(t.appendMs);
      times.signing[form].push(t.signMs);
    }
    for (const form of order) {
      const url = urlFor(`device-${++dbs}`);
      const ms = await inWorker(
        page,
        'compactCatchUp',
        synced[form],
        form === 'plain',
        url,
        EVENTS,
      );
      times.catchUp[form].push(ms);
    }
    const replays = async (workload: Workload, db: Record<Form, string>) => {
      const runs: Record<Form, number[]> = { compact: [], plain: [] };
      for (let r = 0; r < REPLAYS; r++) {
        for (const form of order) {
          const { ms, count } = await inWorker(page, 'compactReplay', db[form], form === 'plain');
          expectCount(`${browser} ${workload} ${form}`, count);
          runs[form].push(ms);
        }
      }
      for (const form of order) times[workload][form].push(median(runs[form]));
    };
    await replays('replay', local);
    await replays('syncedReplay', synced);
    for (const form of order) {
      await inWorker(page, 'compactDrop', local[form]);
      await inWorker(page, 'compactDrop', synced[form]);
    }
    const last = (w: Workload) =>
      `${w} ${(times[w].compact.at(-1)! / times[w].plain.at(-1)!).toFixed(2)}`;
    console.error(
      `compact: ${browser} pair ${p + 1}/${PAIRS} (compact/plain, 0 = warm-up): ${WORKLOADS.map(last).join(', ')}; load ${loadavg()[0]!.toFixed(1)}`,
    );
    if (p < 0) {
      for (const w of WORKLOADS) for (const form of order) times[w][form].pop();
    }
  }
  return times;
}

const WHAT: Record<Workload, string> = {
  appends: `${EVENTS / 1000}k demo-mix events appended 100 an appendMany`,
  signing: `the background signer signing those ${EVENTS / 1000}k and writing them back`,
  replay: `replay of those ${EVENTS / 1000}k, fresh open, no snapshot`,
  catchUp: `a new device catching up ${EVENTS / 1000}k signed events of another replica`,
  syncedReplay: `replay of that synced log, fresh open, no snapshot`,
};

function rows(browser: string, times: Times, load: string): BenchResult[] {
  return WORKLOADS.map((w) => {
    const { compact, plain } = times[w];
    const ratios = compact.map((c, i) => c / plain[i]!);
    return result(
      `compact ${browser}: ${WHAT[w]} (compact; plain = baseline)`,
      'ms',
      median(compact),
      median(plain),
      `medians of ${PAIRS} alternating pairs in one session (replays: each a median of ${REPLAYS}); median of the pairs' ratios ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(' ')}); load average ${load}`,
    );
  });
}

export async function runCompactAbBenches(): Promise<BenchResult[]> {
  const built = await startBuiltServer(['test/browser/fixtures/bench.html']);
  const t = await startServer(SPACE);
  const out: BenchResult[] = [];
  try {
    await seedServer(t, EVENTS);
    const urlFor = (sub: string) => syncUrl(t, sub);
    for (const browser of BROWSERS) {
      const before = loadavg()[0]!.toFixed(1);
      const times = await onBenchPage(browser, built.url, (page) => pairs(page, browser, urlFor));
      out.push(...rows(browser, times, `${before}–${loadavg()[0]!.toFixed(1)}`));
    }
  } finally {
    await t.stop();
    await built.close();
  }
  return out;
}
