/**
 * The demo on a bounded device (demo/src/retention.ts, loaded-log.ts): with `?keep-events=10`
 * the device trims all but its newest events once the server holds them, and Activity and time
 * travel reach the older history on the server: paged in with "Loading older history…" while it
 * comes, and "Older history is on the server" when the server is gone.
 *
 * Invariants:
 * 1. The trim is real: the test waits for the device's horizon in its IndexedDB, and with the
 *    server stopped the older pages cannot be read from the device.
 * 2. Every wait is a bounded poll on what the page shows (helpers.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoServer, startDemo } from '../../demo/server/app.ts';
import { buildDemo } from '../../demo/server/build.ts';
import { silentLogger } from '../../src/server/index.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/chromium.ts';
import { activity, addCard, boardText, openDevice, snap, syncState, waitUntil } from './helpers.ts';

const STEP = 120_000;
const CARDS = 24;
/** Keep the newest 10 events; read older history 8 events a page. */
const QUERY = '?keep-events=10&history-page=8';
const ON_SERVER = 'Older history is on the server';

/** Activity's entries in words, oldest first ("Card 1: added “Card 1” to To do"). */
function activityText(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('#activity-list > li')]
      .map((li) => {
        const subject = li.querySelector('.subject')?.textContent ?? '';
        const summary = li.querySelector('.summary summary, span.summary')?.textContent ?? '';
        return `${subject}: ${summary}`;
      })
      .reverse(),
  );
}

/** The device's horizon (IndexedDB meta `sys:horizon`), undefined before its first trim. */
function horizon(page: Page): Promise<string | undefined> {
  return page.evaluate(
    () =>
      new Promise<string | undefined>((resolve, reject) => {
        const open = indexedDB.open('chronicle-demo');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const get = db.transaction('meta').objectStore('meta').get('sys:horizon');
          get.onerror = () => reject(get.error);
          get.onsuccess = () => {
            db.close();
            resolve(get.result === undefined ? undefined : JSON.stringify(get.result));
          };
        };
      }),
  );
}

/** Records every text `#id` shows from now on (a loading line may last one frame). */
async function recordTexts(page: Page, id: string): Promise<void> {
  await page.evaluate((id) => {
    const element = document.getElementById(id) as HTMLElement;
    const seen: string[] = [];
    (window as unknown as Record<string, string[]>)[`seen:${id}`] = seen;
    new MutationObserver(() => seen.push(element.textContent ?? '')).observe(element, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  }, id);
}

function recorded(page: Page, id: string): Promise<string[]> {
  return page.evaluate(
    (id) => (window as unknown as Record<string, string[]>)[`seen:${id}`] ?? [],
    id,
  );
}

const text = (page: Page, id: string) =>
  page.evaluate((id) => document.getElementById(id)?.textContent ?? '', id);

describe('the demo on a bounded device', () => {
  let tmp: string;
  let demo: DemoServer | undefined;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Slider positions (1-based, oldest first) of the entries that added Card 3 and Card 4. */
  let third = 0;
  let fourth = 0;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'chronicle-demo-bounded-'));
    await buildDemo(join(tmp, 'dist'));
    demo = await startDemo({
      distDir: join(tmp, 'dist'),
      dataDir: join(tmp, 'data'),
      log: silentLogger,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [...CHROMIUM_ARGS],
      headless: true,
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('trims what the server holds, and pages it back into Activity', {
    timeout: STEP,
  }, async () => {
    if (demo === undefined) throw new Error('no demo server');
    page = await openDevice(context, `${demo.url}${QUERY}`, 'A');
    for (let i = 1; i <= CARDS; i++) await addCard(page, 'todo', `Card ${i}`);
    await waitUntil(async () => (await syncState(page)).pending === 0, 'every card on the server');
    await waitUntil(() => horizon(page), 'the device trimmed what the server holds');

    // The window: the newest events the device keeps, and a way to the older ones.
    expect(await activityText(page)).not.toContain('Card 1: added “Card 1” to To do');
    expect(await text(page, 'activity-older')).toContain('This device keeps the newest 10 events');
    const older = page.getByRole('button', { name: 'Show older' });
    await recordTexts(page, 'activity-older');
    for (let i = 0; i < 10 && (await older.isVisible()); i++) {
      await older.click();
      await waitUntil(
        async () => !(await text(page, 'activity-older')).includes('Loading'),
        'a page of older history',
      );
    }
    expect(await older.isVisible()).toBe(false);
    expect(await recorded(page, 'activity-older')).toContain('Loading older history…');
    const entries = await activityText(page);
    // Every card's entry, each described against the board before it, from the first event on.
    expect(entries[0]).toMatch(/^.*: named a device “.+”$/);
    for (let i = 1; i <= CARDS; i++) {
      expect(entries[i]).toBe(`Card ${i}: added “Card ${i}” to To do`);
    }
    expect(await text(page, 'activity-summary')).toBe(`${CARDS + 1} entries`);
    const adds = (await activity(page)).map((e, i) => ({ ...e, position: i + 1 }));
    third = adds.filter((e) => e.type === 'CardAdded')[2]?.position ?? 0;
    fourth = adds.filter((e) => e.type === 'CardAdded')[3]?.position ?? 0;
    await snap(page, 'bounded-01-older-history');
  });

  it('travels to a point below the horizon online', { timeout: STEP }, async () => {
    const slider = page.getByLabel('Board as of event');
    await slider.fill(String(third));
    await waitUntil(
      async () =>
        JSON.stringify(await boardText(page)) ===
        JSON.stringify({ 'To do': ['Card 1', 'Card 2', 'Card 3'], Doing: [], Done: [] }),
      'the board as it was after three cards',
    );
    expect(await text(page, 'history-status')).toBe('');
    await snap(page, 'bounded-02-time-travel');
  });

  it('says older history is on the server when the server is gone', {
    timeout: STEP,
  }, async () => {
    await demo?.close();
    demo = undefined;
    await waitUntil(async () => (await syncState(page)).state !== 'idle', 'A sees the server go');

    // Time travel to another point below the horizon: said, not shown as a wrong board.
    await page.getByLabel('Board as of event').fill(String(fourth));
    await waitUntil(
      async () => (await text(page, 'history-status')).includes(ON_SERVER),
      'time travel says older history is on the server',
    );
    expect(await page.locator('#board').isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Back to now' }).click();
    await waitUntil(
      async () => (await boardText(page))['To do']?.length === CARDS,
      'the present board',
    );

    // A reload (the service worker serves the page) loads the window only: older pages fail.
    await page.reload();
    await waitUntil(
      async () => (await boardText(page))['To do']?.length === CARDS,
      'the board after an offline reload',
    );
    const older = page.getByRole('button', { name: 'Show older' });
    for (let i = 0; i < 10 && !(await text(page, 'activity-older')).includes(ON_SERVER); i++) {
      await older.click();
      await waitUntil(
        async () => !(await text(page, 'activity-older')).includes('Loading'),
        'a page of older history, or its refusal',
      );
    }
    expect(await text(page, 'activity-older')).toContain(ON_SERVER);
    // What the device keeps still shows.
    expect((await activityText(page)).at(-1)).toBe(`Card ${CARDS}: added “Card ${CARDS}” to To do`);
    expect(await activityText(page)).not.toContain('Card 1: added “Card 1” to To do');

    await page.getByRole('button', { name: 'Load earlier changes' }).click();
    await waitUntil(
      async () => (await text(page, 'history-status')).includes(ON_SERVER),
      'time travel says older history is on the server',
    );
    await snap(page, 'bounded-03-offline');
  });
});
