/**
 * @chronicle-es/store/react in real Chromium: a React 19 app built by Vite (page.ts) renders
 * the three hooks over a store opened in the page (openStore) and over one in a worker
 * (connectStore), synced with a real sync server. src/react/hooks.ts and source.ts invariants
 * are cited by number.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/server/index.ts';
import { createSyncServer, type SyncServer } from '../../../src/server/server.ts';
import { sqliteStorage } from '../../../src/server/sqlite.ts';
import { launchBrowser, startBuiltServer, uniqueDb, waitUntil } from '../tabs/harness.ts';
import type { ReactPageApi, ReactPageWindow, StoreKind } from './page-api.ts';

let site: Awaited<ReturnType<typeof startBuiltServer>> | undefined;
let browser: Browser | undefined;
let sync: SyncServer | undefined;
let context: BrowserContext | undefined;

beforeAll(async () => {
  site = await startBuiltServer(['test/browser/react/page.html']);
  browser = await launchBrowser();
  sync = await createSyncServer({
    storage: sqliteStorage(':memory:'),
    auth: false,
    log: silentLogger,
  });
});
afterAll(async () => {
  await browser?.close();
  await site?.close();
  await sync?.close();
});
beforeEach(async () => {
  context = await browser!.newContext();
});
afterEach(async () => {
  await context?.close();
});

/** Runs `fn` on the page's app object; `fn` travels as its source, so it closes over nothing. */
function onApp<A, R>(
  page: Page,
  fn: (app: ReactPageApi, arg: A) => R | Promise<R>,
  arg: A,
): Promise<R> {
  return page.evaluate(
    ([source, a]) => {
      const app = (window as unknown as ReactPageWindow).app;
      const run = new Function(`return (${source})`)() as (
        app: ReactPageApi,
        a: unknown,
      ) => unknown;
      return run(app, a);
    },
    [fn.toString(), arg as unknown] as const,
  ) as Promise<R>;
}

const text = (page: Page, id: string) =>
  page.evaluate((i) => document.getElementById(i)?.textContent ?? null, id);

async function shows(page: Page, id: string, expected: string): Promise<void> {
  await waitUntil(async () => (await text(page, id)) === expected, `#${id} to show "${expected}"`);
}

/** The worker's listeners for this page before anything renders (its status callback). */
const idleListeners = new WeakMap<Page, number>();

async function openApp(kind: StoreKind): Promise<Page> {
  const page = await context!.newPage();
  page.on('pageerror', (error) => console.error(`[react page] ${error.message}`));
  await page.goto(`${site!.url}/test/browser/react/page.html`);
  await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 20_000 });
  await onApp(page, (app, a) => app.open(a.kind, a.db), { kind, db: uniqueDb(`react-${kind}`) });
  if (kind === 'worker') {
    idleListeners.set(page, await onApp(page, (app) => app.workerListeners(), null));
  }
  await onApp(page, (app) => app.render({ todoId: 't1' }), null);
  await shows(page, 'count', '0');
  return page;
}

const renders = (page: Page) => onApp(page, (app) => ({ ...app.renders }), null);
const emitted = (page: Page) => onApp(page, (app) => ({ ...app.emitted }), null);
const watching = (page: Page) => onApp(page, (app) => app.watching, null);

