/**
 * The setup the tabs tests share: one Vite dev server and one Chromium per test file, and a
 * fresh browser context (its own storage, its own workers) per test, closed after it.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { launchBrowser, startServer } from './harness.ts';

export interface TabsSession {
  /** The dev server's URL, for openTab and loadTab. */
  readonly base: string;
  readonly browser: Browser;
  /** This test's context. */
  readonly context: BrowserContext;
}

/** Registers the hooks of the calling test file; read the fields inside tests. */
export function tabsSessionPerFile(): TabsSession {
  let server: ViteDevServer | undefined;
  let base: string | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    ({ server, url: base } = await startServer());
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  beforeEach(async () => {
    context = await ready(browser, 'browser').newContext();
  });
  afterEach(async () => {
    await context?.close();
  });

  return {
    get base() {
      return ready(base, 'base');
    },
    get browser() {
      return ready(browser, 'browser');
    },
    get context() {
      return ready(context, 'context');
    },
  };
}

function ready<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`tabs session: no ${name} outside a test`);
  return value;
}
