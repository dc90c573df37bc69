/**
 * Strict streams in real Chromium (issue 19): a command on a strict stream, appended while the
 * sync server is down, stays tentative across a reload of the page, and is rebased on what
 * another device had accepted meanwhile once the server is back. The other device is a Node
 * store; the server a separate SQLite-backed sync server on 127.0.0.1, stopped and started
 * again on the same file and port.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type EventStore, memoryStorage, openStore } from '../../../src/index.ts';
import {
  createSyncServer,
  createToken,
  type SyncServer,
  sqliteStorage,
} from '../../../src/server/index.ts';
import { SECRET, tempDir } from '../../server/helpers.ts';
import { type AccountEvents, account } from '../../store/fixtures/account.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { loadTab, openTab, type TabOptions, uniqueDb, waitUntil } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();
const tmp = tempDir();
let server: SyncServer | undefined;
let other: EventStore<AccountEvents> | undefined;

afterEach(async () => {
  await other?.close();
  await server?.close();
  server = undefined;
});

const token = (space: string, sub: string) =>
  createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds: 600 });

const start = (path: string, port = 0) =>
  createSyncServer({ port, storage: sqliteStorage(path), auth: { secret: SECRET }, log: () => {} });

/** The page's store: connect to the server, or not, and read what the tests look at. */
const connect = (page: Page, url: string, t: string) =>
  page.evaluate(
    ({ url, t }) => {
      const store = (window as unknown as TabWindow).tab.store$();
      const w = window as unknown as { connection?: { close(): Promise<void> } };
      w.connection = store.sync.connect({ url, token: t });
    },
    { url, t },
  );

const disconnect = (page: Page) =>
  page.evaluate(() =>
    (window as unknown as { connection?: { close(): Promise<void> } }).connection?.close(),
  );

const view = (page: Page) =>
  page.evaluate(async () => {
    const store = (window as unknown as TabWindow).tab.store$();
    const events = await store.read({ stream: 'account-1' });
    return {
      events: events.map((e) => ({ id: e.id, type: e.type, data: e.data, version: e.version })),
      status: store.sync.status(),
    };
  });

describe('a strict-stream command in Chromium', () => {
  it('stays tentative across a reload while the server is down, then is rebased on what another device had accepted', async () => {
    const path = join(tmp.dir, `${uniqueDb('strict')}.sqlite`);
    server = await start(path);
    const port = server.port;
    const url = server.url;
    const space = uniqueDb('space');
    other = await openStore<AccountEvents>({
      name: 'other',
      storage: memoryStorage(),
      aggregates: [account],
      strictStreams: ['account-*'],
      syncOptions: { WebSocket: WebSocket as never, backoff: { initialMs: 50, maxMs: 300 } },
    });
    const otherLink = other.sync.connect({ url, token: token(space, 'other') });
    await other.execute(account, 'account-1', 'deposit', { cents: 100 });

    const options: TabOptions = {
      db: uniqueDb('strict-page'),
      mode: 'shared',
      strict: ['account-*'],
    };
    const page = await openTab(session.context, session.base, options);
    await connect(page, url, token(space, 'page'));
    await waitUntil(
      async () => (await view(page)).events.length === 1,
      'the deposit on the page',
      20_000,
    );

    // The page goes off line and withdraws 30; the other device withdraws 50, accepted.
    await disconnect(page);
    await waitUntil(async () => (await view(page)).status.state === 'offline', 'the page off line');
    const withdrawn = await page.evaluate(async () => {
      const store = (window as unknown as TabWindow).tab.store$();
      const events = await store.execute('account', 'account-1', 'withdraw', { cents: 30 });
      return events.map((e) => e.id);
    });
    await waitUntil(
      async () => (await view(page)).status.tentative === 1,
      'the tentative withdrawal',
    );
    await other.execute(account, 'account-1', 'withdraw', { cents: 50 });
    await waitUntil(
      () => other!.sync.status().pending === 0,
      'the other withdrawal accepted',
      20_000,
    );
    await otherLink.close();
    await server.close();
    server = undefined;

    // Reloaded with the server down: the withdrawal is still there, still tentative.
    await loadTab(page, session.base, options);
    // As an app does at every load: it asks for sync (the server is down; it keeps trying).
    await connect(page, url, token(space, 'page'));
    let seen = '';
    const reloaded = await waitUntil(
      async () => {
        const v = await view(page);
        seen = JSON.stringify(v);
        return v.status.tentative === 1 ? v : undefined;
      },
      'the tentative withdrawal after the reload',
      20_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}: ${seen}`);
    });
    expect(reloaded.events.map((e) => e.id)).toEqual([expect.any(String), withdrawn[0]]);
    expect(reloaded.status.pending).toBe(1);

    // The server comes back: the withdrawal is rejected, run again on 50 cents, and accepted.
    server = await start(path, port);
    // A fresh connection, not the backoff's next try: the test need not wait for it.
    await disconnect(page);
    await connect(page, url, token(space, 'page'));
    const done = await waitUntil(
      async () => {
        const v = await view(page);
        return v.events.length === 3 && v.status.pending === 0 && v.status.tentative === undefined
          ? v
          : undefined;
      },
      'the rebased withdrawal accepted',
      30_000,
    );
    expect(done.events.map((e) => [e.type, e.data, e.version])).toEqual([
      ['Deposited', { cents: 100 }, 1],
      ['Withdrawn', { cents: 50 }, 2],
      ['Withdrawn', { cents: 30 }, 3],
    ]);
    expect(done.status.rejected).toMatchObject([
      {
        stream: 'account-1',
        eventIds: withdrawn,
        command: { name: 'withdraw', outcome: 'rebased' },
      },
    ]);
    // The other device gets the rebased withdrawal: one log on both.
    other.sync.connect({ url, token: token(space, 'other') });
    await waitUntil(
      async () => (await other!.read({ stream: 'account-1' })).length === 3,
      'the other device',
      20_000,
    );
    expect((await other.read({ stream: 'account-1' })).map((e) => e.id)).toEqual(
      done.events.map((e) => e.id),
    );
  });
});
