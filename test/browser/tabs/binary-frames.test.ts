/**
 * Binary frames through Chromium's own WebSocket (sync/binary-frame.ts, protocol invariant 11):
 * an encrypted, signing store in a worker of a real page and a Node store share a space on a
 * real sync server on 127.0.0.1; their batches (signatures, link hashes, sealed data) cross as
 * binary frames both ways, and both hold the same events.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  encodeEncryptionKey,
  generateEncryptionKey,
  memoryStorage,
  openStore,
  webSocketTransport,
} from '../../../src/index.ts';
import { startTestServer, type TestServer } from '../../server/helpers.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { openTab, uniqueDb, waitUntil } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();

describe('binary frames in Chromium', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer({ requireSignatures: true });
  });
  afterEach(async () => {
    await server.stop();
  });

  it("a page's store syncs signed, sealed events with a Node store over binary frames", async () => {
    const space = uniqueDb('binary');
    const key = generateEncryptionKey();
    const node = await openStore({ name: 'node', storage: memoryStorage(), encryption: { key } });
    try {
      for (let i = 0; i < 30; i++) {
        await node.append(`card-${i % 3}`, { type: 'added', data: { title: `node ${i}` } });
      }
      node.sync.connect(
        webSocketTransport(server.server.url, {
          token: server.token({ space, sub: 'node' }),
          WebSocket: WebSocket as never,
        }),
      );
      const page = await openTab(session.context, session.base, {
        db: uniqueDb('binary'),
        mode: 'dedicated',
        key: encodeEncryptionKey(key),
      });
      await page.evaluate(
        async (target) => {
          const store = (window as unknown as TabWindow).tab.store$();
          for (let i = 0; i < 20; i++) {
            await store.append(`card-${i % 3}`, { type: 'added', data: { title: `page ${i}` } });
          }
          store.sync.connect(target);
        },
        { url: server.server.url, token: server.token({ space, sub: 'page' }) },
      );

      const pageCount = () =>
        page.evaluate(
          async () => (await (window as unknown as TabWindow).tab.store$().read()).length,
        );
      await waitUntil(async () => (await pageCount()) === 50, 'the page holds every event', 30_000);
      await waitUntil(
        async () => (await node.read()).length === 50,
        'Node holds every event',
        30_000,
      );
      const titles = await page.evaluate(async () =>
        (await (window as unknown as TabWindow).tab.store$().read()).map(
          (e) => (e.data as { title: string }).title,
        ),
      );
      expect(titles.sort()).toEqual(
        (await node.read()).map((e) => (e.data as { title: string }).title).sort(),
      );
      const status = await page.evaluate(() =>
        (window as unknown as TabWindow).tab.store$().sync.status(),
      );
      expect(status.tampered).toBeUndefined();

      // The page's connection, as the server logs it when it closes: binary both ways.
      await page.close();
      const closed = await waitUntil(
        () => server.logs.find((l) => l.event === 'close' && l.sub === 'page'),
        "the page's connection closed",
        20_000,
      );
      expect(closed.binaryIn).toBeGreaterThan(0);
      expect(closed.binaryOut).toBeGreaterThan(0);
    } finally {
      await node.close();
    }
  });
});
