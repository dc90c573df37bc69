/**
 * Seven projects, all run by `npm test`:
 * - node:    the unit, property and integration tests (fake-indexeddb, Node sockets);
 * - compacting: the server's sync and convergence suites again, every event sealed into a
 *            compressed block right after its ingest (issue 18);
 * - retaining: the suites whose stores sync with a server, and the convergence property through
 *            it, again with retention on (4 events kept), every message deflated and every event
 *            sealed; files that must trim fail if they did not (test/server/retaining-setup.ts);
 * - browser: tests that run inside real Chromium through Vitest's browser mode (the storage
 *            conformance suite on real IndexedDB, the worker round trip, errors across threads);
 * - firefox: the same in-page tests inside real Firefox, through a small Vitest browser
 *            provider that drives it over WebDriver BiDi with puppeteer-core
 *            (test/browser/firefox/provider.ts);
 * - tabs:    Node tests that drive real browsers over pages served by a Vite dev server, for
 *            what one page cannot do alone (several tabs, reloads, closing pages, CDP quota
 *            overrides, a Firefox and a Chromium page syncing), the React hooks on a
 *            Vite-built React page, and the demo's end-to-end tests on its production build;
 * - consumer: the package as a user installs it: `npm pack` once (test/consumer/global-setup.ts),
 *            then fresh projects installing the tarball offline (a create-vite app built and
 *            opened in Chromium and Firefox, its encrypted list synced through the tarball's
 *            chronicle-server, a plain Node server, a strict nodenext type check, publint and
 *            attw).
 * Chromium is Debian's /usr/bin/chromium, Firefox Debian's /usr/bin/firefox-esr (browsers
 * cannot be downloaded here; CI installs them).
 */
import { playwright } from '@vitest/browser-playwright';
import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/browser/chromium.ts';
import { puppeteerFirefox } from './test/browser/firefox/provider.ts';

/** Imports of the package by its own name run the sources, not dist/ (package.json exports). */
const SOURCE_CONDITION = '@chronicle-es/source';

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/browser/**', 'test/demo/**', 'test/consumer/**', '**/node_modules/**'],
          environment: 'node',
        },
      },
      {
        extends: true,
        test: {
          // Issue 18: the server's suites again on SQLite storages sealing every event into
          // blocks right after its ingest (test/server/compacting-setup.ts).
          name: 'compacting',
          include: [
            'test/server/sync.test.ts',
            'test/server/convergence.property.test.ts',
            'test/server/collisions.test.ts',
            'test/server/copy-replaced.test.ts',
            'test/server/e2e.test.ts',
            'test/server/publisher.test.ts',
            'test/server/history-sync.test.ts',
          ],
          setupFiles: ['test/server/compacting-setup.ts'],
          environment: 'node',
        },
      },
      {
        extends: true,
        test: {
          // Issue 18 "Done when": the suites whose stores sync with a server, and the
          // convergence properties, again with retention on (a few events kept), every message
          // deflated on the wire and every event sealed into blocks (test/server/retaining-setup.ts).
          name: 'retaining',
          include: [
            'test/server/convergence.property.test.ts',
            'test/server/e2e.test.ts',
            'test/server/collisions.test.ts',
            'test/server/copy-replaced.test.ts',
            'test/server/history-sync.test.ts',
            'test/server/attach.test.ts',
            'test/server/clock-skew.test.ts',
            'test/server/limits-exchange.test.ts',
            'test/server/token-scope.test.ts',
            'test/server/relay-ownership.test.ts',
            'test/server/wire-compression.test.ts',
            'test/server/signing-race.test.ts',
            'test/server/shred.test.ts',
            'test/server/retention-sync.test.ts',
          ],
          // Not here: the tamper and encryption tests edit or search the server's rows and files
          // for plain bytes, which sealed blocks replace; sync.test.ts speaks the raw protocol
          // (no store to retain) and runs in `compacting`.
          setupFiles: ['test/server/compacting-setup.ts', 'test/server/retaining-setup.ts'],
          environment: 'node',
        },
      },
      {
        extends: true,
        // Pre-bundled up front: a dependency discovered mid-run makes Vite reload the page.
        optimizeDeps: { include: ['comlink', 'idb'] },
        test: {
          name: 'browser',
          include: ['test/browser/in-page/**/*.test.ts'],
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
      {
        extends: true,
        optimizeDeps: { include: ['comlink', 'idb'] },
        test: {
          name: 'firefox',
          include: ['test/browser/in-page/**/*.test.ts'],
          // One Firefox page at a time, beside the Chromium projects, on 2 cores.
          fileParallelism: false,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: puppeteerFirefox(),
            instances: [{ browser: 'firefox' }],
          },
        },
      },
      {
        extends: true,
        test: {
          name: 'tabs',
          // The demo's end-to-end tests and the Node-driven Firefox tests launch browsers too:
          // they queue with the tabs tests.
          include: [
            'test/browser/tabs/**/*.test.ts',
            'test/browser/react/**/*.test.ts',
            'test/browser/firefox/**/*.test.ts',
            'test/demo/**/*.test.ts',
          ],
          environment: 'node',
          // Each file launches its own Chromium: on 2 cores, one at a time keeps timings sane.
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'consumer',
          include: ['test/consumer/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/consumer/global-setup.ts'],
          // Installs, tsc and vite builds: one consumer at a time on 2 cores.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
