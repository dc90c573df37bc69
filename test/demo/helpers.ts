/**
 * Drives the built demo in real Chromium: the server as `npm start` runs it (startDemo, on
 * port 0 with a temporary SQLite file), one browser context per "device".
 *
 * Invariants:
 * 1. Every wait is a bounded poll for a condition the page shows in its DOM, never a sleep.
 * 2. Screenshots are artifacts for people (test-results/demo); assertions read the DOM.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { type DemoServer, startDemo } from '../../demo/server/app.ts';
import { buildDemo } from '../../demo/server/build.ts';
import { silentLogger } from '../../src/server/index.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/chromium.ts';
import { waitUntil as pollUntil } from '../browser/tabs/harness.ts';

export const ARTIFACTS = resolve(import.meta.dirname, '../../test-results/demo');

export interface DemoFixture {
  demo: DemoServer;
  browser: Browser;
  /** Where the demo's sync server keeps its SQLite files. */
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The demo as `npm start` serves it: built into a temporary folder, served by startDemo on port
 * 0 with a temporary SQLite file; and a headless Debian Chromium to drive it.
 */
export async function startDemoFixture(): Promise<DemoFixture> {
  const tmp = mkdtempSync(join(tmpdir(), 'chronicle-demo-'));
  await buildDemo(join(tmp, 'dist'));
  const demo = await startDemo({
    distDir: join(tmp, 'dist'),
    dataDir: join(tmp, 'data'),
    log: silentLogger,
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
  });
  return {
    demo,
    browser,
    dataDir: join(tmp, 'data'),
    async close() {
      await browser.close();
      await demo.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns something other than undefined/false (the tabs harness's poll). */
export function waitUntil<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  return pollUntil(check, what, timeoutMs, 50);
}

export async function snap(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Column title → its cards' titles, in display order. */
export type BoardText = Record<string, string[]>;

export function boardText(page: Page): Promise<BoardText> {
  return page.evaluate(() => {
    const board: Record<string, string[]> = {};
    for (const column of document.querySelectorAll<HTMLElement>('#board section.column')) {
      const title = column.querySelector<HTMLInputElement>('.column-title')?.value ?? '?';
      board[title] = [...column.querySelectorAll<HTMLInputElement>('.card .card-title')].map(
        (input) => input.value,
      );
    }
    return board;
  });
}

export function syncState(page: Page): Promise<{ state: string; pending: number }> {
  return page.evaluate(() => {
    const status = document.getElementById('sync-status');
    return { state: status?.dataset.state ?? '', pending: Number(status?.dataset.pending ?? -1) };
  });
}

/** Waits until the page says it is online, up to date, with nothing waiting to be sent. */
export async function waitSynced(page: Page, what: string): Promise<void> {
  await waitUntil(async () => {
    const s = await syncState(page);
    return s.state === 'idle' && s.pending === 0;
  }, `${what}: synced`);
}

export async function openDevice(context: BrowserContext, url: string, label: string) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[${label}] ${error.message}`));
  await page.goto(url);
  // The first visit installs the service worker; it claims the page once the shell is cached.
  await waitUntil(
    () => page.evaluate(() => navigator.serviceWorker.controller !== null),
    `${label}: service worker in control`,
  );
  await waitSynced(page, label);
  return page;
}

export async function addCard(page: Page, column: string, title: string): Promise<void> {
  const input = page.locator(`#add-card-${column}`);
  await input.fill(title);
  await input.press('Enter');
  await waitUntil(
    async () => Object.values(await boardText(page)).some((cards) => cards.includes(title)),
    `card ${title} on the board`,
  );
}

export function card(page: Page, title: string) {
  return page.locator('#board .card').filter({
    has: page.locator(`.card-title[aria-label="Card title (${title})"]`),
  });
}

export async function renameCard(page: Page, from: string, to: string): Promise<void> {
  const input = card(page, from).locator('.card-title');
  await input.fill(to);
  // Enter goes to the focused title, as a user's does. The board re-renders on every event and
  // puts the typed text and the focus on the new element (dom.ts replaceChildrenKeepingFocus);
  // a locator's press waits for the element it found to stay attached, which a board busy with
  // synced events may not give it for many seconds.
  await page.keyboard.press('Enter');
  await waitUntil(
    async () => Object.values(await boardText(page)).some((cards) => cards.includes(to)),
    `card renamed to ${to}`,
  );
}

/** Events in the activity panel, oldest first (the panel lists them newest first). */
export async function activity(page: Page) {
  const rows = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('#activity-list > li')].map((li) => ({
      id: li.dataset.event ?? '',
      type: li.dataset.type ?? '',
      synced: li.dataset.synced === 'yes',
      conflict: li.querySelector('.conflict-role')?.textContent ?? '',
    })),
  );
  return rows.reverse();
}
