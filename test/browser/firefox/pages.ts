/**
 * One shape for a test tab (test/browser/fixtures/tab.html) in either browser, so a test reads
 * the same whether Chromium (playwright-core) or Firefox (puppeteer-core) runs the page.
 *
 * Invariants:
 * 1. Every wait is a bounded poll for a condition (the tabs harness's waitUntil), never a sleep.
 */
import type { BrowserContext as PlaywrightContext } from 'playwright-core';
import type { BrowserContext as PuppeteerContext } from 'puppeteer-core';
import { type TabOptions, tabUrl } from '../tabs/harness.ts';

/** Runs `fn(arg)` in the page; `fn` is serialized, so it may use only its argument and globals. */
export type PageRun = <R, A>(fn: (arg: A) => R | Promise<R>, arg: A) => Promise<R>;

export interface TestTab {
  readonly label: string;
  run: PageRun;
  close(): Promise<void>;
}

/** The fixture page's query, with the sync server's address (and token) for its worker. */
export interface SyncTabOptions extends TabOptions {
  sync?: string;
}

function urlOf(base: string, options: SyncTabOptions): string {
  const url = tabUrl(base, options);
  return options.sync === undefined ? url : `${url}&sync=${encodeURIComponent(options.sync)}`;
}

const connect = () => (window as unknown as { tab: { connect(): Promise<string> } }).tab.connect();

export async function openChromiumTab(
  context: PlaywrightContext,
  base: string,
  options: SyncTabOptions,
): Promise<TestTab> {
  const page = await context.newPage();
  const label = `chromium ${options.db}`;
  page.on('pageerror', (error) => console.error(`[${label}] ${error.message}`));
  await page.goto(urlOf(base, options));
  await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 20_000 });
  const run: PageRun = (fn, arg) =>
    page.evaluate(fn as (arg: unknown) => unknown, arg) as Promise<never>;
  await run(connect, undefined);
  return { label, run, close: () => page.close() };
}

export async function openFirefoxTab(
  context: PuppeteerContext,
  base: string,
  options: SyncTabOptions,
): Promise<TestTab> {
  const page = await context.newPage();
  const label = `firefox ${options.db}`;
  page.on('pageerror', (error) => console.error(`[${label}] ${String(error)}`));
  await page.goto(urlOf(base, options));
  await page.waitForFunction(() => document.title === 'ready', { timeout: 20_000 });
  const run: PageRun = (fn, arg) =>
    page.evaluate(fn as (arg: unknown) => unknown, arg) as Promise<never>;
  await run(connect, undefined);
  return { label, run, close: () => page.close() };
}
