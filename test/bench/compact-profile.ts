/**
 * A profiling aid for `npm run bench -- compact` (not a benchmark): where the bench worker's CPU
 * time goes in each workload of compact-ab.ts, compact against plain, in Chromium. The bench page
 * is built unminified (function names kept) and the worker profiled through the browser's
 * DevTools endpoint (Profiler domain, 200 µs sampling); for each run it prints the worker's busy
 * time, the time spent inside the compact form's own code (packing: compactSegment; reading:
 * the `$sig` and `$link` text rebuilt from bytes) and the top functions by self time. CPU time
 * in the worker's thread is not wall time: a loaded machine stretches the latter, not the former.
 * `node --import tsx test/bench/compact-profile.ts [events] [rounds]`
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, preview } from 'vite';
import WebSocket from 'ws';
import { inWorker } from './browser-calls.ts';
import { launchProfile, openBenchPage } from './browser-scale.ts';
import { seedServer } from './compact-ab.ts';
import { startServer, syncUrl } from './sync-server.ts';

const EVENTS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 2);
const SPACE = 'compact-ab';
const root = join(import.meta.dirname, '..', '..');

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: Frame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A browser-level DevTools connection (flattened sessions). */
class Cdp {
  private next = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  listeners: ((m: { method: string; params: unknown; sessionId?: string }) => void)[] = [];
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
        for (const l of this.listeners) {
          l({
            method: m.method,
            params: m.params,
            ...(m.sessionId !== undefined && { sessionId: m.sessionId }),
          });
        }
      }
    });
  }
  send(method: string, params: unknown = {}, sessionId?: string): Promise<unknown> {
    const id = this.next++;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }));
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
}

/** The functions whose inclusive time is the compact form's own cost. */
const COMPACT_OWN = [
  'compactSegment',
  'signatureBytes',
  'linkBytes',
  'compactIds',
  'streamPlaces',
  'sigText',
  'linkAt',
];

function summarize(name: string, profile: Profile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const node = byId.get(id);
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    busy += dt;
    const label = `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.split('/').pop()}:${node.callFrame.lineNumber + 1}`;
    self.set(label, (self.get(label) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const fn = byId.get(at)?.callFrame.functionName ?? '';
      const base = fn.replace(/\$\d+$/, '');
      if (COMPACT_OWN.includes(base) && !seen.has(base)) {
        seen.add(base);
        inclusive.set(base, (inclusive.get(base) ?? 0) + dt);
      }
    }
  }
  const own = ['compactSegment', 'sigText', 'linkAt']
    .map((f) => `${f} ${(inclusive.get(f) ?? 0).toFixed(0)}`)
    .join(', ');
  console.log(`\n== ${name}: worker busy ${busy.toFixed(0)} ms; compact form's own: ${own} ms`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`${v.toFixed(0).padStart(7)}  ${k}`);
  }
}

const outDir = mkdtempSync(join(tmpdir(), 'chronicle-compact-build-'));
const profileDir = mkdtempSync(join(tmpdir(), 'chronicle-compact-profile-'));
await build({
  root,
  configFile: false,
  logLevel: 'error',
  build: {
    outDir,
    emptyOutDir: true,
    minify: false,
    rolldownOptions: { input: { page0: join(root, 'test/browser/fixtures/bench.html') } },
  },
  worker: { format: 'es' },
});
const server = await preview({
  root,
  configFile: false,
  logLevel: 'error',
  build: { outDir },
  preview: { port: 0, host: '127.0.0.1', strictPort: false },
});
const address = server.httpServer.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
const t = await startServer(SPACE);
const port = 9300 + Math.floor(Math.random() * 500);
const context = await launchProfile(profileDir, [`--remote-debugging-port=${port}`]);
try {
  await seedServer(t, EVENTS);
  const urlFor = (sub: string) => syncUrl(t, sub);
  const page = await openBenchPage(context, url);
  await inWorker(page, 'compactDrop', 'nothing'); // starts the worker, loads its chunk
  const version = (await (await fetch(`http://127.0.0.1:${port}/json/version`)).json()) as {
    webSocketDebuggerUrl: string;
  };
  const ws = new WebSocket(version.webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise((r) => ws.once('open', r));
  const cdp = new Cdp(ws);
  const worker = new Promise<string>((resolve) => {
    cdp.listeners.push((e) => {
      if (e.method !== 'Target.attachedToTarget') return;
      const p = e.params as { sessionId: string; targetInfo: { type: string; url: string } };
      if (p.targetInfo.type === 'page' && p.targetInfo.url.includes('bench.html')) {
        void cdp.send(
          'Target.setAutoAttach',
          { autoAttach: true, waitForDebuggerOnStart: false, flatten: true },
          p.sessionId,
        );
      } else if (p.targetInfo.type === 'worker') resolve(p.sessionId);
    });
  });
  await cdp.send('Target.setAutoAttach', {
    autoAttach: true,
    waitForDebuggerOnStart: false,
    flatten: true,
    filter: [{ type: 'page' }, { type: 'browser', exclude: true }],
  });
  const session = await worker;
  await cdp.send('Profiler.enable', {}, session);
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 }, session);
  const profiled = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    await cdp.send('Profiler.start', {}, session);
    const started = performance.now();
    const out = await run();
    const wall = performance.now() - started;
    const r = (await cdp.send('Profiler.stop', {}, session)) as { profile: Profile };
    summarize(`${name} (wall ${wall.toFixed(0)} ms)`, r.profile);
    return out;
  };
  let n = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const plain of round % 2 === 0 ? [false, true] : [true, false]) {
      const form = plain ? 'plain' : 'compact';
      const local = `profile-local-${++n}`;
      const synced = `profile-synced-${n}`;
      const a = await profiled(`${form} appends + signing`, () =>
        inWorker(page, 'compactAppends', local, plain, EVENTS, 18),
      );
      console.log(`   appends ${a.appendMs.toFixed(0)} ms, signing ${a.signMs.toFixed(0)} ms`);
      await profiled(`${form} replay`, () => inWorker(page, 'compactReplay', local, plain));
      await profiled(`${form} catch-up`, () =>
        inWorker(page, 'compactCatchUp', synced, plain, urlFor(`p-${n}`), EVENTS),
      );
      await profiled(`${form} synced replay`, () => inWorker(page, 'compactReplay', synced, plain));
      await inWorker(page, 'compactDrop', local);
      await inWorker(page, 'compactDrop', synced);
    }
  }
  ws.close();
} finally {
  await context.close();
  await t.stop();
  await server.close();
  rmSync(outDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
}
