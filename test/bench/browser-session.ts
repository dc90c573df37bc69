/**
 * A browser on a fresh profile on disk with the bench page open (browser-page.ts), for the
 * benches that compare two variants side by side in one session of each browser: Chromium
 * through Playwright, Firefox (Debian's firefox-esr) over WebDriver BiDi through puppeteer-core.
 * The profile is removed afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchFirefox } from '../browser/firefox/launch.ts';
import type { BenchPage } from './browser-calls.ts';
import { launchProfile, openBenchPage } from './browser-scale.ts';

export async function onBenchPage<T>(
  browser: string,
  url: string,
  run: (page: BenchPage) => Promise<T>,
): Promise<T> {
  const profile = mkdtempSync(join(tmpdir(), `chronicle-bench-${browser}-`));
  try {
    if (browser === 'chromium') {
      const context = await launchProfile(profile);
      try {
        return await run(await openBenchPage(context, url));
      } finally {
        await context.close();
      }
    }
    if (browser !== 'firefox') throw new Error(`bench: no browser called ${browser}`);
    return await onFirefoxBenchPage(profile, url, run);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The bench page in Firefox on the profile folder `profile`, for `run`. */
export async function onFirefoxBenchPage<T>(
  profile: string,
  url: string,
  run: (page: BenchPage) => Promise<T>,
): Promise<T> {
  const firefox = await launchFirefox(profile);
  try {
    const page = await firefox.newPage();
    page.setDefaultTimeout(30 * 60_000);
    await page.goto(`${url}/test/browser/fixtures/bench.html`);
    await page.waitForFunction(() => document.title === 'ready');
    // puppeteer types evaluate's argument as handles flattened; the bench passes plain data.
    const evaluate: BenchPage['evaluate'] = (fn, arg) =>
      page.evaluate(fn as (arg: unknown) => never, arg);
    return await run({ evaluate });
  } finally {
    await firefox.close();
  }
}
