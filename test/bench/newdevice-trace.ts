/**
 * A profiling aid for `newdevice` (not a benchmark): opens the demo once on a space kept by
 * `BENCH_NEWDEVICE_DATA` (default /tmp/nd; fill it with `BENCH_NEWDEVICE_RUNS=0 npm run bench --
 * newdevice`) and prints a timeline of the page (cards drawn, sync status, and any console line
 * starting with `[trace]`, from the page or the worker) and the CPU profiles of the page and the
 * store's SharedWorker (through the browser's DevTools endpoint), by self time and by second.
 * TRACE_TIMELINE=1 adds the page's main-thread trace events (TRACE_CATS, TRACE_MIN_US). Written
 * to find where a new device's minutes went at 300k and 1M events (README, "A new device").
 * `node --import tsx test/bench/newdevice-trace.ts <events> [replay|snapshot] [seconds]`
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import WebSocket from 'ws';
import { startDemo } from '../../demo/server/app.ts';
import { ROOT } from '../../demo/server/build.ts';
import { silentLogger } from '../../src/server/index.ts';
import { launchProfile } from './browser-scale.ts';

const events = Number(process.argv[2] ?? 100_000);
const way = process.argv[3] ?? 'snapshot';
const limitS = Number(process.argv[4] ?? 600);
const kept = process.env.BENCH_NEWDEVICE_DATA ?? '/tmp/nd';
const dataDir = join(kept, `${events}`);
const filled = JSON.parse(readFileSync(join(dataDir, 'filled.json'), 'utf8')) as { cards: number };
const out = join(kept, 'prof');
mkdirSync(out, { recursive: true });

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

class Cdp {
  private next = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  readonly events: { method: string; params: unknown; sessionId?: string }[] = [];
  onEvent: (m: { method: string; params: unknown; sessionId?: string }) => void = () => {};
  private readonly ws: WebSocket;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as {
        id?: number;
        result?: unknown;
        error?: unknown;
        method?: string;
        params?: unknown;
        sessionId?: string;
      };
      if (m.id !== undefined) {
        this.waiting.get(m.id)?.(m.error ?? m.result);
        this.waiting.delete(m.id);
      } else if (m.method !== undefined) {
        const e = { method: m.method, params: m.params } as {
          method: string;
          params: unknown;
          sessionId?: string;
        };
        if (m.sessionId !== undefined) e.sessionId = m.sessionId;
        this.onEvent(e);
      }
    });
  }
  send(method: string, params: unknown = {}, sessionId?: string): Promise<unknown> {
    const id = this.next++;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }));
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
}

function summarize(name: string, profile: Profile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const label = (n: Node) =>
    `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`;
  const buckets = new Map<number, Map<string, number>>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const node = byId.get(profile.samples[i] ?? 0);
    if (node === undefined) continue;
    const key = label(node);
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(key, (self.get(key) ?? 0) + dt);
    const second = Math.floor((t - profile.startTime) / 1e6);
    let b = buckets.get(second);
    if (b === undefined) {
      b = new Map();
      buckets.set(second, b);
    }
    b.set(key, (b.get(key) ?? 0) + dt);
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 30);
  console.log(`\n== ${name}: self time (ms)`);
  for (const [k, v] of top) console.log(`${v.toFixed(0).padStart(8)}  ${k}`);
  console.log(`\n== ${name}: by second from its profile's start (busy ms, top 3)`);
  for (const [s, b] of [...buckets].sort((a, b) => a[0] - b[0])) {
    const busy = [...b].filter(([k]) => !k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
    const tops = [...b]
      .filter(([k]) => !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(' | ');
    console.log(`${String(s).padStart(4)}s ${busy.toFixed(0).padStart(5)}  ${tops}`);
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'chronicle-trace-'));
const dist = join(kept, 'dist');
await build({
  configFile: join(ROOT, 'vite.config.ts'),
  logLevel: 'warn',
  build: { outDir: dist, emptyOutDir: true, minify: false },
});
const demo = await startDemo({ distDir: dist, dataDir, log: silentLogger });
const port = 9300 + Math.floor(Math.random() * 500);
const context = await launchProfile(join(tmp, 'profile'), [`--remote-debugging-port=${port}`]);
try {
  const version = (await (await fetch(`http://127.0.0.1:${port}/json/version`)).json()) as {
    webSocketDebuggerUrl: string;
  };
  const ws = new WebSocket(version.webSocketDebuggerUrl, { perMessageDeflate: false });
  ws.setMaxListeners(0);
  await new Promise((r) => ws.once('open', r));
  const cdp = new Cdp(ws);
  const sessions = new Map<string, string>();
  const t0 = performance.timeOrigin + performance.now();
  const stamp = () => ((performance.timeOrigin + performance.now() - t0) / 1000).toFixed(2);
  cdp.onEvent = (e) => {
    if (e.method === 'Target.attachedToTarget') {
      const p = e.params as { sessionId: string; targetInfo: { type: string; url: string } };
      if (p.targetInfo.type !== 'shared_worker' && p.targetInfo.type !== 'page') return;
      sessions.set(p.sessionId, p.targetInfo.type);
      void (async () => {
        await cdp.send('Runtime.enable', {}, p.sessionId);
        await cdp.send('Profiler.enable', {}, p.sessionId);
        await cdp.send('Profiler.setSamplingInterval', { interval: 500 }, p.sessionId);
        await cdp.send('Profiler.start', {}, p.sessionId);
        if (p.targetInfo.type === 'page' && p.targetInfo.url !== 'about:blank') {
          // nothing: tracing is started on the page's session below
        }
        await cdp.send('Runtime.runIfWaitingForDebugger', {}, p.sessionId);
      })();
      console.log(`${stamp()} attached ${p.targetInfo.type} ${p.targetInfo.url}`);
    } else if (e.method === 'Runtime.consoleAPICalled') {
      const p = e.params as { args: { value?: unknown; description?: string }[] };
      const text = p.args.map((a) => a.value ?? a.description).join(' ');
      if (text.startsWith('[trace]'))
        console.log(`${stamp()} ${sessions.get(e.sessionId ?? '')}: ${text}`);
    }
  };
  await cdp.send('Target.setAutoAttach', {
    autoAttach: true,
    waitForDebuggerOnStart: true,
    flatten: true,
    filter: [{ type: 'shared_worker' }, { type: 'page' }, { type: 'browser', exclude: true }],
  });
  const traceTotals = new Map<string, number>();
  const threadNames = new Map<number, string>();
  const mainTids = new Set<number>();
  const pendingByTid: { name: string; ts: number; dur: number; tid: number }[] = [];
  const traced: { name: string; ts: number; dur: number }[] = [];
  cdp.onEvent = ((inner) => (e: { method: string; params: unknown; sessionId?: string }) => {
    if (e.method === 'Tracing.dataCollected') {
      const p = e.params as {
        value: {
          name: string;
          ph: string;
          dur?: number;
          ts: number;
          tid: number;
          cat: string;
          args?: { name?: string };
        }[];
      };
      for (const ev of p.value) {
        if (ev.ph === 'M' && ev.name === 'thread_name')
          threadNames.set(ev.tid, ev.args?.name ?? '');
        if (ev.ph !== 'X' || ev.dur === undefined) continue;
        if (!mainTids.has(ev.tid)) {
          pendingByTid.push(ev as { name: string; ts: number; dur: number; tid: number });
          continue;
        }
        traceTotals.set(ev.name, (traceTotals.get(ev.name) ?? 0) + ev.dur / 1000);
        if (ev.dur > Number(process.env.TRACE_MIN_US ?? 200_000))
          traced.push({ name: ev.name, ts: ev.ts, dur: ev.dur / 1000 });
      }
      return;
    }
    inner(e);
  })(cdp.onEvent);
  const tracingDone = new Promise<void>((resolve) => {
    const inner = cdp.onEvent;
    cdp.onEvent = (e) => {
      if (e.method === 'Tracing.tracingComplete') resolve();
      inner(e);
    };
  });
  const timeline = process.env.TRACE_TIMELINE === '1';
  if (timeline)
    await cdp.send('Tracing.start', {
      categories: process.env.TRACE_CATS ?? 'devtools.timeline,v8.execute',
      transferMode: 'ReportEvents',
    });
  const page = await context.newPage();
  page.setDefaultTimeout(limitS * 1000);
  const url = way === 'replay' ? `${demo.url}?join=replay` : demo.url;
  void page.goto(url);
  let last = '';
  let last2 = '';
  let stableSince = performance.now();
  const start = performance.now();
  for (;;) {
    const now = await page
      .evaluate(() => {
        const status = document.getElementById('sync-status');
        return `cards ${document.querySelectorAll('#board .card .card-title').length} state ${status?.dataset.state} pending ${status?.dataset.pending}`;
      })
      .catch(() => 'n/a');
    if (now !== last) console.log(`${stamp()} page: ${now}`);
    last = now;
    if (filled.cards > 0 && now === `cards ${filled.cards} state idle pending 0`) break;
    if (now !== last2) stableSince = performance.now();
    last2 = now;
    if (
      filled.cards === 0 &&
      now.endsWith('state idle pending 0') &&
      performance.now() - stableSince > 8000
    )
      break;
    if (performance.now() - start > limitS * 1000) {
      console.log(`${stamp()} gave up`);
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (timeline) {
    await cdp.send('Tracing.end');
    await tracingDone;
    for (const [tid, n] of threadNames) if (n === 'CrRendererMain') mainTids.add(tid);
    for (const ev of pendingByTid) {
      if (!mainTids.has(ev.tid)) continue;
      traceTotals.set(ev.name, (traceTotals.get(ev.name) ?? 0) + ev.dur / 1000);
      if (ev.dur > Number(process.env.TRACE_MIN_US ?? 200_000))
        traced.push({ name: ev.name, ts: ev.ts, dur: ev.dur / 1000 });
    }
  }
  console.log('\n== trace: total duration by event (ms, nested events count twice)');
  for (const [k, v] of [...traceTotals].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${v.toFixed(0).padStart(8)}  ${k}`);
  }
  console.log('\n== trace: events over 200 ms');
  const first = Math.min(...traced.map((t) => t.ts));
  for (const t of traced.sort((a, b) => a.ts - b.ts).slice(0, 400)) {
    console.log(
      `${((t.ts - first) / 1e6).toFixed(2).padStart(8)}s ${t.dur.toFixed(0).padStart(7)}  ${t.name}`,
    );
  }
  for (const [sessionId, type] of sessions) {
    const r = (await cdp.send('Profiler.stop', {}, sessionId)) as { profile?: Profile };
    if (r.profile === undefined || r.profile.samples.length < 100) continue;
    const file = join(out, `${events}-${way}-${type}.cpuprofile`);
    writeFileSync(file, JSON.stringify(r.profile));
    summarize(type, r.profile);
  }
  ws.close();
} finally {
  await context.close();
  await demo.close();
  rmSync(tmp, { recursive: true, force: true });
  if (!existsSync(dataDir)) console.log('no data');
}
