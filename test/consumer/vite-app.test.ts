/**
 * (a) A front-end team's first step: a create-vite vanilla-ts app (create-vite 8's template,
 * its tsconfig untouched: erasableSyntaxOnly, verbatimModuleSyntax, moduleResolution bundler,
 * noUncheckedSideEffectImports) installs the tarball, writes the worker setup the README shows,
 * runs the template's `npm run build` (tsc && vite build) with no Vite config of its own, and
 * the built page, served statically, shows projected state from the store in its worker.
 * A second build adds the one setting the README asks for (`worker: { format: 'es' }`), which
 * keeps the sync code out of the worker's first load; both builds are opened.
 * (c) The same app as a user shares an encrypted list: a Chromium page and a Firefox page with
 * the list's key sync through the tarball's `chronicle-server` command (plain Node, SQLite),
 * signing and verifying every event; a page with another key syncs the same events and reports
 * them unreadable; the server's files hold the events but no title in clear.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { Page as FirefoxPage } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/chromium.ts';
import { launchFirefox } from '../browser/firefox/launch.ts';
import { startCliServer } from './cli-server.ts';
import { recordFigures } from './figures.ts';
import { type Consumer, installConsumer } from './install.ts';
import { packed } from './pack.ts';
import { serveStatic } from './static-server.ts';

let app: Consumer;
let browser: Browser | undefined;

beforeAll(async () => {
  app = await installConsumer(packed(), { fixture: 'vite-app' });
});

afterAll(async () => {
  await browser?.close();
});

async function launchChromium(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
  });
  return browser;
}

function openCount(page: Page, expected: string): Promise<unknown> {
  return page.waitForFunction(
    (text) => document.querySelector('#open')?.textContent === text,
    expected,
    { timeout: 20_000 },
  );
}

/** openCount in Firefox, driven by puppeteer-core (its arguments come after the options). */
function openCountInFirefox(page: FirefoxPage, expected: string): Promise<unknown> {
  return page.waitForFunction(
    (text: string) => document.querySelector('#open')?.textContent === text,
    { timeout: 20_000 },
    expected,
  );
}

/** Each script's gzip and brotli size, as a production build ships it (hash left out). */
function recordSizes(label: string, dist: string): string[] {
  const assets = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.js'));
  const figures: Record<string, number> = {};
  for (const file of assets) {
    const body = readFileSync(join(dist, 'assets', file));
    const name = file.replace(/-[\w-]{8}\.js$/, '.js');
    figures[`${label}: ${name}, gzip bytes`] = gzipSync(body).length;
    figures[`${label}: ${name}, brotli bytes`] = brotliCompressSync(body).length;
  }
  recordFigures(figures);
  return assets;
}

/** Scripts other than the page's entry and the worker's: chunks loaded by import(). */
const lazyChunks = (assets: string[]) =>
  assets.filter((f) => !f.startsWith('index') && !f.startsWith('store.worker'));

