/**
 * A Vitest browser provider that runs the in-page suite (test/browser/in-page) in Debian's
 * Firefox: the same test files, the same Vitest runner in the page, only the browser differs.
 * Vitest ships providers for Playwright (which cannot drive a stock Firefox) and WebdriverIO
 * (which needs geckodriver, not packaged here); this one opens Vitest's pages with
 * puppeteer-core over WebDriver BiDi (launch.ts).
 *
 * Invariants:
 * 1. One Firefox per run, started with the first page; each session gets its own browser
 *    context (its own storage), like the Playwright provider's.
 * 2. The in-page suite uses no provider commands (no userEvent, no screenshots, no CDP): it
 *    needs only pages opened and closed.
 */
import { defineBrowserProvider } from '@vitest/browser';
import type { Browser, BrowserContext, Page } from 'puppeteer-core';
import type { BrowserProvider, BrowserProviderOption } from 'vitest/node';
import { launchFirefox } from './launch.ts';

class PuppeteerFirefoxProvider implements BrowserProvider {
  readonly name = 'puppeteer-firefox';
  readonly supportsParallelism = false;
  private browser: Promise<Browser> | undefined;
  private readonly sessions = new Map<string, { context: BrowserContext; page: Page }>();

  getCommandsContext(sessionId: string): Record<string, unknown> {
    return { page: this.sessions.get(sessionId)?.page };
  }

  async openPage(sessionId: string, url: string): Promise<void> {
    this.browser ??= launchFirefox();
    const browser = await this.browser;
    await this.closeSession(sessionId);
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    this.sessions.set(sessionId, { context, page });
    page.on('pageerror', (error) => console.error(`[firefox] ${String(error)}`));
    await page.goto(url, { timeout: 0 });
  }

  private async closeSession(sessionId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return;
    this.sessions.delete(sessionId);
    await session.context.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const id of [...this.sessions.keys()]) await this.closeSession(id);
    const browser = this.browser;
    this.browser = undefined;
    await (await browser)?.close();
  }
}

export function puppeteerFirefox(): BrowserProviderOption {
  return defineBrowserProvider({
    name: 'puppeteer-firefox',
    supportedBrowser: ['firefox'],
    providerFactory: () => new PuppeteerFirefoxProvider(),
  });
}
