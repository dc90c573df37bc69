/**
 * (a) A front-end team's first step: a create-vite vanilla-ts app (create-vite 8's template,
 * its tsconfig untouched: erasableSyntaxOnly, verbatimModuleSyntax, moduleResolution bundler,
 * noUncheckedSideEffectImports) installs the tarball, writes the worker setup the README shows,
 * runs the template's `npm run build` (tsc && vite build) with no Vite config of its own, and
 * the built page, served statically, shows projected state from the store in its worker.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/chromium.ts';
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

function openCount(page: Page, expected: string): Promise<unknown> {
  return page.waitForFunction(
    (text) => document.querySelector('#open')?.textContent === text,
    expected,
    { timeout: 20_000 },
  );
}

describe('a create-vite vanilla-ts app with the tarball installed', () => {
  it('builds with the template script, tsc && vite build, and no Vite config', async () => {
    await app.run('npm', ['run', 'build']);
    const assets = readdirSync(join(app.dir, 'dist/assets')).filter((f) => f.endsWith('.js'));
    const workers = assets.filter((f) => f.startsWith('store.worker'));
    expect(workers).toHaveLength(1);
    // Sizes as a user's production build ships them, per script (hash left out of the name).
    const figures: Record<string, number> = {};
    for (const file of assets) {
      const body = readFileSync(join(app.dir, 'dist/assets', file));
      const name = file.replace(/-[\w-]{8}\.js$/, '.js');
      figures[`vite app: ${name}, gzip bytes`] = gzipSync(body).length;
      figures[`vite app: ${name}, brotli bytes`] = brotliCompressSync(body).length;
    }
    recordFigures(figures);
  });

  it('shows the state a projection in the worker folds, and keeps it across a reload', async () => {
    const site = await serveStatic(join(app.dir, 'dist'));
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM_PATH,
        args: [...CHROMIUM_ARGS],
        headless: true,
      });
      const context = await browser.newContext();
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
      await context.close();
    } finally {
      await site.close();
    }
  });
});
