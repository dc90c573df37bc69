/**
 * The offline PWA demo, end to end in real Chromium: the built demo served by startDemo (what
 * `npm start` runs), two browser contexts as two devices. The steps build on each other, so
 * they run in order in one file; each saves a screenshot to test-results/demo.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoServer } from '../../demo/server/app.ts';
import {
  activity,
  addCard,
  boardText,
  card,
  type DemoFixture,
  openDevice,
  renameCard,
  snap,
  startDemoFixture,
  syncState,
  waitSynced,
  waitUntil,
} from './helpers.ts';

const STEP = 60_000;

describe('the offline PWA demo', () => {
  let fixture: DemoFixture;
  let demo: DemoServer;
  let browser: Browser;
  let deviceA: BrowserContext;
  let deviceB: BrowserContext;
  let a: Page;
  let b: Page;

  beforeAll(async () => {
    fixture = await startDemoFixture();
    ({ demo, browser } = fixture);
    // A phone-sized viewport for one device, a laptop for the other.
    deviceA = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    deviceB = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  }, 120_000);

  afterAll(async () => {
    await fixture?.close();
  });

  /** Cuts both devices' network and waits until both pages say so. */
  async function bothOffline(): Promise<void> {
    await deviceA.setOffline(true);
    await deviceB.setOffline(true);
    await waitUntil(async () => (await syncState(a)).state === 'offline', 'A offline');
    await waitUntil(async () => (await syncState(b)).state === 'offline', 'B offline');
  }

  it('loads, installs its service worker, syncs, and adds cards', { timeout: STEP }, async () => {
    a = await openDevice(deviceA, demo.url, 'A');
    const manifest = await a.evaluate(async () => {
      const link = document.querySelector<HTMLLinkElement>('link[rel="manifest"]');
      return (await fetch(link?.href ?? '')).json();
    });
    expect(manifest).toMatchObject({ name: 'Chronicle board', theme_color: '#2f5d8a' });
    // The demo's origin answers /healthz with the sync server's health, not the app's page.
    const health = await fetch(new URL('healthz', demo.url));
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    await addCard(a, 'todo', 'Write the README');
    await addCard(a, 'todo', 'Ship the demo');
    await waitSynced(a, 'A');
    expect(await boardText(a)).toEqual({
      'To do': ['Write the README', 'Ship the demo'],
      Doing: [],
      Done: [],
    });
    await snap(a, '01-loaded');
  });

  it('keeps working offline, and every event says it has not reached the server', {
    timeout: STEP,
  }, async () => {
    await deviceA.setOffline(true);
    await waitUntil(async () => (await syncState(a)).state === 'offline', 'A offline');
    await addCard(a, 'todo', 'Offline idea');
    await card(a, 'Write the README')
      .getByRole('button', { name: 'Move Write the README to Doing' })
      .click();
    await waitUntil(
      async () => (await boardText(a)).Doing?.includes('Write the README'),
      'README card moved to Doing',
    );
    // A move into Doing takes a place in its lane first (the WIP limit: demo/src/lane.ts).
    await waitUntil(async () => (await syncState(a)).pending === 3, 'three events pending');
    // Activity is drawn apart from the board and the status: it shows the three in its turn.
    const unsynced = async () =>
      (await activity(a))
        .filter((e) => !e.synced)
        .map((e) => e.type)
        .join(',');
    await waitUntil(
      async () => (await unsynced()) === 'CardAdded,CardEnteredLane,CardMoved',
      'Activity lists the three events as not on the server',
    );
    await snap(a, '02-offline-edits');
  });

  it('reloads with no network and finds every local change', { timeout: STEP }, async () => {
    await a.reload();
    const expected = {
      'To do': ['Ship the demo', 'Offline idea'],
      Doing: ['Write the README'],
      Done: [],
    };
    await waitUntil(
      async () => JSON.stringify(await boardText(a)) === JSON.stringify(expected),
      'the board after an offline reload',
    );
    expect((await syncState(a)).state).toBe('offline');
    // Activity is drawn in its own turn after the board (as in the step before): wait for it.
    await waitUntil(
      async () => (await activity(a)).filter((e) => !e.synced).length === 3,
      'Activity lists the three events as not on the server after the reload',
    );
    expect((await activity(a)).filter((e) => !e.synced)).toHaveLength(3);
    await snap(a, '03-offline-reload');
  });

  it('sends the offline edits when the network returns', { timeout: STEP }, async () => {
    await deviceA.setOffline(false);
    await waitSynced(a, 'A back online');
    await waitUntil(
      async () => (await activity(a)).every((e) => e.synced),
      'every event on the server',
    );
    await snap(a, '04-back-online');
  });

  it('shows the same board on a second device', { timeout: STEP }, async () => {
    b = await openDevice(deviceB, demo.url, 'B');
    const board = await boardText(a);
    await waitUntil(
      async () => JSON.stringify(await boardText(b)) === JSON.stringify(board),
      'B shows A’s board',
    );
    await snap(b, '05-second-device');
  });

  it('merges notes typed on both devices (Yjs)', { timeout: STEP }, async () => {
    await card(a, 'Ship the demo').getByRole('button', { name: 'Notes of Ship the demo' }).click();
    await card(b, 'Ship the demo').getByRole('button', { name: 'Notes of Ship the demo' }).click();
    const notesA = a.getByLabel('Notes text');
    const notesB = b.getByLabel('Notes text');
    await waitUntil(
      async () => (await notesA.isEnabled()) && (await notesB.isEnabled()),
      'notes ready',
    );
    await notesA.pressSequentially('Check the icons.');
    await waitUntil(
      async () => (await notesB.inputValue()) === 'Check the icons.',
      'B sees A’s notes',
    );
    await notesB.press('End');
    await notesB.pressSequentially(' And the manifest.');
    await waitUntil(
      async () => (await notesA.inputValue()) === 'Check the icons. And the manifest.',
      'A sees B’s addition',
    );
    await snap(b, '06-shared-notes');
    await a.getByRole('button', { name: 'Close notes' }).click();
    await b.getByRole('button', { name: 'Close notes' }).click();
  });

  it('converges after concurrent offline edits, and shows the conflict', {
    timeout: STEP,
  }, async () => {
    await bothOffline();
    await renameCard(a, 'Ship the demo', 'Ship it on Friday');
    await card(a, 'Offline idea')
      .getByRole('button', { name: 'Move Offline idea to Doing' })
      .click();
    await renameCard(b, 'Ship the demo', 'Ship it on Monday');
    await addCard(b, 'done', 'Made on B');

    await deviceA.setOffline(false);
    await deviceB.setOffline(false);
    await waitSynced(a, 'A');
    await waitSynced(b, 'B');
    const converged = await waitUntil(async () => {
      const [boardA, boardB] = [await boardText(a), await boardText(b)];
      return JSON.stringify(boardA) === JSON.stringify(boardB) && boardA.Done?.length === 1
        ? boardA
        : undefined;
    }, 'both devices show the same board');
    // Both renames were concurrent: the total order applies B's last (it was made later).
    expect(converged).toEqual({
      'To do': ['Ship it on Monday'],
      Doing: ['Write the README', 'Offline idea'],
      Done: ['Made on B'],
    });
    for (const page of [a, b]) {
      await waitUntil(
        () => card(page, 'Ship it on Monday').locator('.conflict-badge').isVisible(),
        'the conflict badge',
      );
      const roles = (await activity(page)).filter((e) => e.conflict !== '');
      expect(roles.map((e) => [e.type, e.conflict.includes('applied last')])).toEqual([
        ['CardRenamed', false],
        ['CardRenamed', true],
      ]);
    }
    await snap(a, '07-converged-a');
    await snap(b, '07-converged-b');
  });

  it('travels back in time read-only, and back to now', { timeout: STEP }, async () => {
    const events = await activity(a);
    const secondAdd = events.filter((e) => e.type === 'CardAdded')[1];
    const position = events.findIndex((e) => e.id === secondAdd?.id) + 1;
    const slider = a.getByLabel('Board as of event');
    // One step per entry of the audit trail: the notes typed earlier are bursts, not steps.
    expect(await slider.getAttribute('max')).toBe(String(events.length));
    const total = Number(
      /\((\d+) events\)/.exec((await a.locator('#history-label').textContent()) ?? '')?.[1],
    );
    expect(total).toBeGreaterThan(events.length);
    await slider.fill(String(position));
    await waitUntil(
      async () =>
        JSON.stringify(await boardText(a)) ===
        JSON.stringify({ 'To do': ['Write the README', 'Ship the demo'], Doing: [], Done: [] }),
      'the board as it was after two cards',
    );
    expect(await a.locator('#history-banner').isVisible()).toBe(true);
    expect(await a.locator('#board .add-card').count()).toBe(0);
    expect(await a.locator('#board .card-title').first().getAttribute('readonly')).toBe('');
    expect(
      await a.locator(`#activity-list > li[data-event="${secondAdd?.id}"]`).getAttribute('class'),
    ).toContain('as-of');
    await snap(a, '08-time-travel');

    await a.getByRole('button', { name: 'Back to now' }).click();
    await waitUntil(
      async () => (await boardText(a))['To do']?.[0] === 'Ship it on Monday',
      'the present board',
    );
    expect(await a.locator('#history-banner').isVisible()).toBe(false);
    expect(await a.locator('#board .add-card').count()).toBe(3);
    await snap(a, '09-back-to-now');
  });

  it('filters the activity by card and by type', { timeout: STEP }, async () => {
    await a.locator('#filter-type').selectOption('CardRenamed');
    await waitUntil(async () => (await activity(a)).length === 2, 'two renames');
    const shipIt = await card(a, 'Ship it on Monday').getAttribute('data-card');
    await a.locator('#filter-type').selectOption('');
    await a.locator('#filter-card').selectOption(shipIt ?? '');
    const types = (await activity(a)).map((e) => e.type);
    // Its own stream and its notes' stream, nothing else.
    expect(new Set(types)).toEqual(new Set(['CardAdded', 'CardRenamed', 'yjs.update']));
    // A burst of note edits is one entry that opens on the time of each edit.
    const burst = a.locator('#activity-list details.summary').first();
    const edits = Number(
      /\((\d+) edits\)/.exec((await burst.locator('summary').textContent()) ?? '')?.[1],
    );
    expect(edits).toBeGreaterThan(1);
    await burst.locator('summary').click();
    expect(await burst.locator('.burst li').count()).toBe(edits);
    await snap(a, '10-activity-filtered');
    await a.locator('#filter-card').selectOption('');
  });

  it('goes offline on purpose with the switch, and syncs when it is off again', {
    timeout: STEP,
  }, async () => {
    await a.getByLabel('Work offline').check();
    await waitUntil(async () => (await syncState(a)).state === 'paused', 'A paused');
    await addCard(a, 'todo', 'Held back');
    await waitUntil(async () => (await syncState(a)).pending === 1, 'one event waiting');
    expect(Object.values(await boardText(b)).flat()).not.toContain('Held back');
    await a.getByLabel('Work offline').uncheck();
    await waitSynced(a, 'A');
    await waitUntil(async () => (await boardText(b))['To do']?.includes('Held back'), 'B sees it');
  });

  it('deletes a card on every device', { timeout: STEP }, async () => {
    await card(b, 'Made on B').getByRole('button', { name: 'Delete Made on B' }).click();
    for (const page of [a, b]) {
      await waitUntil(async () => (await boardText(page)).Done?.length === 0, 'the card gone');
    }
  });

  it('keeps one side of a conflict, and the conflict ends on both devices', {
    timeout: STEP,
  }, async () => {
    const conflicted = card(b, 'Ship it on Monday');
    await conflicted
      .locator('.conflict-sides li', { hasText: 'Ship it on Friday' })
      .getByRole('button', { name: /^Keep/ })
      .click();
    for (const page of [a, b]) {
      await waitUntil(
        async () => (await boardText(page))['To do']?.includes('Ship it on Friday'),
        'the kept title',
      );
      await waitUntil(
        async () =>
          (await card(page, 'Ship it on Friday').locator('.conflict-badge').count()) === 0,
        'no conflict left',
      );
    }
    const words = await a.locator('#activity-list > li .summary').allTextContents();
    expect(words).toContain(
      'renamed “Ship it on Monday” → “Ship it on Friday”, keeping it over the conflict',
    );
    await snap(b, '11-conflict-kept');
  });

  it('tells of a card deleted on one device while another moved it, and restores it', {
    timeout: STEP,
  }, async () => {
    await bothOffline();
    await card(a, 'Held back').getByRole('button', { name: 'Delete Held back' }).click();
    await card(b, 'Held back').getByRole('button', { name: 'Move Held back to Doing' }).click();
    await deviceA.setOffline(false);
    await deviceB.setOffline(false);
    await waitSynced(a, 'A');
    await waitSynced(b, 'B');
    for (const page of [a, b]) {
      await waitUntil(
        async () => (await page.locator('.deleted-notice').textContent())?.includes('Held back'),
        'the deleted card told',
      );
    }
    await snap(a, '12-deleted-while-moved');
    await b.getByRole('button', { name: 'Restore “Held back”' }).click();
    for (const page of [a, b]) {
      await waitUntil(
        async () =>
          Object.values(await boardText(page))
            .flat()
            .includes('Held back'),
        'the card restored',
      );
      await waitUntil(
        async () => (await page.locator('.deleted-notice').count()) === 0,
        'notice gone',
      );
    }
  });

  it('undoes this device’s own changes with new events: a delete, then a rename', {
    timeout: STEP,
  }, async () => {
    await renameCard(a, 'Ship it on Friday', 'Ship it soon');
    await card(a, 'Ship it soon').getByRole('button', { name: 'Delete Ship it soon' }).click();
    await waitUntil(
      async () =>
        !Object.values(await boardText(b))
          .flat()
          .includes('Ship it soon'),
      'B: the card deleted',
    );
    await a.getByRole('button', { name: 'Undo: deleted “Ship it soon”' }).click();
    await waitUntil(
      async () => (await boardText(b))['To do']?.includes('Ship it soon'),
      'B: the delete undone',
    );
    await a.locator('body').press('Control+z');
    for (const page of [a, b]) {
      await waitUntil(
        async () => (await boardText(page))['To do']?.includes('Ship it on Friday'),
        'the rename undone',
      );
    }
    // Activity is drawn in its own turn after the board (as the offline step waits for it): the
    // rename's undo can be on B's board a moment before it is in B's Activity.
    const undone = [
      'renamed “Ship it soon” → “Ship it on Friday” (undo)',
      'restored “Ship it soon” to To do (undo)',
    ];
    const words = () => b.locator('#activity-list > li .summary').allTextContents();
    await waitUntil(
      async () => JSON.stringify((await words()).slice(0, 2)) === JSON.stringify(undone),
      'B: Activity lists both undos',
    );
    expect((await words()).slice(0, 2)).toEqual(undone);
  });

  it('moves a card by drag and drop, onto a column or before another card', {
    timeout: STEP,
  }, async () => {
    await card(a, 'Write the README').dragTo(a.locator('section.column[data-column="done"]'));
    for (const page of [a, b]) {
      await waitUntil(
        async () => (await boardText(page)).Done?.includes('Write the README'),
        'the card in Done',
      );
    }
    await card(a, 'Offline idea').dragTo(card(a, 'Write the README'));
    await waitUntil(
      async () =>
        JSON.stringify((await boardText(b)).Done) ===
        JSON.stringify(['Offline idea', 'Write the README']),
      'B: dropped before the other card',
    );
    // From the keyboard: Alt+arrow on the focused card.
    await card(a, 'Write the README').locator('.card-title').press('Alt+ArrowLeft');
    await waitUntil(
      async () => (await boardText(b)).Doing?.includes('Write the README'),
      'B: moved back to Doing by keyboard',
    );
  });

  it('shows a long title whole, wrapped over lines', { timeout: STEP }, async () => {
    const long = 'Offline idea: write down every step of the release checklist before Friday';
    await renameCard(a, 'Offline idea', long);
    const height = (title: string) =>
      card(a, title)
        .locator('.card-title')
        .evaluate((el) => el.getBoundingClientRect().height);
    const line = await height('Write the README');
    // The board re-renders as the rename comes back from the store: measure once it settled.
    await waitUntil(async () => (await height(long)) > line * 1.5, 'the long title wrapped');
  });

  it('puts a card back as it was at an earlier event, with new events', {
    timeout: STEP,
  }, async () => {
    const added = a.locator('#activity-list > li', { hasText: 'added “Offline idea” to To do' });
    await added.getByRole('button', { name: /^Back to here/ }).click();
    for (const page of [a, b]) {
      await waitUntil(
        async () => (await boardText(page))['To do']?.includes('Offline idea'),
        'the card as it was when added',
      );
    }
    // The board (watch) and Activity (a read of the log) are drawn apart: wait for the second.
    const expected = [
      'moved Done → To do (back to an earlier point)',
      'renamed “Offline idea: write down every step of the release checklist before Friday” → “Offline idea” (back to an earlier point)',
    ];
    const newest = async () =>
      (await b.locator('#activity-list > li .summary').allTextContents()).slice(0, 2);
    await waitUntil(
      async () => JSON.stringify(await newest()) === JSON.stringify(expected),
      "B's Activity",
    ).catch(() => {});
    expect(await newest()).toEqual(expected);
  });

  it('keeps the work-in-progress limit of Doing across two offline devices: one move stands, the other card goes back with a notice on both', {
    timeout: STEP,
  }, async () => {
    // Doing empty, then two cards in it: one place left of three.
    for (const title of (await boardText(a)).Doing ?? []) {
      await card(a, title)
        .getByRole('button', { name: `Move ${title} to Done` })
        .click();
      await waitUntil(async () => !(await boardText(a)).Doing?.includes(title), `${title} out`);
    }
    for (const title of ['WIP one', 'WIP two', 'From A', 'From B']) await addCard(a, 'todo', title);
    for (const title of ['WIP one', 'WIP two']) {
      await card(a, title)
        .getByRole('button', { name: `Move ${title} to Doing` })
        .click();
      await waitUntil(async () => (await boardText(a)).Doing?.includes(title), `${title} in`);
    }
    await waitSynced(a, 'A');
    await waitUntil(async () => (await boardText(b)).Doing?.length === 2, 'B: two in Doing');
    await waitUntil(async () => (await boardText(b))['To do']?.includes('From B'), 'B: cards');
    await bothOffline();
    await card(a, 'From A').getByRole('button', { name: 'Move From A to Doing' }).click();
    await card(b, 'From B').getByRole('button', { name: 'Move From B to Doing' }).click();
    // Each device shows its move at once, waiting for the server.
    for (const [page, title] of [
      [a, 'From A'],
      [b, 'From B'],
    ] as const) {
      await waitUntil(async () => (await boardText(page)).Doing?.includes(title), `${title} shown`);
      await waitUntil(
        async () =>
          (await page.locator('#sync-status').textContent())?.includes(
            'waiting for the server to accept',
          ),
        'the tentative move told',
      );
    }
    await snap(b, '13-wip-tentative');
    await deviceA.setOffline(false);
    await waitSynced(a, 'A');
    await deviceB.setOffline(false);
    for (const page of [a, b]) {
      await waitUntil(async () => {
        const board = await boardText(page);
        return board.Doing?.length === 3 && board['To do']?.includes('From B');
      }, 'From A stands, From B back in To do');
      await waitUntil(
        async () =>
          (await page.locator('.wip-notice').first().textContent())?.includes(
            '“From B” went back to To do',
          ),
        'the notice',
      );
    }
    expect(await b.locator('.wip-notice').first().textContent()).toContain(
      'work-in-progress limit',
    );
    const words = await a.locator('#activity-list > li .summary').allTextContents();
    expect(words).toContain(
      'moved back Doing → To do: Doing holds 3 cards already (the work-in-progress limit)',
    );
    // Each move says what caused it (its $causationId): the place it took, or the refusal.
    const causes = await a.locator('#activity-list > li .cause').allTextContents();
    expect(causes).toContain('because of: WIP limit of Doing: took a place in Doing for “From A”');
    expect(causes).toContain('because of: the server refused its place in Doing');
    await snap(a, '13-wip-refused');
  });

  it('shows Chronicle’s devtools under the board with ?devtools', { timeout: STEP }, async () => {
    const page = await deviceA.newPage();
    await page.goto(`${demo.url}?devtools`);
    const rows = page.locator('#devtools .chronicle-devtools .events li');
    await waitUntil(async () => (await rows.count()) > 10, 'the events in the panel');
    await waitUntil(
      async () =>
        ((await page.locator('#devtools [data-projection="board"]').textContent()) ?? '').includes(
          'Ship it on Friday',
        ),
      'the board state in the panel',
    );
    // The state as a tree, its top level open.
    const tree = page.locator('#devtools .tree');
    expect(await tree.locator('summary').first().textContent()).toBe('{3}');
    expect(await tree.locator('summary', { hasText: /^cards: \{\d+\}$/ }).count()).toBe(1);
    await page.locator('#devtools').getByRole('button', { name: 'Check determinism' }).click();
    await waitUntil(
      async () =>
        (await page.locator('#devtools [data-determinism="board"]').getAttribute('data-result')) ===
        'deterministic',
      'the board projection checked',
    );
    await snap(page, '14-devtools');
    await page.close();
  });

  it('makes an encrypted board, opens it on another device by its link, and the server file holds none of its text', {
    timeout: STEP,
  }, async () => {
    const marker = `Secret plan ${Date.now().toString(36)}`;
    const mine = await deviceA.newPage();
    await mine.goto(demo.url);
    await mine.locator('#new-encrypted-board').click();
    await mine.waitForURL(/\?board=[a-z0-9]{16}#key=/);
    await waitSynced(mine, 'A, encrypted board');
    expect(await mine.locator('#board-kind').isVisible()).toBe(true);
    await addCard(mine, 'todo', marker);
    await waitSynced(mine, 'A, encrypted board');
    await mine.locator('#share-board').click();
    await mine.locator('#share-link').waitFor({ state: 'visible' });
    const link = await mine.locator('#share-link').inputValue();
    expect(link).toMatch(/\?board=[a-z0-9]{16}#key=[A-Za-z0-9_-]{43}$/);

    const theirs = await deviceB.newPage();
    await theirs.goto(link);
    await waitUntil(
      async () => (await boardText(theirs))['To do']?.includes(marker),
      'B: the encrypted card',
    );
    // The default board's cards are not on this one: its own space.
    expect((await boardText(theirs))['To do']).toEqual([marker]);
    await snap(mine, '15-encrypted-board');

    // The server's files: the default board's titles in clear, the encrypted board's nowhere.
    const files = readdirSync(fixture.dataDir).map((name) =>
      readFileSync(join(fixture.dataDir, name)),
    );
    expect(files.some((bytes) => bytes.includes('Write the README'))).toBe(true);
    expect(files.some((bytes) => bytes.includes(marker))).toBe(false);
    // Nor its stream names and event types (the board hides them: encryption.names), which the
    // plain board's rows show.
    const db = new Database(join(fixture.dataDir, 'demo.sqlite'), { readonly: true });
    const rows = (space: string) =>
      db.prepare('SELECT stream, body FROM events WHERE space = ?').all(space) as {
        stream: string;
        body: string;
      }[];
    const hidden = rows(`board-${new URL(link).searchParams.get('board')}`);
    expect(hidden.length).toBeGreaterThan(0);
    const app = hidden.filter((r) => r.stream !== '$keyring');
    expect(app.every((r) => r.stream.startsWith('~'))).toBe(true);
    expect(app.some((r) => r.body.includes('CardAdded'))).toBe(false);
    expect(rows('demo').some((r) => r.stream.startsWith('card:'))).toBe(true);
    db.close();

    // Erased on one device: gone from the other's board, and its Activity says so, not what.
    await mine.getByRole('button', { name: `Erase ${marker} for good` }).click();
    await waitUntil(
      async () => (await boardText(theirs))['To do']?.length === 0,
      'B: the erased card gone',
    );
    await waitUntil(
      async () => (await theirs.locator('#activity-list').textContent())?.includes('erased a card'),
      'B: the erasure in Activity',
    );
    expect(await theirs.locator('#activity-list').textContent()).not.toContain(marker);
    await snap(theirs, '15b-encrypted-board-erased');

    // A device without the key (the link without its fragment) is told how to open the board.
    const stranger = await browser.newContext();
    const lost = await stranger.newPage();
    await lost.goto(link.slice(0, link.indexOf('#')));
    await waitUntil(async () => lost.locator('#fatal').isVisible(), 'C: told of the key');
    expect(await lost.locator('#fatal').textContent()).toContain('share link');
    await stranger.close();
    await Promise.all([mine.close(), theirs.close()]);
  });

  it('says the sync server is unreachable (not offline) when only it is down, and remembers the last sync across a reload', {
    timeout: STEP,
  }, async () => {
    const statusText = () => a.locator('#sync-status').textContent();
    await demo.backend.server?.close();
    await waitUntil(
      async () => (await statusText())?.startsWith('Sync server unreachable'),
      'A: the server unreachable',
    );
    expect(await statusText()).not.toMatch(/\(TRANSPORT\)|Offline/);
    await a.reload();
    await waitUntil(async () => /last synced \d/.test((await statusText()) ?? ''), 'the last sync');
    expect(await statusText()).not.toContain('not synced yet');
    await snap(a, '16-server-down');
  });
});
