/**
 * Several tabs of one origin on one store, in real Chromium, in both modes: a SharedWorker for
 * every tab, and the fallback of one dedicated worker per tab (BroadcastChannel notices, a Web
 * Locks leader). RELIABILITY cases 4, 21, 31, 32, 33; worker/session.ts invariant 2 (no listener
 * outlives its page); worker/host.ts invariant 2 (one leader).
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { median, openTab, type TabOptions, uniqueDb, waitUntil } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();

const count = (page: Page) =>
  page.evaluate(() => (window as unknown as TabWindow).tab.store$().state<number>('count'));
const readAll = (page: Page) =>
  page.evaluate(async () =>
    (await (window as unknown as TabWindow).tab.store$().read()).map((e) => ({
      id: e.id,
      replica: e.replica,
      seq: e.seq,
    })),
  );
const leader = (page: Page) =>
  page.evaluate(() => (window as unknown as TabWindow).tab.store$().worker.status().leader);

describe.each(['shared', 'dedicated'] as const)('tabs on a %s worker', (mode) => {
  const tabs = (n: number, extra: Partial<TabOptions> = {}) => {
    const options: TabOptions = { db: uniqueDb(`tabs-${mode}`), mode, ...extra };
    return Promise.all(
      Array.from({ length: n }, () => openTab(session.context, session.base, options)),
    );
  };

  it("see each other's events and the same state within 100 ms, appending at once (median of 5)", async () => {
    const [a, b] = await tabs(2);
    const delays: number[] = [];
    for (let round = 1; round <= 5; round++) {
      // Each tab stamps when its watch first shows the other tab's append.
      const [sentA, sentB] = await Promise.all(
        [a!, b!].map((page, i) =>
          page.evaluate(
            async ({ round, i }) => {
              const tab = (window as unknown as TabWindow).tab;
              const target = round * 2;
              (window as unknown as { seenAt?: number | undefined }).seenAt = undefined;
              const off = tab.store$().watch<number>('count', (n) => {
                if (n >= target)
                  (window as unknown as { seenAt?: number | undefined }).seenAt ??= Date.now();
              });
              (window as unknown as { off?: () => void }).off = off;
              const sent = Date.now();
              await tab.store$().append(`tab-${i}`, { type: 'Ping', data: { round } });
              return sent;
            },
            { round, i },
          ),
        ),
      );
      const seen = await Promise.all(
        [a!, b!].map((page) =>
          waitUntil(
            () =>
              page.evaluate(() => (window as unknown as { seenAt?: number | undefined }).seenAt),
            "the other tab's event",
          ),
        ),
      );
      await Promise.all(
        [a!, b!].map((p) => p.evaluate(() => (window as unknown as { off: () => void }).off())),
      );
      delays.push(seen[0]! - sentB!, seen[1]! - sentA!);
    }
    expect(median(delays)).toBeLessThan(100);
    const [logA, logB] = await Promise.all([readAll(a!), readAll(b!)]);
    expect(logA).toHaveLength(10);
    expect(logA).toEqual(logB);
    expect(await count(a!)).toBe(await count(b!));
  });

  it('lets exactly one of two tabs appending with the same expected version win (RELIABILITY 4)', async () => {
    const [a, b] = await tabs(2);
    await a!.evaluate(() =>
      (window as unknown as TabWindow).tab.store$().append('doc', { type: 'Created', data: {} }),
    );
    for (let version = 1; version <= 5; version++) {
      const outcomes = await Promise.all(
        [a!, b!].map((page) =>
          page.evaluate(async (version) => {
            const tab = (window as unknown as TabWindow).tab;
            try {
              await tab
                .store$()
                .append('doc', { type: 'Edited', data: { version } }, { expectedVersion: version });
              return 'ok';
            } catch (error) {
              const info = tab.errorOf(error);
              return info.concurrency && info.code === 'CONCURRENCY'
                ? 'conflict'
                : `other: ${info.message}`;
            }
          }, version),
        ),
      );
      expect([...outcomes].sort()).toEqual(['conflict', 'ok']);
    }
    expect(await readAll(b!)).toHaveLength(6);
  });

  it('never reuses (replica, seq) when tabs cold-start and append at once (RELIABILITY 21)', async () => {
    const db = uniqueDb(`cold-${mode}`);
    const pages = await Promise.all(
      [1, 2, 3].map(() => openTab(session.context, session.base, { db, mode })),
    );
    await Promise.all(
      pages.map((page, i) =>
        page.evaluate(async (i) => {
          const store = (window as unknown as TabWindow).tab.store$();
          await Promise.all(
            Array.from({ length: 20 }, (_, k) =>
              store.append(`t${i}-${k}`, { type: 'A', data: k }),
            ),
          );
        }, i),
      ),
    );
    const log = await readAll(pages[0]!);
    expect(log).toHaveLength(60);
    expect(new Set(log.map((e) => e.replica)).size).toBe(1);
    expect(log.map((e) => e.seq).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 60 }, (_, k) => k + 1),
    );
    expect(new Set(log.map((e) => e.id)).size).toBe(60);
  });

  it('releases every listener of pages that close without unsubscribing (worker/session.ts 2)', async () => {
    const db = uniqueDb(`leak-${mode}`);
    const control = await openTab(session.context, session.base, { db, mode });
    const stats = () => control.evaluate(() => (window as unknown as TabWindow).tab.stats());
    const before = await stats();
    for (let i = 0; i < 8; i++) {
      const page = await openTab(session.context, session.base, { db, mode });
      await page.evaluate(() => {
        const store = (window as unknown as TabWindow).tab.store$();
        store.subscribe(() => {});
        store.watch('count', () => {});
        store.watch('todos', () => {});
      });
      await page.close();
    }
    // A dedicated worker dies with its page; the shared one must notice the pages are gone.
    await waitUntil(async () => {
      const now = await stats();
      return now.listeners === before.listeners && now.connections === before.connections;
    }, 'the listeners of closed pages to be released');
  });
});

describe('fallback mode (a dedicated worker per tab)', () => {
  // Generous limits: three tabs start their workers at once while other Chromium suites run on
  // the same two cores; the hand-over itself is a Web Lock release, not a timer.
  it('elects exactly one sync leader, and another tab takes over when it closes (RELIABILITY 31, 32)', {
    timeout: 90_000,
  }, async () => {
    const db = uniqueDb('leader');
    const pages = await Promise.all(
      [1, 2, 3].map(() => openTab(session.context, session.base, { db, mode: 'dedicated' })),
    );
    const leaders = async () => await Promise.all(pages.filter((p) => !p.isClosed()).map(leader));
    await waitUntil(
      async () => (await leaders()).filter(Boolean).length === 1,
      'one leader',
      30_000,
    );
    for (let round = 0; round < 2; round++) {
      const current = pages.filter((p) => !p.isClosed());
      const flags = await Promise.all(current.map(leader));
      await current[flags.indexOf(true)]!.close();
      await waitUntil(
        async () => (await leaders()).filter(Boolean).length === 1,
        'a new leader',
        15_000,
      );
    }
    // Every write of every tab lands once (31).
    const last = pages.find((p) => !p.isClosed())!;
    await last.evaluate(() =>
      (window as unknown as TabWindow).tab.store$().append('x', { type: 'A', data: 1 }),
    );
    expect(await readAll(last)).toHaveLength(1);
  });

  it('converges through IndexedDB when BroadcastChannel loses every notice (RELIABILITY 33)', async () => {
    const options: TabOptions = { db: uniqueDb('drop'), mode: 'dedicated', drop: true, poll: 100 };
    const [a, b] = await Promise.all([
      openTab(session.context, session.base, options),
      openTab(session.context, session.base, options),
    ]);
    await a!.evaluate(() =>
      (window as unknown as TabWindow).tab.store$().append('s', { type: 'A', data: 1 }),
    );
    await b!.evaluate(() =>
      (window as unknown as TabWindow).tab.store$().append('t', { type: 'B', data: 2 }),
    );
    await waitUntil(
      async () => (await count(a!)) === 2 && (await count(b!)) === 2,
      'both tabs at 2',
    );
    // And live subscribers hear of the other tab's event without any notice.
    await a!.evaluate(() => {
      const w = window as unknown as TabWindow & { heard: string[] };
      w.heard = [];
      w.tab.store$().subscribe((events) => w.heard.push(...events.map((e) => e.stream)));
    });
    await b!.evaluate(() =>
      (window as unknown as TabWindow).tab.store$().append('u', { type: 'C', data: 3 }),
    );
    await waitUntil(
      () => a!.evaluate(() => (window as unknown as { heard: string[] }).heard.includes('u')),
      'a live event',
    );
  });
});
