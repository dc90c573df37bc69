/**
 * A Firefox page and a Chromium page, each with its store in a worker opened by connectStore
 * with default options (the case that hung in Firefox, RELIABILITY 39), sync through a real
 * server on 127.0.0.1 (SQLite file) and converge: the same log in the same order, the same
 * projected state, the same conflicts. RELIABILITY mark [F].
 */
import type { Browser as PlaywrightBrowser } from 'playwright-core';
import type { Browser as PuppeteerBrowser } from 'puppeteer-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent, SyncStatus } from '../../../src/index.ts';
import { startTestServer, type TestServer } from '../../server/helpers.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { launchBrowser, startServer, uniqueDb, waitUntil } from '../tabs/harness.ts';
import { launchFirefox } from './launch.ts';
import { openChromiumTab, openFirefoxTab, type TestTab } from './pages.ts';

interface Seen {
  log: StoredEvent[];
  count: number;
  todos: unknown;
  conflicts: unknown[];
  sync: SyncStatus;
}

function seen(tab: TestTab): Promise<Seen> {
  return tab.run(async () => {
    const store = (window as unknown as TabWindow).tab.store$();
    return {
      log: await store.read(),
      count: await store.state<number>('count'),
      todos: await store.state('todos'),
      conflicts: await store.conflicts(),
      sync: store.sync.status(),
    };
  }, undefined);
}

function append(tab: TestTab, streams: string[]): Promise<void> {
  return tab.run(async (names) => {
    const store = (window as unknown as TabWindow).tab.store$();
    for (const name of names) {
      await store.append(name, { type: 'TodoAdded', data: { title: name } });
    }
  }, streams);
}

describe('a Firefox page and a Chromium page syncing through the server', () => {
  let vite: ViteDevServer;
  let base: string;
  let server: TestServer;
  let chromium: PlaywrightBrowser;
  let firefox: PuppeteerBrowser;

  beforeAll(async () => {
    ({ server: vite, url: base } = await startServer());
    server = await startTestServer();
    [chromium, firefox] = await Promise.all([launchBrowser(), launchFirefox()]);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([chromium?.close(), firefox?.close()]);
    await server?.stop();
    await vite?.close();
  });

  it('open with default options and converge to the same log, state and conflicts', async () => {
    const sync = `${server.server.url}/?token=${server.token({ space: uniqueDb('space') })}`;
    const [f, c] = await Promise.all([
      firefox
        .createBrowserContext()
        .then((context) =>
          openFirefoxTab(context, base, { db: uniqueDb('ff'), mode: 'shared', sync }),
        ),
      chromium
        .newContext()
        .then((context) =>
          openChromiumTab(context, base, { db: uniqueDb('cr'), mode: 'shared', sync }),
        ),
    ]);
    // Appended at once on both sides, one stream written by both (a concurrent edit).
    await Promise.all([
      append(f, ['todo-f1', 'todo-f2', 'both', 'todo-f3']),
      append(c, ['todo-c1', 'both', 'todo-c2', 'todo-c3']),
    ]);
    const settled = (s: Seen) =>
      s.log.length === 8 && s.sync.state === 'idle' && s.sync.pending === 0;
    const [fromFirefox, fromChromium] = await waitUntil(
      async () => {
        const both = await Promise.all([seen(f), seen(c)]);
        return both.every(settled) && both;
      },
      'both pages synced with 8 events',
      30_000,
      100,
    );
    expect(fromFirefox.log).toEqual(fromChromium.log);
    expect(new Set(fromFirefox.log.map((e) => e.replica)).size).toBe(2);
    expect(fromFirefox.count).toBe(8);
    expect(fromFirefox.todos).toEqual(fromChromium.todos);
    expect(fromFirefox.conflicts).toEqual(fromChromium.conflicts);
    expect(fromFirefox.sync.lastError).toBeUndefined();
    expect(fromChromium.sync.lastError).toBeUndefined();
    await Promise.all([f.close(), c.close()]);
  }, 90_000);

  it('keep a strict stream’s rule when both withdraw at once: one withdrawal stands, the other is refused, here or by the server', async () => {
    const sync = `${server.server.url}/?token=${server.token({ space: uniqueDb('space') })}`;
    const strict = ['account-*'];
    const [f, c] = await Promise.all([
      firefox
        .createBrowserContext()
        .then((context) =>
          openFirefoxTab(context, base, { db: uniqueDb('ff'), mode: 'shared', sync, strict }),
        ),
      chromium
        .newContext()
        .then((context) =>
          openChromiumTab(context, base, { db: uniqueDb('cr'), mode: 'shared', sync, strict }),
        ),
    ]);
    const account = (tab: TestTab) =>
      tab.run(async () => {
        const store = (window as unknown as TabWindow).tab.store$();
        return {
          events: (await store.read({ stream: 'account-1' })).map((e) => ({
            id: e.id,
            type: e.type,
            data: e.data as { cents: number },
            version: e.version,
          })),
          sync: store.sync.status(),
        };
      }, undefined);
    const execute = (tab: TestTab, command: string, cents: number) =>
      tab.run(
        async ({ command, cents }) => {
          const store = (window as unknown as TabWindow).tab.store$();
          try {
            await store.execute('account', 'account-1', command, { cents });
            return 'appended';
          } catch (error) {
            return (error as { code?: string }).code ?? 'error';
          }
        },
        { command, cents },
      );
    expect(await execute(f, 'deposit', 100)).toBe('appended');
    await waitUntil(
      async () => (await account(c)).events.length === 1,
      'the deposit on both',
      30_000,
    );
    const outcomes = await Promise.all([execute(f, 'withdraw', 80), execute(c, 'withdraw', 80)]);
    const [fromFirefox, fromChromium] = await waitUntil(
      async () => {
        const both = await Promise.all([account(f), account(c)]);
        const settled = both.every(
          (s) =>
            s.events.length === 2 &&
            s.sync.pending === 0 &&
            s.sync.tentative === undefined &&
            !(s.sync.rejected ?? []).some((r) => r.command?.outcome === 'pending'),
        );
        return settled && both;
      },
      'one withdrawal on both',
      30_000,
      100,
    );
    expect(fromFirefox.events).toEqual(fromChromium.events);
    expect(fromFirefox.events.map((e) => [e.type, e.data.cents, e.version])).toEqual([
      ['Deposited', 100, 1],
      ['Withdrawn', 80, 2],
    ]);
    // The other was refused: on its own page at once, or by the server and then its handler.
    const refusedHere = outcomes.filter((o) => o === 'COMMAND_REJECTED').length;
    const refusedByServer = [fromFirefox, fromChromium].filter((s) =>
      (s.sync.rejected ?? []).some(
        (r) => r.command?.outcome === 'rejected' && r.command.reason === 'INSUFFICIENT_FUNDS',
      ),
    ).length;
    expect(refusedHere + refusedByServer).toBe(1);
    await Promise.all([f.close(), c.close()]);
  }, 90_000);
});
