/**
 * `npm run bench -- streamreads`: where the time of `store.read({ stream })` goes on IndexedDB,
 * in Chromium and Firefox on an on-disk profile (stream-read-worker.ts says what each way of
 * reading measures). BENCH_STREAMREADS_EVENTS (20k) events of the demo's mix; every stream it
 * names but the notes (a card's own events), up to STREAMS of them, read ROUNDS times each way.
 * `npm run bench -- streamreads-pairs` compares this tree with another checkout's, in pairs
 * (stream-reads-pairs.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { inWorker } from './browser-calls.ts';
import { type BenchResult, median, percentile, result } from './results.ts';
import { chromiumSize, type SizeBrowser } from './size-browser.ts';
import { firefoxSize } from './size-firefox.ts';
import { label, SIZE_SEED } from './size-measure.ts';
import type { StreamReadProbe } from './stream-read-worker.ts';

const STREAMS = 200;

export type PageBench = {
  bench: { throughStreamReads(db: string, streams: string[], rounds: number): Promise<number[]> };
};
const ROUNDS = 2;

export async function runStreamReadBenches(): Promise<BenchResult[]> {
  const count = Number(process.env.BENCH_STREAMREADS_EVENTS ?? 20_000);
  const wanted = (process.env.BENCH_STREAMREADS_BROWSERS ?? 'chromium,firefox').split(',');
  const browsers = [chromiumSize, firefoxSize].filter((b) => wanted.includes(b.name.toLowerCase()));
  const built = await startBuiltServer(['test/browser/fixtures/bench.html']);
  const results: BenchResult[] = [];
  try {
    for (const browser of browsers) results.push(...(await probe(browser, built.url, count)));
  } finally {
    await built.close();
  }
  return results;
}

/** The streams a run reads: the longest card streams, and the notes (Yjs) streams. */
export function groups(all: [string, number][]): [string, string[]][] {
  const longest = (streams: [string, number][]) =>
    [...streams]
      .sort((a, b) => b[1] - a[1])
      .slice(0, STREAMS)
      .map(([name]) => name);
  const notes = all.filter(([name]) => name.endsWith('/notes'));
  const cards = all.filter(([name]) => name.startsWith('card:') && !name.endsWith('/notes'));
  return [
    ['the longest card streams', longest(cards)],
    [
      'card streams, every one in turn',
      cards
        .filter((_, i) => i % Math.max(1, Math.floor(cards.length / STREAMS)) === 0)
        .slice(0, STREAMS)
        .map(([n]) => n),
    ],
    ['notes streams', longest(notes)],
  ];
}

async function probe(browser: SizeBrowser, url: string, count: number): Promise<BenchResult[]> {
  const profile = mkdtempSync(join(tmpdir(), 'chronicle-streamreads-'));
  try {
    return await browser.session(profile, url, async (page) => {
      const all = await inWorker(page, 'streamReadSeed', 'streams', count, SIZE_SEED);
      const out: BenchResult[] = [];
      for (const [what, streams] of groups(all)) {
        const p = await inWorker(page, 'streamReadProbe', 'streams', streams, ROUNDS);
        const through = await page.evaluate(
          ({ streams, rounds }) =>
            (window as unknown as PageBench).bench.throughStreamReads('streams', streams, rounds),
          { streams, rounds: ROUNDS },
        );
        out.push(...rows(browser, count, what, streams.length, p, through));
      }
      return out;
    });
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

function rows(
  browser: SizeBrowser,
  count: number,
  what: string,
  streams: number,
  p: StreamReadProbe,
  through: number[],
): BenchResult[] {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const shape =
    `${streams} streams × ${ROUNDS}; per read: ${mean(p.events).toFixed(1)} events returned, ` +
    `${mean(p.segments).toFixed(1)} segments listed holding ${mean(p.segmentEvents).toFixed(0)} events; ` +
    `IndexedDB: ${mean(p.transactions).toFixed(1)} transactions, ${mean(p.requests).toFixed(1)} requests, ` +
    `${mean(p.values).toFixed(1)} segment values`;
  const name = (how: string) => `stream reads ${label(count)}, ${what}: ${browser.name}, ${how}`;
  const row = (how: string, ms: number[], note: string) =>
    result(
      name(how),
      'ms',
      median(ms),
      undefined,
      `p90 ${percentile(ms, 90).toFixed(1)} ms; ${note}`,
    );
  return [
    row(
      'store.read({ stream }) from the page',
      through,
      'connectStore, through the worker, its projections folded',
    ),
    row('store.read({ stream }) in the worker', p.store, shape),
    row(
      'adapter readByCursor (one page, no $sig)',
      p.adapter,
      'the log read store.read makes, on a handle of its own',
    ),
    row('adapter horizon()', p.horizon, 'store.read reads it before and after its log read'),
    row(
      "raw IndexedDB: the stream's segments (getAll)",
      p.rawValues,
      'its streams row and getAll of its `stream` index range, one transaction',
    ),
    row(
      "raw IndexedDB: the stream's segment keys (getAllKeys)",
      p.rawKeys,
      'the same range, keys only',
    ),
  ];
}
