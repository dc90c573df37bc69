/**
 * RELIABILITY 11: site data cleared → the client rebuilds from the server, and every event the
 * server acknowledged is back. Real Chromium, the built demo, CDP's Storage.clearDataForOrigin
 * (IndexedDB, the service worker's caches, everything of the origin).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activity,
  addCard,
  boardText,
  type DemoFixture,
  openDevice,
  snap,
  startDemoFixture,
  waitSynced,
  waitUntil,
} from './helpers.ts';

describe('site data cleared (RELIABILITY 11)', () => {
  let fixture: DemoFixture;

  beforeAll(async () => {
    fixture = await startDemoFixture();
  }, 120_000);

  afterAll(async () => {
    await fixture?.close();
  });

  it("negotiates permessage-deflate with the browser through the demo's /sync pipe", {
    timeout: 60_000,
  }, async () => {
    const context = await fixture.browser.newContext();
    const page = await context.newPage();
    await page.goto(fixture.demo.url);
    // The socket the store opens lives in its worker; a page's socket to /sync takes the same path.
    const extensions = await page.evaluate(async () => {
      const { token } = (await (await fetch('/token', { cache: 'no-store' })).json()) as {
        token: string;
      };
      const url = new URL('/sync', location.href);
      url.protocol = 'ws:';
      url.searchParams.set('token', token);
      const socket = new WebSocket(url.href);
      await new Promise((resolve, reject) => {
        socket.onopen = resolve;
        socket.onerror = reject;
      });
      const negotiated = socket.extensions;
      socket.close();
      return negotiated;
    });
    expect(extensions).toContain('permessage-deflate');
    await context.close();
  });

  it('rebuilds the board from the server with every acknowledged event', {
    timeout: 90_000,
  }, async () => {
    const { browser, demo } = fixture;
    const context = await browser.newContext();
    const page = await openDevice(context, demo.url, 'A');
    for (const title of ['One', 'Two', 'Three']) await addCard(page, 'todo', title);
    await waitSynced(page, 'A');
    const before = await boardText(page);
    const eventsBefore = (await activity(page)).length;
    await snap(page, 'clear-01-before');

    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.clearDataForOrigin', {
      origin: new URL(demo.url).origin,
      storageTypes: 'all',
    });
    // Close every page of the origin so that its worker, which held the deleted database, ends.
    await page.close();

    const fresh = await context.newPage();
    await fresh.goto(demo.url);
    await waitUntil(async () => {
      const board = await boardText(fresh).catch(() => ({}));
      return JSON.stringify(board) === JSON.stringify(before);
    }, 'the board back from the server');
    await waitSynced(fresh, 'A after clearing');
    expect(await boardText(fresh)).toEqual(before);
    await waitUntil(async () => (await activity(fresh)).length >= eventsBefore, 'every event back');
    await snap(fresh, 'clear-02-rebuilt');
    await context.close();
  });
});
