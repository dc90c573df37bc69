/**
 * Drives real Chromium from Node for the tests one page cannot do alone: several tabs, reloads,
 * closed pages, a killed browser, CDP quota overrides. Pages are test/browser/fixtures/tab.html,
 * served by a Vite dev server started here (port 0, 127.0.0.1).
 *
 * Invariants:
 * 1. Every wait is a bounded poll for a condition (waitUntil), never a sleep.
 * 2. Each test uses its own database name, so tests never see each other's data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build, createServer, type PreviewServer, preview, type ViteDevServer } from 'vite';
import type { RetainPolicy } from '../../../src/index.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.ts';

const root = resolve(import.meta.dirname, '../../..');
let names = 0;

export function uniqueDb(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++names}`;
}

export async function startServer(): Promise<{ server: ViteDevServer; url: string }> {
  const server = await createServer({
    root,
    configFile: false,
    logLevel: 'error',
    cacheDir: join(root, 'node_modules/.vite-tabs'),
    server: { port: 0, host: '127.0.0.1', strictPort: false, hmr: false },
    // Pre-bundled up front: a dependency discovered mid-test makes Vite reload the pages.
    optimizeDeps: { include: ['comlink', 'idb'], entries: [] },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (address === null || typeof address !== 'object' || address === undefined) {
    throw new Error('vite did not listen');
  }
  return { server, url: `http://127.0.0.1:${address.port}` };
}

/**
 * A production build of HTML entry pages (paths relative to the repo root), bundled and
 * minified like an app ships, workers included, served statically: for measurements where
 * loading the dev server's unbundled modules one by one would dominate (page load, worker
 * start). Pages keep their path: `${url}/test/browser/fixtures/bench.html`.
 */
export async function startBuiltServer(
  entries: string[],
): Promise<{ server: PreviewServer; url: string; close(): Promise<void> }> {
  const outDir = mkdtempSync(join(tmpdir(), 'chronicle-build-'));
  const input = Object.fromEntries(entries.map((entry, i) => [`page${i}`, join(root, entry)]));
  await build({
    root,
    configFile: false,
    logLevel: 'error',
    build: { outDir, emptyOutDir: true, rolldownOptions: { input } },
    // Module workers: the store's worker imports comlink and idb like the app's would.
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
  if (address === null || typeof address !== 'object') throw new Error('preview did not listen');
  return {
    server,
    url: `http://127.0.0.1:${address.port}`,
    async close() {
      await server.close();
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
  });
}

export interface TabOptions {
  db: string;
  mode: 'shared' | 'dedicated';
  poll?: number;
  drop?: boolean;
  durability?: 'strict' | 'relaxed';
  /** StoreOptions.strictStreams of the tab's worker. */
  strict?: string[];
  /** StoreOptions.encryption's key, as encodeEncryptionKey text. */
  key?: string;
  /** serveStore's `sync`: the leading worker syncs with this server. */
  syncServer?: { url: string; token?: string };
  /** StoreOptions.retain. */
  retain?: RetainPolicy;
}

export function tabUrl(base: string, options: TabOptions): string {
  const q = new URLSearchParams({ db: options.db, mode: options.mode });
  if (options.poll !== undefined) q.set('poll', String(options.poll));
  if (options.drop) q.set('drop', '1');
  if (options.durability !== undefined) q.set('durability', options.durability);
  if (options.strict !== undefined) q.set('strict', options.strict.join(','));
  if (options.key !== undefined) q.set('key', options.key);
  if (options.syncServer !== undefined) {
    q.set('sync', options.syncServer.url);
    if (options.syncServer.token !== undefined) q.set('token', options.syncServer.token);
  }
  if (options.retain !== undefined) q.set('retain', JSON.stringify(options.retain));
  return `${base}/test/browser/fixtures/tab.html?${q}`;
}

/** Opens a tab on the fixture page and connects its store; returns the page. */
export async function openTab(
  context: BrowserContext,
  base: string,
  options: TabOptions,
): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[tab ${options.db}] ${error.message}`));
  await loadTab(page, base, options);
  return page;
}

export async function loadTab(page: Page, base: string, options: TabOptions): Promise<void> {
  await page.goto(tabUrl(base, options));
  await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 20_000 });
  await page.evaluate(() =>
    (window as unknown as { tab: { connect(): Promise<string> } }).tab.connect(),
  );
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function waitUntil<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A Chromium that can be SIGKILLed and started again on the same profile (RELIABILITY 12):
 * playwright's launch() owns a temporary profile, so this one is spawned by hand and driven
 * over CDP.
 */
export class KillableChromium {
  readonly profile = mkdtempSync(join(tmpdir(), 'chronicle-kill-'));
  private process: ChildProcess | undefined;
  browser: Browser | undefined;

  async start(): Promise<BrowserContext> {
    const child = spawn(
      CHROMIUM_PATH,
      [
        ...CHROMIUM_ARGS,
        '--headless',
        '--remote-debugging-port=0',
        `--user-data-dir=${this.profile}`,
        'about:blank',
      ],
      // Its own process group, so that a kill takes Chromium's helper processes with it.
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    this.process = child;
    const wsUrl = await new Promise<string>((resolvePromise, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not start: ${text}`)), 20_000);
      child.stderr?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(text);
        if (match) {
          clearTimeout(timer);
          resolvePromise(match[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`chromium exited with ${code}: ${text}`)));
    });
    this.browser = await chromium.connectOverCDP(wsUrl);
    const context = this.browser.contexts()[0];
    if (context === undefined) throw new Error('no default context');
    return context;
  }

  /** SIGKILL: no unload, no flush, like a crash of the browser. */
  async kill(): Promise<void> {
    const child = this.process;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      // The whole group: the browser and its renderer, GPU and utility processes, as an OS kill would.
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    await exited;
    this.process = undefined;
  }

  async dispose(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
    await this.kill();
    // Chromium's helper processes can outlive a SIGKILLed browser for a moment and still write
    // into the profile: retry, and leave a temporary folder behind rather than fail the test.
    try {
      rmSync(this.profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch {
      // Only a leftover in the OS's temporary folder.
    }
  }
}
