/**
 * `npm run bench -- streamreads-pairs`: `store.read({ stream })` of this tree against another
 * checkout's (BENCH_STREAMREADS_BASE: its own test/bench must have stream-read-worker.ts), in
 * alternating pairs (A B, then B A, ...; BENCH_PAIRS, 6), in one browser on one on-disk profile:
 * each tree's production build is served from its own origin, so each has its own database of
 * the same BENCH_STREAMREADS_EVENTS (20k) events of the demo's mix. A run reads the longest card
 * streams and the notes streams (stream-reads.ts groups) once each, in the worker and from the
 * page, each run in a browser launched for it. Per pair, the ratio of the two runs' totals.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { type BenchPage, inWorker } from './browser-calls.ts';
import { type BenchResult, median, result } from './results.ts';
import { chromiumSize, type SizeBrowser } from './size-browser.ts';
import { firefoxSize } from './size-firefox.ts';
import { label, SIZE_SEED } from './size-measure.ts';
import { groups, type PageBench } from './stream-reads.ts';

type Built = { url: string; close(): Promise<void> };
/** Per set of streams: total ms in the worker and from the page, IndexedDB calls per read. */
type Run = Record<string, { worker: number; page: number; tx: number; requests: number }>;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function run(page: BenchPage, sets: [string, string[]][]): Promise<Run> {
  const out: Run = {};
  for (const [what, streams] of sets) {
    const p = await inWorker(page, 'streamReadProbe', 'streams', streams, 1);
    const through = await page.evaluate(
      ({ streams }) =>
        (window as unknown as PageBench).bench.throughStreamReads('streams', streams, 1),
      { streams },
    );
    out[what] = {
      worker: sum(p.store),
      page: sum(through),
      tx: sum(p.transactions) / streams.length,
      requests: sum(p.requests) / streams.length,
    };
  }
  return out;
}

export async function runStreamReadPairs(): Promise<BenchResult[]> {
  const base = process.env.BENCH_STREAMREADS_BASE;
  if (base === undefined) throw new Error('BENCH_STREAMREADS_BASE: a checkout to compare with');
  // How the rows name the other tree (BENCH_STREAMREADS_LABEL, else its folder's name).
  const name = process.env.BENCH_STREAMREADS_LABEL ?? basename(base);
  const count = Number(process.env.BENCH_STREAMREADS_EVENTS ?? 20_000);
  const pairs = Number(process.env.BENCH_PAIRS ?? 6);
  const wanted = (process.env.BENCH_STREAMREADS_BROWSERS ?? 'chromium,firefox').split(',');
  const browsers = [chromiumSize, firefoxSize].filter((b) => wanted.includes(b.name.toLowerCase()));
  const harness = (await import(join(base, 'test/browser/tabs/harness.ts'))) as {
    startBuiltServer: typeof startBuiltServer;
  };
  const entry = ['test/browser/fixtures/bench.html'];
  const tree = await startBuiltServer(entry);
  const other = await harness.startBuiltServer(entry);
  const results: BenchResult[] = [];
  try {
    for (const browser of browsers) {
      results.push(...(await pairsIn(browser, { tree, other }, count, pairs, name)));
    }
  } finally {
    await tree.close();
    await other.close();
  }
  return results;
}

async function pairsIn(
  browser: SizeBrowser,
  sides: { tree: Built; other: Built },
  count: number,
  pairs: number,
  name: string,
): Promise<BenchResult[]> {
  const profile = mkdtempSync(join(tmpdir(), 'chronicle-streamreads-pairs-'));
  try {
    const seed = (side: Built) =>
      browser.session(profile, side.url, (page) =>
        inWorker(page, 'streamReadSeed', 'streams', count, SIZE_SEED),
      );
    const all = await seed(sides.tree);
    await seed(sides.other);
    const sets = groups(all).filter(([what]) => what !== 'card streams, every one in turn');
    const runs: { tree: Run[]; other: Run[] } = { tree: [], other: [] };
    for (let i = 0; i < pairs; i++) {
      const order = i % 2 === 0 ? (['other', 'tree'] as const) : (['tree', 'other'] as const);
      for (const side of order) {
        runs[side].push(await browser.session(profile, sides[side].url, (page) => run(page, sets)));
      }
      console.error(`streamreads-pairs: ${browser.name} pair ${i + 1} of ${pairs}`);
    }
    const out: BenchResult[] = [];
    for (const [what, streams] of sets) {
      for (const where of ['worker', 'page'] as const) {
        const tree = runs.tree.map((r) => r[what]![where] / streams.length);
        const other = runs.other.map((r) => r[what]![where] / streams.length);
        const ratios = tree.map((t, i) => t / other[i]!);
        const calls = (side: Run[]) =>
          `${median(side.map((r) => r[what]!.tx)).toFixed(1)} transactions, ${median(side.map((r) => r[what]!.requests)).toFixed(1)} requests`;
        out.push(
          result(
            `stream reads ${label(count)}, ${what}: ${browser.name}, store.read({ stream }) ${where === 'worker' ? 'in the worker' : 'from the page'}, this tree against ${name}`,
            'ms',
            median(tree),
            median(other),
            `a run's mean ms per read (${streams.length} streams a run), median of ${pairs} alternating pairs' runs; ` +
              `median of the pairs' ratios ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(', ')}); ` +
              `IndexedDB per read: ${calls(runs.tree)} against ${calls(runs.other)}`,
          ),
        );
      }
    }
    return out;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
