/**
 * The demo as `npm start` serves it (production build, startDemo on port 0 with a temporary
 * SQLite file), in Firefox: it starts (it stayed at "Starting…" while connectStore waited on
 * the unanswered storage prompt, RELIABILITY 39), shows the board, and a card added on it is
 * stored and synced. The full end-to-end story runs in Chromium (test/demo).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoServer, startDemo } from '../../../demo/server/app.ts';
import { buildDemo } from '../../../demo/server/build.ts';
import { silentLogger } from '../../../src/server/index.ts';
import { waitUntil } from '../tabs/harness.ts';
import { launchFirefox } from './launch.ts';

function status(page: Page) {
  return page.evaluate(() => {
    const element = document.getElementById('sync-status');
    return { state: element?.dataset.state ?? '', pending: Number(element?.dataset.pending ?? -1) };
  });
}

function board(page: Page) {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('#board section.column')].map((column) => ({
      title: column.querySelector<HTMLInputElement>('.column-title')?.value ?? '?',
      cards: [...column.querySelectorAll<HTMLInputElement>('.card .card-title')].map(
        (input) => input.value,
      ),
    })),
  );
}

describe('the demo in Firefox', () => {
  let tmp: string;
  let demo: DemoServer;
  let firefox: Browser;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'chronicle-demo-firefox-'));
    await buildDemo(join(tmp, 'dist'));
    [demo, firefox] = await Promise.all([
      startDemo({ distDir: join(tmp, 'dist'), dataDir: join(tmp, 'data'), log: silentLogger }),
      launchFirefox(),
    ]);
  }, 120_000);

  afterAll(async () => {
    await firefox?.close();
    await demo?.close();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('starts, shows the board, and adds and syncs a card', { timeout: 60_000 }, async () => {
    const page = await (await firefox.createBrowserContext()).newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(demo.url);
    await waitUntil(
      async () => {
        const s = await status(page);
        return s.state === 'idle' && s.pending === 0;
      },
      'the demo started and synced',
      20_000,
      50,
    );
    expect(await board(page)).toEqual([
      { title: 'To do', cards: [] },
      { title: 'Doing', cards: [] },
      { title: 'Done', cards: [] },
    ]);
    await page.type('#add-card-todo', 'Written in Firefox');
    await page.keyboard.press('Enter');
    await waitUntil(
      async () => (await board(page))[0]?.cards.includes('Written in Firefox'),
      'the card on the board',
      15_000,
      50,
    );
    await waitUntil(
      async () => {
        const s = await status(page);
        return s.state === 'idle' && s.pending === 0;
      },
      'the card synced',
      15_000,
      50,
    );
    expect(await page.$eval('#fatal', (element) => (element as HTMLElement).hidden)).toBe(true);
    expect(errors).toEqual([]);
  });
});
