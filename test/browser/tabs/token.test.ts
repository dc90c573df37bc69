/**
 * A token function given to `store.sync.connect` on the main thread, in real Chromium, against a
 * real sync server on 127.0.0.1: the page lends it to the worker (src/client/protocol.ts,
 * RemoteTokenSource), which calls it on every (re)connect (worker/session.ts invariant 5), so an
 * expired token is replaced and a token the server cut off at its expiry is refreshed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createToken } from '../../../src/server/auth.ts';
import { SECRET, startTestServer, type TestServer } from '../../server/helpers.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { openTab, uniqueDb, waitUntil } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();

interface TokenWindow extends TabWindow {
  issueToken(): Promise<string>;
}

describe.each(['shared', 'dedicated'] as const)('a token function through a %s worker', (mode) => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    await server.stop();
  });

  it('is called again on every reconnect: an expired token is replaced, and a token cut off at its expiry is refreshed', async () => {
    const space = uniqueDb('space');
    const page = await openTab(session.context, session.base, { db: uniqueDb('token'), mode });
    let calls = 0;
    await page.exposeFunction('issueToken', () => {
      calls += 1;
      const claims = { space, sub: 'alice', scope: ['read', 'write'] as const };
      // 1: expired an hour ago (refused with 401); 2: valid for 5-6 s (the server closes the
      // socket with 4001 when it expires; long enough that a loaded machine still opens the
      // socket with it, else it is refused as expired and no 4001 comes); then: 10 minutes.
      if (calls === 1) {
        return createToken(
          SECRET,
          { ...claims, scope: [...claims.scope], expiresInSeconds: 60 },
          Date.now() - 3_600_000,
        );
      }
      return server.token({ space, expiresInSeconds: calls === 2 ? 6 : 600 });
    });
    await page.evaluate(async (url) => {
      const w = window as unknown as TokenWindow;
      const store = w.tab.store$();
      store.sync.connect({ url, token: () => w.issueToken() });
      await store.append('todo-1', { type: 'TodoAdded', data: { title: 'first' } });
    }, server.server.url);

    const synced = () =>
      page.evaluate(() => {
        const s = (window as unknown as TabWindow).tab.store$().sync.status();
        return s.state === 'idle' && s.pending === 0;
      });
    await waitUntil(synced, 'the first event acknowledged', 20_000);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(server.logs).toContainEqual(
      expect.objectContaining({ event: 'auth_failure', status: 401, reason: 'expired' }),
    );

    // The second token runs out: the server closes with 4001, the worker asks for a new one.
    await waitUntil(() => calls >= 3, 'a third token', 20_000);
    // The server sends UNAUTHORIZED, then closes with 4001; its log has the code the client's
    // close frame carried: 4001 echoed, or the client's own 1000 when the error reached it
    // first ("peer error UNAUTHORIZED"). Either way the expiry ended that connection.
    expect(
      server.logs.some(
        (l) =>
          l.event === 'close' && (l.code === 4001 || String(l.reason).includes('UNAUTHORIZED')),
      ),
    ).toBe(true);
    await page.evaluate(() =>
      (window as unknown as TabWindow).tab
        .store$()
        .append('todo-2', { type: 'TodoAdded', data: { title: 'second' } }),
    );
    await waitUntil(synced, 'the second event acknowledged', 20_000);
    const held = await server.storage.openSpace(space);
    expect((await held.readByPos(0, 10)).map((r) => r.event.stream)).toEqual(['todo-1', 'todo-2']);
  });

  it('fails a connection attempt whose token function answers something else than a string', async () => {
    const page = await openTab(session.context, session.base, { db: uniqueDb('token'), mode });
    await page.evaluate((url) => {
      const store = (window as unknown as TabWindow).tab.store$();
      store.sync.connect({ url, token: async () => 42 as unknown as string });
    }, server.server.url);
    const error = await waitUntil(
      () =>
        page.evaluate(() => (window as unknown as TabWindow).tab.store$().sync.status().lastError),
      'a sync error',
    );
    expect(error).toMatchObject({ message: /token function must resolve to a non-empty string/ });
    expect(server.logs.filter((e) => e.event === 'connect')).toEqual([]);
  });
});
