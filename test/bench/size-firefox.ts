/**
 * `npm run bench -- storage`, Firefox (Debian's firefox-esr over WebDriver BiDi, as
 * browser-firefox.ts drives it): the same run as Chromium's (size-browser.ts) on a profile folder
 * kept on disk, weighing the origin's IndexedDB files, SQLite databases (+ WAL, checkpointed by
 * Firefox when it closes them) and the `.files` folders of values stored apart.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { launchFirefox } from '../browser/firefox/launch.ts';
import type { BenchPage } from './browser-calls.ts';
import type { BenchResult } from './results.ts';
import { runBrowserSize, type SizeBrowser } from './size-browser.ts';
import { folderBytes } from './size-measure.ts';

const firefoxSize: SizeBrowser = {
  name: 'Firefox',
  async session(profile, url, run) {
    const browser = await launchFirefox(profile);
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(30 * 60_000);
      await page.goto(`${url}/test/browser/fixtures/bench.html`);
      await page.waitForFunction(() => document.title === 'ready');
      // puppeteer types evaluate's argument as handles flattened; the bench passes plain data.
      const evaluate: BenchPage['evaluate'] = (fn, arg) =>
        page.evaluate(fn as (arg: unknown) => never, arg);
      return await run({ evaluate });
    } finally {
      await browser.close();
    }
  },
  weigh(profile, events) {
    const root = join(profile, 'storage', 'default');
    let total = 0;
    let wal = 0;
    let files = 0;
    const tables = new Map<string, number>();
    for (const origin of readdirSync(root)) {
      if (!origin.startsWith('http+++127.0.0.1')) continue;
      const idb = join(root, origin, 'idb');
      total += folderBytes(idb);
      wal += folderBytes(idb, (name) => name.endsWith('-wal'));
      for (const entry of readdirSync(idb, { withFileTypes: true })) {
        if (entry.isDirectory()) files += folderBytes(join(idb, entry.name));
        if (entry.isFile() && entry.name.endsWith('.sqlite')) {
          for (const [name, bytes] of sqliteTables(join(idb, entry.name))) {
            tables.set(name, (tables.get(name) ?? 0) + bytes);
          }
        }
      }
    }
    const per = (n: number) => (n / events).toFixed(0);
    return {
      total,
      detail:
        `the origin's idb/ after the browser closed: SQLite of which WAL ${per(wal)}, .files ${per(files)} B/event; ` +
        [...tables]
          .sort((a, b) => b[1] - a[1])
          .map(([name, bytes]) => `${name} ${per(bytes)}`)
          .join(', '),
    };
  },
};

/**
 * Bytes of each table and index of one of Firefox's IndexedDB files (SQLite's dbstat), read from
 * a copy-free read-only connection once the browser closed it: object_data holds the values
 * (Snappy-compressed structured clones), index_data and unique_index_data the index entries.
 */
function sqliteTables(file: string): [string, number][] {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name')
      .all() as { name: string; bytes: number }[];
    return rows.map((r) => [r.name, r.bytes]);
  } finally {
    db.close();
  }
}

export function runSizeFirefoxBenches(): Promise<BenchResult[]> {
  return runBrowserSize(firefoxSize);
}
