/**
 * The multi-tab suite's second pass with everything issue 18 turns on (its "Done when"), the
 * browser's counterpart of test/server/retaining-setup.ts: every tab's store keeps RETAIN (a few
 * events) and syncs, through its leading worker, with a real sync server on 127.0.0.1 that
 * deflates every message (permessage-deflate, threshold 0) and seals every event into a block.
 * Each test's database is its own space (a token per database), so tests never see each
 * other's events (harness.ts invariant 2).
 *
 * A test file uses it in three steps: vi.mock('./harness.ts') with retainingHarness (and
 * './session.ts' with retainingSession, to reach the suite's session), an import of the suite to
 * run again, unchanged, then `retainingTabs()` (its hooks registered after the suite's).
 *
 * Invariants:
 * 1. The pass cannot hold vacuously: after each test every open tab's database is read for the
 *    events trimmed (IndexedDB meta `sys:trimmedPos`), and afterAll fails unless some test
 *    trimmed and every sync socket negotiated permessage-deflate (read from the server's
 *    upgrade responses).
 * 2. A test's own `syncServer` or `retain` option wins over the defaults here.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import type { RetainPolicy } from '../../../src/index.ts';
import {
  createSyncServer,
  createToken,
  type SyncServer,
  sqliteStorage,
} from '../../../src/server/index.ts';
import { SECRET, tempDir } from '../../server/helpers.ts';
import type * as Harness from './harness.ts';
import type * as Session from './session.ts';

/** Keep 4 events, as the node `retaining` project does: most of a test's log is trimmed. */
export const RETAIN: RetainPolicy = { events: 4 };

/**
 * The suite's tests not run again, each for what it is about (all pass with everything on:
 * 67 s for the whole file against 44 s without, which the CI budget does not have), by name:
 * - the listeners of closed pages: no event is written, so nothing is retained, and it is the
 *   suite's longest test (8 pages opened and closed, 11–16 s);
 * - the sync leader's election and hand-over: one event, below any retain count;
 * - lost BroadcastChannel notices: three events, below the retain count; and a tab that does not
 *   lead reads trimmed history over a BroadcastChannel (history-relay.ts), which this test
 *   silences on purpose, so below a horizon its reads would say HISTORY_OFFLINE by design;
 * - tabs cold-starting at once: what it checks (no (replica, seq) reused) is decided before
 *   anything is acknowledged, so nothing is trimmed while it runs (none was in either mode).
 */
const NOT_RERUN = [
  'releases every listener of pages that close',
  'elects exactly one sync leader',
  'converges through IndexedDB when BroadcastChannel loses every notice',
  'never reuses (replica, seq) when tabs cold-start',
];

const state = {
  url: undefined as string | undefined,
  /** Pages opened in the current test, with their database. */
  pages: [] as { page: Page; db: string }[],
  /** Per test: its name and the most events any of its databases trimmed. */
  outcomes: [] as { test: string; trimmed: number }[],
  /** Sync upgrades answered, and those that accepted permessage-deflate. */
  upgrades: 0,
  deflated: 0,
  session: undefined as Session.TabsSession | undefined,
};

/** The options a tab of the second pass opens with (invariant 2). */
function everything(options: Harness.TabOptions): Harness.TabOptions {
  if (state.url === undefined) throw new Error('retaining tabs: no sync server (beforeAll)');
  const token = createToken(SECRET, {
    space: options.db,
    sub: 'tab',
    scope: ['read', 'write'],
    expiresInSeconds: 3600,
  });
  return {
    ...options,
    retain: options.retain ?? RETAIN,
    syncServer: options.syncServer ?? { url: state.url, token },
  };
}

/** For vi.mock('./harness.ts', …): openTab and loadTab with everything on. */
export async function retainingHarness(
  importOriginal: <T>() => Promise<T>,
): Promise<typeof Harness> {
  const real = await importOriginal<typeof Harness>();
  return {
    ...real,
    async openTab(context, base, options) {
      const page = await real.openTab(context, base, everything(options));
      state.pages.push({ page, db: options.db });
      return page;
    },
    loadTab: (page, base, options) => real.loadTab(page, base, everything(options)),
  };
}

