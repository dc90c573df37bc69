/**
 * Tamper evidence in Firefox (issue 16, part 3), driven over WebDriver BiDi: a page (its store in
 * a worker, on Firefox's IndexedDB) catches up from a sync server whose SQLite file was edited
 * (fixtures/tampered-server.ts), like the Chromium test in test/browser/tabs/tamper.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXPECTED_FINDINGS,
  EXPECTED_TITLES,
  findings,
  tamperedServer,
  tamperView,
} from '../fixtures/tampered-server.ts';
import { startServer, uniqueDb, waitUntil } from '../tabs/harness.ts';
import { launchFirefox } from './launch.ts';
import { openFirefoxTab } from './pages.ts';

describe('a Firefox page catching up from a server whose file was edited', () => {
  let vite: ViteDevServer;
  let base: string;
  beforeAll(async () => {
    ({ server: vite, url: base } = await startServer());
  }, 60_000);
  afterAll(async () => {
    await vite?.close();
  });

  it('refuses the altered event, holds the others, and says so in its sync status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chronicle-ff-tamper-'));
    const lying = await tamperedServer(dir, uniqueDb('space'));
    const firefox = await launchFirefox();
    try {
      const tab = await openFirefoxTab(firefox.defaultBrowserContext(), base, {
        db: uniqueDb('ff-tamper'),
        mode: 'dedicated',
        sync: `${lying.server.url}/?token=${lying.token('page')}`,
      });
      const seen = await waitUntil(
        async () => {
          const view = await tab.run(tamperView, undefined);
          return view.titles.length === 3 && view.tampered.length === 2 ? view : undefined;
        },
        'the Firefox page caught up',
        30_000,
      );
      expect(seen.titles).toEqual(EXPECTED_TITLES);
      expect(findings(seen.tampered)).toEqual(EXPECTED_FINDINGS);
      await tab.close();
    } finally {
      await firefox.close();
      await lying.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
