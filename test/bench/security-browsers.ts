/**
 * `npm run bench -- securitybrowsers` (issue 16's cost where the app runs): sync of signed events
 * against the same sync of unsigned ones, in Chromium and Firefox, each on a fresh profile on
 * disk, in alternating pairs in one session:
 * (a) download: a new device (a store in the bench worker, on IndexedDB, signing or not)
 *     catching up EVENTS events of the demo's mix that another replica wrote (a Node store,
 *     signing or not), from a real sync server on 127.0.0.1 (SQLite): a store that signs verifies
 *     every event before it is stored;
 * (b) upload: a store in the worker that appended EVENTS events (signed by its background signer
 *     first, not timed: a device that paused before it reconnects) pushing them until the server
 *     acknowledged them all: the server verifies every signed one.
 * Signed events go to servers that require signatures (the default), unsigned ones to servers
 * that do not. Each download reads a server seeded once; each upload goes to a new, empty server:
 * a store syncs both ways, so a push into a space that already held earlier pushes also fetched
 * them, and the figure grew with every pair (the first cut of this bench: Firefox, which ran
 * after Chromium, pushed 20,000 events in 11 s where a fresh server took 0.6–1.1 s).
 * Rows: value = signed, baseline = plain, medians over the pairs; the note gives the median of
 * the pairs' ratios and the load average.
 */
import { loadavg } from 'node:os';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { type BenchPage, inWorker } from './browser-calls.ts';
import { onBenchPage } from './browser-session.ts';
import { seedServer } from './compact-ab.ts';
import { type BenchResult, median, result } from './results.ts';
import { type BenchServer, startServer, syncUrl } from './sync-server.ts';

const PAIRS = Number(process.env.BENCH_SECURITY_PAIRS ?? 4);
const EVENTS = Number(process.env.BENCH_SECURITY_EVENTS ?? 20_000);
const BROWSERS = (process.env.BENCH_SECURITY_BROWSERS ?? 'chromium,firefox').split(',');
const UPLOAD_SEED = 16;
const UPLOAD_SPACE = 'security-up';

type Variant = 'signed' | 'plain';
const WORKLOADS = ['download', 'upload'] as const;
type Workload = (typeof WORKLOADS)[number];
type Times = Record<Workload, Record<Variant, number[]>>;
type Servers = Record<Variant, BenchServer>;

let dbs = 0;
const fresh = (label: string) => `security-${label}-${Date.now().toString(36)}-${++dbs}`;

async function pairs(page: BenchPage, browser: string, downloads: Servers): Promise<Times> {
  const times: Times = {
    download: { signed: [], plain: [] },
    upload: { signed: [], plain: [] },
  };
  // Pair -1 warms the worker up (its chunks, the mix, the JIT) and is not counted.
  for (let p = -1; p < PAIRS; p++) {
    const order: Variant[] = p % 2 === 0 ? ['signed', 'plain'] : ['plain', 'signed'];
    for (const v of order) {
      const db = fresh(`down-${v}`);
      const url = syncUrl(downloads[v], `device-${++dbs}`);
      const signing = v === 'signed';
      times.download[v].push(await inWorker(page, 'securityCatchUp', db, signing, url, EVENTS));
      await inWorker(page, 'compactDrop', db);
    }
    for (const v of order) {
      const db = fresh(`up-${v}`);
      const signing = v === 'signed';
      const server = await startServer(UPLOAD_SPACE, signing ? {} : { requireSignatures: false });
      try {
        const url = syncUrl(server, `uploader-${++dbs}`);
        times.upload[v].push(
          await inWorker(page, 'securityUpload', db, signing, url, EVENTS, UPLOAD_SEED),
        );
      } finally {
        await server.stop();
      }
      await inWorker(page, 'compactDrop', db);
    }
    const last = (w: Workload) =>
      `${w} ${(times[w].signed.at(-1)! / times[w].plain.at(-1)!).toFixed(2)}`;
    console.error(
      `securitybrowsers: ${browser} pair ${p + 1}/${PAIRS} (signed/plain, 0 = warm-up): ${WORKLOADS.map(last).join(', ')}; load ${loadavg()[0]!.toFixed(1)}`,
    );
    if (p < 0) for (const w of WORKLOADS) for (const v of order) times[w][v].pop();
  }
  return times;
}

const WHAT: Record<Workload, string> = {
  download: `a new device catching up ${EVENTS / 1000}k demo-mix events of another replica`,
  upload: `a device pushing its ${EVENTS / 1000}k demo-mix events (signed before it connects)`,
};

export async function runSecurityBrowserBenches(): Promise<BenchResult[]> {
  const built = await startBuiltServer(['test/browser/fixtures/bench.html']);
  const started: BenchServer[] = [];
  const start = async (space: string, signed: boolean) => {
    const t = await startServer(space, signed ? {} : { requireSignatures: false });
    started.push(t);
    return t;
  };
  const out: BenchResult[] = [];
  try {
    const downloads: Servers = {
      signed: await start('security-down-signed', true),
      plain: await start('security-down-plain', false),
    };
    await seedServer(downloads.signed, EVENTS, { space: 'security-down-signed' });
    await seedServer(downloads.plain, EVENTS, { space: 'security-down-plain', signing: false });
    for (const browser of BROWSERS) {
      const before = loadavg()[0]!.toFixed(1);
      const times = await onBenchPage(browser, built.url, (page) =>
        pairs(page, browser, downloads),
      );
      const load = `${before}–${loadavg()[0]!.toFixed(1)}`;
      for (const w of WORKLOADS) {
        const { signed, plain } = times[w];
        const ratios = signed.map((s, i) => s / plain[i]!);
        out.push(
          result(
            `security ${browser}: ${WHAT[w]} (signed; plain = baseline)`,
            'ms',
            median(signed),
            median(plain),
            `on IndexedDB, server on 127.0.0.1 (SQLite); medians of ${PAIRS} alternating pairs in one session; median of the pairs' ratios ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(' ')}); load average ${load}`,
          ),
        );
      }
    }
  } finally {
    for (const t of started) await t.stop();
    await built.close();
  }
  return out;
}
