/**
 * The multi-tab suite (multi-tab.test.ts) again, unchanged, with retention and compression on
 * (issue 18, "Done when"): every tab keeps 4 events, its leading worker syncs with a real
 * server that deflates every message and seals every event into blocks (retaining-tabs.ts),
 * and a read of the whole log pages the trimmed part from that server. Only the tests where
 * retention meets several tabs run again (retaining-tabs.ts NOT_RERUN says why the others do
 * not), and one more here: what a tab that does not lead sees of the events its leader trimmed.
 */
import { describe, expect, it, vi } from 'vitest';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { openTab, type TabOptions, uniqueDb, waitUntil } from './harness.ts';
import { retainingTabs, suiteSession, trimmedIn } from './retaining-tabs.ts';

vi.mock('./harness.ts', async (importOriginal) =>
  (await import('./retaining-tabs.ts')).retainingHarness(importOriginal),
);
vi.mock('./session.ts', async (importOriginal) =>
  (await import('./retaining-tabs.ts')).retainingSession(importOriginal),
);
await import('./multi-tab.test.ts');
const session = suiteSession();
// After the suite's hooks: its afterEach (reading what each test trimmed) runs before theirs.
retainingTabs();

describe('retention across tabs (a dedicated worker per tab)', () => {
  it('a tab that does not lead recognises an id its leader trimmed, and reads the trimmed history through it', async () => {
    const options: TabOptions = { db: uniqueDb('trim-across'), mode: 'dedicated' };
    const pages = await Promise.all(
      [1, 2].map(() => openTab(session.context, session.base, options)),
    );
    const leads = () =>
      Promise.all(
        pages.map((p) =>
          p.evaluate(() => (window as unknown as TabWindow).tab.store$().worker.status().leader),
        ),
      );
    const flags = await waitUntil(async () => {
      const now = await leads();
      return now.filter(Boolean).length === 1 ? now : undefined;
    }, 'one leader');
    const follower = pages[flags.indexOf(false)]!;
    await follower.evaluate(async () => {
      const store = (window as unknown as TabWindow).tab.store$();
      for (let k = 0; k < 10; k++) await store.append('s', { type: 'A', data: k, id: `k-${k}` });
    });
    // The leader's store trims what the server acknowledged, keeping 4 events.
    await waitUntil(
      async () => (await trimmedIn(follower, options.db)) >= 6,
      'the leader to trim',
      20_000,
    );
    const retry = await follower.evaluate(async () => {
      const tab = (window as unknown as TabWindow).tab;
      try {
        await tab.store$().append('s', { type: 'A', data: 0, id: 'k-0' });
        return 'stored again';
      } catch (error) {
        return tab.errorOf(error);
      }
    });
    expect(retry).toMatchObject({
      code: 'IDEMPOTENCY',
      message: expect.stringContaining('horizon'),
    });
    const ids = await follower.evaluate(async () =>
      (await (window as unknown as TabWindow).tab.store$().read()).map((e) => e.id),
    );
    expect(ids).toEqual(Array.from({ length: 10 }, (_, k) => `k-${k}`));
    expect(
      await follower.evaluate(() =>
        (window as unknown as TabWindow).tab.store$().state<number>('count'),
      ),
    ).toBe(10);
  });
});
