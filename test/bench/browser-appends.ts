/**
 * The Chromium append benchmarks (issue 14), on the on-disk profile browser.ts opens: each
 * workload beside two raw IndexedDB baselines in the same run, for Chromium's default durability
 * and for strict: one record per event (what idb and Dexie users get) and one record per batch
 * (the limit of a batch-record layout such as Chronicle's segments). The workloads:
 * (a) 10,000 events, 100 per append, one stream per append;
 * (b) 10,000 events, each in a stream of its own, 100 at a time: 100 concurrent appends (group
 *     commit), or one appendMany of 100 streams;
 * (c) 1,000 single appends, each awaited; beside them, a third raw baseline: single writes laid out
 *     as Chronicle's (the same indexes, an append's three requests), which parts what the layout
 *     costs from what Chronicle's JS costs.
 * "in-worker" runs the store in the worker's own thread; "via worker" calls it from the page
 * through connectStore, as apps do. Rounds interleave the variants, so that a noisy stretch of
 * the shared machine hits them all alike; each figure is the median of RUNS rounds.
 */
import { encodeEncryptionKey, generateEncryptionKey } from '../../src/index.ts';
import { type BenchPage, inWorker } from './browser-calls.ts';
import type { BenchDurability, StreamsMode } from './browser-shared.ts';
import { type BenchResult, median, result } from './results.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COUNT = 10_000;
const BATCH = 100;
const SINGLES = 1_000;

type PageBench = {
  bench: {
    callInWorker(method: string, args: unknown[]): Promise<unknown>;
    throughBatched(
      db: string,
      count: number,
      batch: number,
      d: BenchDurability,
      key?: string,
    ): Promise<number>;
    throughStreams(
      db: string,
      count: number,
      width: number,
      d: BenchDurability,
      mode: StreamsMode,
    ): Promise<number>;
    throughSingle(db: string, count: number, d: BenchDurability, key?: string): Promise<number>;
  };
};

/** The key of the encrypted variants (issue 16): every event sealed in the worker. */
const KEY = encodeEncryptionKey(generateEncryptionKey());

let dbs = 0;
const fresh = (label: string) => `bench-${label}-${Date.now().toString(36)}-${++dbs}`;

function onPage<K extends keyof PageBench['bench']>(
  page: BenchPage,
  method: K,
  ...args: Parameters<PageBench['bench'][K]>
): Promise<number> {
  return page.evaluate(
    ({ method, args }) =>
      (
        (window as unknown as PageBench).bench[method] as unknown as (
          ...a: unknown[]
        ) => Promise<number>
      )(...args),
    { method, args: args as unknown[] },
  );
}

/** Runs every variant once per round, RUNS rounds; the median ms of each. */
async function rounds<K extends string>(
  variants: Record<K, () => Promise<number>>,
): Promise<Record<K, number>> {
  const keys = Object.keys(variants) as K[];
  const times = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < RUNS; i++) {
    for (const key of keys) times[key].push(await variants[key]());
  }
  return Object.fromEntries(keys.map((k) => [k, median(times[k])])) as Record<K, number>;
}

const perSec = (count: number, ms: number) => (count / ms) * 1000;

/** `browser` names the rows ('chromium', 'firefox'). */
export async function runAppendBenches(
  page: BenchPage,
  browser = 'chromium',
): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const d of ['default', 'strict'] as const) {
    const t = await rounds({
      rawEvent: () => inWorker(page, 'rawBatched', fresh('raw-event'), COUNT, BATCH, d),
      rawBatch: () => inWorker(page, 'rawBatchRecords', fresh('raw-batch'), COUNT, BATCH, d),
      inWorker: () => inWorker(page, 'storeBatched', fresh('store-a'), COUNT, BATCH, d),
      via: () => onPage(page, 'throughBatched', fresh('via-a'), COUNT, BATCH, d),
      concurrent: () =>
        onPage(page, 'throughStreams', fresh('via-b'), COUNT, BATCH, d, 'concurrent'),
      concurrentIn: () =>
        inWorker(page, 'storeStreams', fresh('store-b'), COUNT, BATCH, d, 'concurrent'),
      many: () => onPage(page, 'throughStreams', fresh('via-m'), COUNT, BATCH, d, 'appendMany'),
      rawSingle: () => inWorker(page, 'rawSingle', fresh('raw-c'), SINGLES, d),
      rawShaped: () => inWorker(page, 'rawSingleShaped', fresh('raw-s'), SINGLES, d),
      singleIn: () => inWorker(page, 'storeSingle', fresh('store-c'), SINGLES, d),
      single: () => onPage(page, 'throughSingle', fresh('via-c'), SINGLES, d),
      viaSealed: () => onPage(page, 'throughBatched', fresh('via-e'), COUNT, BATCH, d, KEY),
      singleSealed: () => onPage(page, 'throughSingle', fresh('via-f'), SINGLES, d, KEY),
    });
    const rawEvent = perSec(COUNT, t.rawEvent);
    const rawBatch = perSec(COUNT, t.rawBatch);
    const vsBatch = (ms: number) =>
      `${(perSec(COUNT, ms) / rawBatch).toFixed(2)}× raw one record per batch (${Math.round(rawBatch)}/s)`;
    const label = `${browser} ${d}:`;
    out.push(
      result(`${label} 10k events ×100, raw, one record per event`, 'events/s', rawEvent),
      result(`${label} 10k events ×100, raw, one record per batch`, 'events/s', rawBatch),
      result(
        `${label} 10k appends ×100, one stream each, via worker`,
        'events/s',
        perSec(COUNT, t.via),
        rawEvent,
        vsBatch(t.via),
      ),
      result(
        `${label} 10k appends ×100, one stream each, in-worker`,
        'events/s',
        perSec(COUNT, t.inWorker),
        rawEvent,
        vsBatch(t.inWorker),
      ),
      result(
        `${label} 10k events, 100 concurrent appends to 100 streams, via worker`,
        'events/s',
        perSec(COUNT, t.concurrent),
        rawEvent,
        vsBatch(t.concurrent),
      ),
      result(
        `${label} 10k events, 100 concurrent appends to 100 streams, in-worker`,
        'events/s',
        perSec(COUNT, t.concurrentIn),
        rawEvent,
        vsBatch(t.concurrentIn),
      ),
      result(
        `${label} 10k events, appendMany of 100 streams, via worker`,
        'events/s',
        perSec(COUNT, t.many),
        rawEvent,
        vsBatch(t.many),
      ),
      result(`${label} 1k single appends, raw`, 'appends/s', perSec(SINGLES, t.rawSingle)),
      result(
        `${label} 1k single writes, raw, Chronicle's layout and requests`,
        'appends/s',
        perSec(SINGLES, t.rawShaped),
        perSec(SINGLES, t.rawSingle),
      ),
      result(
        `${label} 1k single appends, via worker`,
        'appends/s',
        perSec(SINGLES, t.single),
        perSec(SINGLES, t.rawSingle),
      ),
      result(
        `${label} 1k single appends, in-worker`,
        'appends/s',
        perSec(SINGLES, t.singleIn),
        perSec(SINGLES, t.rawSingle),
      ),
      result(
        `${label} 10k appends ×100, encrypted, via worker (plain via worker = baseline)`,
        'events/s',
        perSec(COUNT, t.viaSealed),
        perSec(COUNT, t.via),
      ),
      result(
        `${label} 1k single appends, encrypted, via worker (plain via worker = baseline)`,
        'appends/s',
        perSec(SINGLES, t.singleSealed),
        perSec(SINGLES, t.single),
      ),
    );
  }
  return out;
}
