/**
 * Tamper evidence in real Chromium (issue 16, part 3): a page (its store in a worker, on
 * IndexedDB) catches up from a sync server whose SQLite file was edited (fixtures/
 * tampered-server.ts). It refuses the altered event, holds the rest, and its sync status says
 * why. Firefox runs the same in test/browser/firefox/tamper.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../server/helpers.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import {
  EXPECTED_FINDINGS,
  EXPECTED_TITLES,
  findings,
  type TamperedServer,
  tamperedServer,
  tamperView,
} from '../fixtures/tampered-server.ts';
import { openTab, uniqueDb, waitUntil } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();
const tmp = tempDir();
let lying: TamperedServer | undefined;

afterEach(async () => {
  await lying?.server.close();
  lying = undefined;
});

describe('a page catching up from a server whose file was edited', () => {
  it('refuses the altered event, holds the others, and says so in its sync status', async () => {
    lying = await tamperedServer(tmp.dir, uniqueDb('space'));
    const page = await openTab(session.context, session.base, {
      db: uniqueDb('tamper-page'),
      mode: 'dedicated',
    });
    await page.evaluate(
      ({ url, t }) => {
        (window as unknown as TabWindow).tab.store$().sync.connect({ url, token: t });
      },
      { url: lying.server.url, t: lying.token('page') },
    );
    const seen = await waitUntil(
      async () => {
        const view = await page.evaluate(tamperView);
        return view.titles.length === 3 && view.tampered.length === 2 ? view : undefined;
      },
      'the page caught up',
      20_000,
    );
    expect(seen.titles).toEqual(EXPECTED_TITLES);
    expect(findings(seen.tampered)).toEqual(EXPECTED_FINDINGS);
  });
});
