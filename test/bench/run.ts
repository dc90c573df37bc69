/**
 * `npm run bench`: runs every benchmark available on this machine, prints a table and merges the
 * results into test/bench/results/latest.json. Benchmarks are measurements, never test
 * assertions; the machine is shared, so each figure is a median of several runs.
 */
import { cpus } from 'node:os';
import { type BenchResult, printTable, RESULTS_FILE, saveResults } from './results.ts';
import { runStoreNodeBenches } from './store-node.ts';

const only = process.argv[2];
const suites: Record<string, () => Promise<BenchResult[]>> = {
  store: runStoreNodeBenches,
  browser: (await import('./browser.ts')).runBrowserBenches,
  firefox: (await import('./browser-firefox.ts')).runFirefoxBenches,
  yjs: (await import('./yjs-node.ts')).runYjsNodeBenches,
  sync: (await import('./sync-node.ts')).runSyncNodeBenches,
  strict: (await import('./strict-node.ts')).runStrictNodeBenches,
  security: (await import('./security-node.ts')).runSecurityNodeBenches,
  size: (await import('./bundle-size.ts')).runBundleSizeBenches,
  fanout: (await import('./fanout.ts')).runFanoutBenches,
  publish: (await import('./publish-node.ts')).runPublishBenches,
  multi: (await import('./multi-server.ts')).runMultiServerBenches,
  wire: (await import('./wire-node.ts')).runWireBenches,
};
/** Run only when named: they take minutes (`npm run bench -- scale`). */
const onRequest: Record<string, () => Promise<BenchResult[]>> = {
  scale: (await import('./browser-scale.ts')).runScaleBenches,
  /** PostgreSQL's compactor against none, same run: appends, catch-up (issue 18). */
  pgcompact: (await import('./postgres-compaction.ts')).runPostgresCompactionBenches,
  /** A page of history by cursor from a sealed PostgreSQL log (issue 18, part 3). */
  pghistory: async () => (await import('./postgres-history.ts')).runPostgresHistoryBenches(),
  /**
   * A new device opening the demo on a space of BENCH_NEWDEVICE_EVENTS (100k; the figure
   * is 1M) events: the first card and the whole board (issue 18, part 3).
   */
  newdevice: async () => (await import('./newdevice.ts')).runNewDeviceBenches(),
  /**
   * Bytes on disk per event, every layer (issue 18): 10k and 100k; BENCH_STORAGE_EVENTS=1000000
   * adds 1M (about 20 minutes); BENCH_STORAGE_LAYERS=node,chromium,firefox picks layers. Each
   * browser weighs a store that wrote the events and one that received them through the server
   * (about 3 minutes more at 100k; BENCH_STORAGE_RECEIVE=0 leaves the receiving one out).
   */
  /** Compaction on against off (issue 18): bytes, batched appends, replay; 100k events. */
  blocks: async () => (await import('./blocks-node.ts')).runBlocksBenches(),
  /**
   * IndexedDB's compact segments against plain ones (issue 18's time bound), Chromium and
   * Firefox, alternating pairs in one session: appends, signing, replay, a synced log's catch-up
   * and replay; 20k events (BENCH_COMPACT_PAIRS, _EVENTS, _BROWSERS=chromium,firefox).
   */
  compact: async () => (await import('./compact-ab.ts')).runCompactAbBenches(),
  /**
   * Signed sync against unsigned where the app runs (issue 16's cost), Chromium and Firefox on
   * profiles on disk, alternating pairs: a new device's download and a device's upload of 20k
   * events (BENCH_SECURITY_PAIRS, _EVENTS, _BROWSERS=chromium,firefox).
   */
  securitybrowsers: async () =>
    (await import('./security-browsers.ts')).runSecurityBrowserBenches(),
  /** Archival of old blocks to cold files (issue 18 part 4): bytes, catch-up reads; 100k. */
  archive: async () => (await import('./archive-node.ts')).runArchiveBenches(),
  /** Where a stream read's time goes on IndexedDB, Chromium and Firefox (20k events). */
  streamreads: async () => (await import('./stream-reads.ts')).runStreamReadBenches(),
  /** The same reads, this tree against BENCH_STREAMREADS_BASE's, in alternating pairs. */
  'streamreads-pairs': async () => (await import('./stream-reads-pairs.ts')).runStreamReadPairs(),
  storage: async () => {
    const layers = (process.env.BENCH_STORAGE_LAYERS ?? 'node,chromium,firefox').split(',');
    const out: BenchResult[] = [];
    if (layers.includes('node'))
      out.push(...(await (await import('./size-node.ts')).runSizeNodeBenches()));
    if (layers.includes('chromium'))
      out.push(...(await (await import('./size-browser.ts')).runSizeBrowserBenches()));
    if (layers.includes('firefox'))
      out.push(...(await (await import('./size-firefox.ts')).runSizeFirefoxBenches()));
    return out;
  },
};

const results: BenchResult[] = [];
const named = only !== undefined ? onRequest[only] : undefined;
if (named !== undefined) {
  console.error(`bench: ${only}…`);
  results.push(...(await named()));
}
for (const [name, run] of Object.entries(suites)) {
  if (only !== undefined && only !== name) continue;
  console.error(`bench: ${name}…`);
  results.push(...(await run()));
}
console.log(`\nNode ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`);
printTable(results);
saveResults(results);
console.log(`\nwritten to ${RESULTS_FILE}`);