describe.each(['memory', 'worker'] as const)('hooks over a store opened with %s', (kind) => {
  it('show the projected state, query results and the sync status, and follow appends', async () => {
    const page = await openApp(kind);
    await shows(page, 'open', '0');
    await shows(page, 'title', '-');
    await shows(page, 'sync', 'offline 0');

    await onApp(page, (app) => app.addTodo('t1', 'Milk'), null);
    await onApp(page, (app) => app.addTodo('t2', 'Bread'), null);
    await shows(page, 'count', '2');
    await shows(page, 'open', '2');
    await shows(page, 'title', 'Milk');
    await shows(page, 'title-list', 'Milk');
    await shows(page, 'todos', '○ Milk○ Bread');

    // The todos projection mutates its state in place: the hook's snapshot is its own copy, and
    // the unchanged todo keeps its reference, so only the changed item renders (settle.ts 2, 3).
    const before = await renders(page);
    await onApp(page, (app) => app.doneTodo('t1'), null);
    await shows(page, 'todos', '✓ Milk○ Bread');
    await shows(page, 'open', '1');
    expect((await renders(page)).item).toBe(before.item! + 1);

    // New arguments resubscribe: each title query's watch is replaced by another; the same
    // arguments in a new render keep it, an inline array of the same items too (hooks.ts 1).
    const held = await watching(page);
    const made = await onApp(page, (app) => app.subscribed, null);
    const titleRenders = (await renders(page)).title!;
    await onApp(page, (app) => app.render({ todoId: 't1' }), null);
    await waitUntil(async () => (await renders(page)).title! > titleRenders, 'a new render');
    expect(await onApp(page, (app) => app.subscribed, null)).toBe(made);
    await onApp(page, (app) => app.render({ todoId: 't2' }), null);
    await shows(page, 'title', 'Bread');
    await shows(page, 'title-list', 'Bread');
    expect(await watching(page)).toBe(held);
    expect(await onApp(page, (app) => app.subscribed, null)).toBe(made + 2);

    await onApp(page, (app, url) => app.syncTo(url), sync!.url);
    await shows(page, 'sync', 'idle 0');
  });

  it('throw what the store refuses to the nearest error boundary (hooks.ts 3)', async () => {
    const page = await openApp(kind);
    await shows(page, 'missing', 'NOT_FOUND');
    await shows(page, 'bad-query', 'NOT_FOUND');
  });

  it('render a burst of 100 appends a bounded number of times, at most once per emitted state', async () => {
    const page = await openApp(kind);
    const [r0, e0] = [await renders(page), await emitted(page)];
    await onApp(page, (app) => app.burst(100), null);
    await shows(page, 'count', '100');
    // Each projection's states come on their own: from a worker, the todos' may follow the
    // count's (a loaded CI machine read them before the first came).
    await expect
      .poll(async () => (await emitted(page)).todos ?? 0, { timeout: 30_000 })
      .toBeGreaterThan(e0.todos ?? 0);
    const [r1, e1] = [await renders(page), await emitted(page)];
    const rendered = r1.count! - r0.count!;
    const states = e1.count! - e0.count!;
    console.log(`[react ${kind}] 100 appends: ${states} states emitted, ${rendered} renders`);
    expect(rendered).toBeLessThanOrEqual(states);
    expect(rendered).toBeLessThanOrEqual(10);
    // Ticks change neither the todos nor the open count: states equal to the held ones keep
    // their reference and render nothing (source.ts 3, settle.ts 1).
    expect(e1.todos!).toBeGreaterThan(e0.todos!);
    expect(r1.todos).toBe(r0.todos);
    expect(r1.open).toBe(r0.open);
  });

  it('unsubscribe on unmount: no watch left, no state delivered after', async () => {
    const page = await openApp(kind);
    expect(await watching(page)).toBeGreaterThan(0);
    const idle = idleListeners.get(page) ?? 0;
    if (kind === 'worker')
      expect(await onApp(page, (app) => app.workerListeners(), null)).toBeGreaterThan(idle);
    await onApp(page, (app) => app.unmount(), null);
    expect(await watching(page)).toBe(0);
    if (kind === 'worker') {
      // Unlistening crosses to the worker asynchronously.
      await waitUntil(
        async () => (await onApp(page, (app) => app.workerListeners(), null)) === idle,
        "no hook's listener left in the worker",
      );
    }
    const [r0, e0] = [await renders(page), await emitted(page)];
    await onApp(page, (app) => app.burst(5), null);
    await waitUntil(
      async () => (await onApp(page, (app) => app.count(), null)) === 5,
      'the appends',
    );
    expect(await renders(page)).toEqual(r0);
    expect(await emitted(page)).toEqual(e0);
  });
});
