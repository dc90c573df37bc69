/**
 * Durability and storage failures in real Chromium, through the worker: RELIABILITY cases 6, 7,
 * 8, 9 and 12. Every wait is a bounded poll (harness.ts, 1).
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../../src/storage/idb-schema.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import {
  KillableChromium,
  loadTab,
  openTab,
  type TabOptions,
  uniqueDb,
  waitUntil,
} from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();

const ids = (page: Page) =>
  page.evaluate(async () =>
    (await (window as unknown as TabWindow).tab.store$().read()).map((e) => e.id),
  );

const appendOne = (page: Page, stream: string, data: unknown) =>
  page.evaluate(
    async ({ stream, data }) => {
      const tab = (window as unknown as TabWindow).tab;
      try {
        const [event] = await tab.store$().append(stream, { type: 'A', data: data as number });
        return { ok: true as const, id: event!.id };
      } catch (error) {
        return { ok: false as const, error: tab.errorOf(error) };
      }
    },
    { stream, data },
  );

const status = (page: Page) =>
  page.evaluate(() => (window as unknown as TabWindow).tab.store$().worker.status());

describe.each(['shared', 'dedicated'] as const)('on a %s worker', (mode) => {
  it('keeps every resolved append across a reload right after it resolved (RELIABILITY 6)', async () => {
    const options: TabOptions = { db: uniqueDb(`reload-${mode}`), mode };
    const page = await openTab(session.context, session.base, options);
    const resolved: string[] = [];
    for (let round = 0; round < 3; round++) {
      const id = await page.evaluate(async (round) => {
        const store = (window as unknown as TabWindow).tab.store$();
        const [event] = await store.append('r', { type: 'A', data: round });
        return event!.id;
      }, round);
      // Navigate away at once: nothing after the resolution may be needed for durability.
      resolved.push(id);
      await loadTab(page, session.base, options);
    }
    expect(await ids(page)).toEqual(resolved);
  });

  it('turns a full quota into QuotaExceededError on the main thread and keeps the log intact (RELIABILITY 7)', async () => {
    const page = await session.context.newPage();
    const cdp = await session.context.newCDPSession(page);
    // Chromium caches an origin's quota when its storage is first used: override it before.
    await cdp.send('Storage.overrideQuotaForOrigin', {
      origin: new URL(session.base).origin,
      quotaSize: 1024 * 1024,
    });
    await loadTab(page, session.base, { db: uniqueDb(`quota-${mode}`), mode });
    expect(await appendOne(page, 'q', 1)).toMatchObject({ ok: true });
    const outcome = await page.evaluate(async () => {
      const tab = (window as unknown as TabWindow).tab;
      // Random text: Chromium compresses IndexedDB values, so repeated text would still fit.
      const random = () =>
        btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(48 * 1024))));
      try {
        // Four events of 384 KiB: each under the 512 KiB event limit, 1.5 MiB over the quota.
        const big = () => ({ type: 'Big', data: Array.from({ length: 6 }, random).join('') });
        await tab.store$().append('q', [big(), big(), big(), big()]);
        return undefined;
      } catch (error) {
        return tab.errorOf(error);
      }
    });
    expect(outcome).toMatchObject({ code: 'QUOTA_EXCEEDED', quota: true, chronicle: true });
    // Nothing of the batch was stored, and the store still serves reads and state.
    expect(await ids(page)).toHaveLength(1);
    expect(
      await page.evaluate(() => (window as unknown as TabWindow).tab.store$().state('count')),
    ).toBe(1);
    expect(await status(page)).toMatchObject({ storage: 'open' });
  });

  it('closes its connection when another tab upgrades the database, and reports it (RELIABILITY 8)', async () => {
    const db = uniqueDb(`upgrade-${mode}`);
    const page = await openTab(session.context, session.base, { db, mode });
    expect((await appendOne(page, 's', 1)).ok).toBe(true);
    const other = await session.context.newPage();
    await other.goto(`${session.base}/test/browser/fixtures/tab.html`);
    // A newer schema opened by another tab: it must not be blocked by ours.
    const upgraded = await other.evaluate(
      ({ db, version }) =>
        new Promise<string>((resolve) => {
          const request = indexedDB.open(db, version);
          request.onsuccess = () => {
            request.result.close();
            resolve('upgraded');
          };
          request.onblocked = () => resolve('blocked');
          request.onerror = () => resolve(`error ${request.error?.name}`);
        }),
      { db, version: SCHEMA_VERSION + 1 },
    );
    expect(upgraded).toBe('upgraded');
    await waitUntil(async () => (await status(page)).storage === 'closed', 'the closed status');
    expect(await status(page)).toMatchObject({ storage: 'closed', closedReason: 'versionchange' });
    const after = await appendOne(page, 's', 2);
    expect(after).toMatchObject({ ok: false, error: { code: 'VERSION_CHANGE', chronicle: true } });
  });

  it('fails loudly, never falsely succeeds, when another tab deletes the database (RELIABILITY 9)', async () => {
    const db = uniqueDb(`delete-${mode}`);
    const page = await openTab(session.context, session.base, { db, mode });
    expect((await appendOne(page, 's', 1)).ok).toBe(true);
    const other = await session.context.newPage();
    await other.goto(`${session.base}/test/browser/fixtures/tab.html`);
    const deleted = await other.evaluate(
      (db) =>
        new Promise<string>((resolve) => {
          const request = indexedDB.deleteDatabase(db);
          request.onsuccess = () => resolve('deleted');
          request.onblocked = () => resolve('blocked');
          request.onerror = () => resolve('error');
        }),
      db,
    );
    expect(deleted).toBe('deleted');
    await waitUntil(
      async () => (await status(page)).closedReason === 'deleted',
      'the deleted status',
    );
    const after = await appendOne(page, 's', 2);
    expect(after.ok).toBe(false);
    // A reload opens a fresh database: the store works again.
    await loadTab(page, session.base, { db, mode });
    expect((await appendOne(page, 's', 3)).ok).toBe(true);
    expect(await ids(page)).toHaveLength(1);
  });
});

describe('a browser killed during a burst of writes (RELIABILITY 12)', () => {
  it('keeps every append that resolved, with no gap in seq or position', async () => {
    const chromium = new KillableChromium();
    try {
      const options: TabOptions = { db: uniqueDb('kill'), mode: 'dedicated' };
      let ctx = await chromium.start();
      const page = await ctx.newPage();
      const resolved = new Set<string>();
      await page.exposeFunction('reportResolved', (id: string) => resolved.add(id));
      await loadTab(page, session.base, options);
      void page
        .evaluate(async () => {
          const store = (window as unknown as TabWindow).tab.store$();
          const report = (window as unknown as { reportResolved(id: string): void }).reportResolved;
          for (let i = 0; ; i++) {
            // Several appends in flight at once, each reported as soon as it resolves.
            await Promise.all(
              [0, 1, 2, 3].map(async (k) => {
                const [event] = await store.append(`burst-${k}`, { type: 'A', data: i });
                report(event!.id);
              }),
            );
          }
        })
        .catch(() => undefined);
      await waitUntil(() => resolved.size >= 200, 'a burst of resolved appends', 20_000);
      await chromium.kill();
      const known = [...resolved];

      ctx = await chromium.start();
      const again = await ctx.newPage();
      await loadTab(again, session.base, options);
      const log = await again.evaluate(async () =>
        (await (window as unknown as TabWindow).tab.store$().read()).map((e) => ({
          id: e.id,
          seq: e.seq,
        })),
      );
      const stored = new Set(log.map((e) => e.id));
      expect(known.filter((id) => !stored.has(id))).toEqual([]);
      expect(log.map((e) => e.seq).sort((a, b) => a - b)).toEqual(log.map((_, i) => i + 1));
    } finally {
      await chromium.dispose();
    }
  });
});