describe('a create-vite vanilla-ts app with the tarball installed', () => {
  it('builds with the template script, tsc && vite build, and no Vite config', async () => {
    await app.run('npm', ['run', 'build']);
    const assets = recordSizes('vite app (no config)', join(app.dir, 'dist'));
    expect(assets.filter((f) => f.startsWith('store.worker'))).toHaveLength(1);
  });

  it("builds with the README's worker format 'es' into a worker whose sync code is a chunk", async () => {
    cpSync(join(app.dir, 'vite.config.readme.ts'), join(app.dir, 'vite.config.ts'));
    await app.run(join(app.dir, 'node_modules/.bin/vite'), ['build', '--outDir', 'dist-es']);
    const assets = recordSizes("vite app (worker format 'es')", join(app.dir, 'dist-es'));
    expect(assets.filter((f) => f.startsWith('store.worker'))).toHaveLength(1);
    expect(lazyChunks(assets).length).toBeGreaterThan(0);
  });

  it('shows the state a projection in the worker folds in Firefox ESR too, across a reload (dist-es)', async () => {
    const site = await serveStatic(join(app.dir, 'dist-es'));
    const firefox = await launchFirefox();
    try {
      const page = await firefox.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(String(error)));
      const count = (expected: string) => openCountInFirefox(page, expected);
      await page.goto(site.url);
      await count('0');
      await page.click('#add');
      await page.click('#add');
      await count('2');
      await page.reload();
      await count('2');
      expect(errors).toEqual([]);
    } finally {
      await firefox.close();
      await site.close();
    }
  });

  it.each(['dist', 'dist-es'])(
    'shows the state a projection in the worker folds, and keeps it across a reload (%s)',
    async (dist) => {
      const site = await serveStatic(join(app.dir, dist));
      try {
        const context = await (await launchChromium()).newContext();
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (error) => errors.push(error.message));
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(message.text());
        });
        page.on('response', (response) => {
          if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
        });

        await page.goto(site.url);
        await openCount(page, '0');
        await page.click('#add');
        await page.click('#add');
        await openCount(page, '2');
        await page.reload();
        await openCount(page, '2');
        expect(errors).toEqual([]);
        // The app never syncs: no chunk loaded by import() was fetched (the sync code's).
        const chunks = lazyChunks(readdirSync(join(app.dir, dist, 'assets')));
        expect(site.requested.filter((path) => chunks.some((c) => path.endsWith(c)))).toEqual([]);
        await context.close();
      } finally {
        await site.close();
      }
    },
  );

  it("syncs an encrypted list between Chromium and Firefox through the tarball's chronicle-server, whose files hold no title (dist-es)", async () => {
    const backend = await installConsumer(packed(), {
      fixture: 'sync-server',
      repositorySqlite: true,
    });
    const dataFile = join(backend.dir, 'data', 'chronicle.sqlite');
    // A title no other test writes: what the server's files must not show.
    const title = `Buy oat milk ${randomUUID()}`;
    const key = randomBytes(32).toString('hex');
    const errors: string[] = [];
    // Undone in reverse, whatever step failed: the server ends before its files are read.
    const cleanups: (() => Promise<void>)[] = [];
    try {
      const server = await startCliServer(backend, dataFile, 'a-secret-of-at-least-32-characters!');
      cleanups.push(() => server.stop());
      const site = await serveStatic(join(app.dir, 'dist-es'));
      cleanups.push(() => site.close());
      const firefox = await launchFirefox();
      cleanups.push(() => firefox.close());
      const context = await (await launchChromium()).newContext();
      cleanups.push(() => context.close());
      const listUrl = async (sub: string) =>
        `${site.url}/#${new URLSearchParams({ key, sync: server.url, token: await server.token('groceries', sub), title })}`;

      const laptop = await context.newPage();
      laptop.on('pageerror', (error) => errors.push(`chromium: ${error.message}`));
      await laptop.goto(await listUrl('alice'));
      await openCount(laptop, '0');
      await laptop.click('#add');
      await laptop.click('#add');
      await openCount(laptop, '2');

      const phone = await firefox.newPage();
      phone.on('pageerror', (error) => errors.push(`firefox: ${String(error)}`));
      const phoneCount = (expected: string) => openCountInFirefox(phone, expected);
      await phone.goto(await listUrl('bob'));
      await phoneCount('2');
      await phone.click('#add');
      await phoneCount('3');
      await openCount(laptop, '3');

      // A device given another key syncs the same events, opens none, and says so.
      const stranger = await context.newPage();
      stranger.on('pageerror', (error) => errors.push(`stranger: ${error.message}`));
      const otherKey = randomBytes(32).toString('hex');
      await stranger.goto((await listUrl('carol')).replace(`key=${key}`, `key=${otherKey}`));
      await stranger.waitForFunction(
        () => document.querySelector('#unreadable')?.textContent === '3',
        undefined,
        { timeout: 20_000 },
      );
      await openCount(stranger, '0');
      expect(errors).toEqual([]);
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }
    const stored = [dataFile, `${dataFile}-wal`]
      .filter((file) => existsSync(file))
      .map((file) => readFileSync(file).toString('latin1'))
      .join('');
    // The server holds the three events, sealed and signed, their envelopes in clear...
    expect(stored.match(/todo-[0-9a-f-]{36}/g)?.length).toBeGreaterThanOrEqual(3);
    expect(stored).toContain('$sealed');
    expect(stored).toContain('$sig');
    // ...and no title: not the marker, nor any part of it.
    expect(stored).not.toContain(title);
    expect(stored).not.toContain('oat milk');
  });
});
