/**
 * `npm run bench -- firefox`: the append benchmarks of browser-appends.ts in Firefox (Debian's
 * firefox-esr, headless, driven over WebDriver BiDi by puppeteer-core, on a fresh profile on
 * disk), on the same production build of the bench page and worker as Chromium's.
 */
import { launchFirefox } from '../browser/firefox/launch.ts';
import { startBuiltServer } from '../browser/tabs/harness.ts';
import { runAppendBenches } from './browser-appends.ts';
import type { BenchPage } from './browser-calls.ts';
import type { BenchResult } from './results.ts';

export async function runFirefoxBenches(): Promise<BenchResult[]> {
  const server = await startBuiltServer(['test/browser/fixtures/bench.html']);
  const browser = await launchFirefox();
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(10 * 60_000);
    await page.goto(`${server.url}/test/browser/fixtures/bench.html`);
    await page.waitForFunction(() => document.title === 'ready');
    // puppeteer's evaluate types its argument as handles flattened; the bench passes plain data.
    const evaluate: BenchPage['evaluate'] = (fn, arg) =>
      page.evaluate(fn as (arg: unknown) => never, arg);
    return await runAppendBenches({ evaluate }, 'firefox');
  } finally {
    await browser.close();
    await server.close();
  }
}