/** For vi.mock('./session.ts', …): the suite's session, also for the tests added to the pass. */
export async function retainingSession(
  importOriginal: <T>() => Promise<T>,
): Promise<typeof Session> {
  const real = await importOriginal<typeof Session>();
  return {
    ...real,
    tabsSessionPerFile() {
      state.session = real.tabsSessionPerFile();
      return state.session;
    },
  };
}

/** The session the suite registered (its browser, dev server and per-test context). */
export function suiteSession(): Session.TabsSession {
  if (state.session === undefined) throw new Error('retaining tabs: the suite has no session');
  return state.session;
}

/** The events trimmed in `db` as the page sees its IndexedDB (0 when none, or when unreadable). */
export const trimmedIn = (page: Page, db: string) =>
  page.evaluate(
    (db) =>
      new Promise<number>((resolve) => {
        const open = indexedDB.open(db);
        open.onerror = () => resolve(0);
        open.onsuccess = () => {
          const handle = open.result;
          try {
            const get = handle.transaction('meta').objectStore('meta').get('sys:trimmedPos');
            get.onsuccess = () => {
              handle.close();
              resolve(typeof get.result === 'number' ? get.result : 0);
            };
            get.onerror = () => {
              handle.close();
              resolve(0);
            };
          } catch {
            handle.close();
            resolve(0);
          }
        };
      }),
    db,
  );

/**
 * The sync server of the pass, on a Node HTTP server of its own so that its upgrade responses
 * can be read (invariant 1): ws writes the 101 response to the socket in one call.
 */
function watchUpgrades(http: Server): void {
  http.prependListener('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
    let first = true;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (first) {
        first = false;
        const head = String(chunk);
        if (head.startsWith('HTTP/1.1 101')) {
          state.upgrades++;
          if (/^sec-websocket-extensions:\s*permessage-deflate/im.test(head)) state.deflated++;
        }
      }
      return write(chunk, ...rest);
    }) as typeof socket.write;
  });
}

/** Registers the pass's hooks; call it after importing the suite (see afterEach). */
export function retainingTabs(): void {
  const tmp = tempDir();
  let http: Server | undefined;
  let sync: SyncServer | undefined;

  beforeAll(async () => {
    http = createServer();
    watchUpgrades(http);
    await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve));
    sync = await createSyncServer({
      server: http,
      path: '/sync',
      storage: sqliteStorage(`${tmp.dir}/tabs.sqlite`, {
        recentCacheBytes: 0,
        compaction: { tailEvents: 0, eager: true },
      }),
      auth: { secret: SECRET },
      wireCompression: { threshold: 0 },
      log: () => {},
    });
    const address = http.address();
    if (address === null || typeof address !== 'object') throw new Error('no address');
    state.url = `ws://127.0.0.1:${address.port}/sync`;
  });

  beforeEach((context) => {
    if (NOT_RERUN.some((name) => context.task.name.startsWith(name))) context.skip();
  });

  // Registered after the suite's own hooks, so with Vitest's default 'stack' order it runs
  // after the test and before the suite's afterEach closes the test's browser context.
  afterEach(async (context) => {
    const open = state.pages.filter(({ page }) => !page.isClosed());
    state.pages = [];
    if (context.task.result?.state === 'skip') return;
    const trimmed = await Promise.all(open.map(({ page, db }) => trimmedIn(page, db)));
    state.outcomes.push({ test: context.task.name, trimmed: Math.max(0, ...trimmed) });
  });

  afterAll(async () => {
    await sync?.close();
    await new Promise((resolve) => http?.close(resolve));
    tmp.cleanup();
    console.log(
      `retaining tabs: ${JSON.stringify({ upgrades: state.upgrades, deflated: state.deflated })}\n` +
        state.outcomes.map((o) => `  trimmed ${o.trimmed}: ${o.test}`).join('\n'),
    );
    expect(
      state.outcomes.some((o) => o.trimmed > 0),
      'no test trimmed anything',
    ).toBe(true);
    expect(state.upgrades, 'no tab synced').toBeGreaterThan(0);
    expect(state.deflated, 'a sync socket without permessage-deflate').toBe(state.upgrades);
  });
}
