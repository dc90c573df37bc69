/**
 * Encryption and crypto-shredding on a real on-disk Chromium profile: what IndexedDB's files
 * hold, read byte by byte after the browser closed (RELIABILITY: measure from outside).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeEncryptionKey, generateEncryptionKey } from '../../../src/index.ts';
import { appendThenShred } from '../fixtures/shred-page.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { KillableChromium, loadTab, type TabOptions, uniqueDb } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('an encrypted store on an on-disk Chromium profile', () => {
  it('writes no plaintext to IndexedDB, before or after a shred, and the shred holds on reopen', async () => {
    const chromium = new KillableChromium();
    try {
      const marker = `marker-${Date.now().toString(36)}`;
      const options: TabOptions = {
        db: uniqueDb('shred'),
        mode: 'dedicated',
        key: encodeEncryptionKey(generateEncryptionKey()),
      };
      let ctx = await chromium.start();
      const page = await ctx.newPage();
      await loadTab(page, session.base, options);
      const { wrapped } = await page.evaluate(appendThenShred, marker);
      const after = await page.evaluate(async () => {
        const store = (window as unknown as TabWindow).tab.store$();
        return {
          count: await store.state('count'),
          card1: (await store.read({ stream: 'card-1' })).map((e) => e.data),
        };
      });
      expect(after.count).toBe(1);
      expect(after.card1).toHaveLength(30);
      expect(after.card1.every((d) => d === null)).toBe(true);
      // A clean close: Chromium writes its IndexedDB (LevelDB) files out.
      await chromium.browser?.close();
      await chromium.kill();

      const files = filesUnder(join(chromium.profile, 'Default', 'IndexedDB'));
      expect(files.length).toBeGreaterThan(0);
      const holding = (text: string) =>
        files.filter((file) => readFileSync(file).includes(Buffer.from(text)));
      expect(holding(marker)).toEqual([]);
      expect(holding('kept')).toEqual([]);
      // LevelDB keeps deleted records until it compacts: the erased key may linger in a file.
      console.log(`shred on disk: the erased key's text in ${holding(wrapped).length} file(s)`);

      ctx = await chromium.start();
      const again = await ctx.newPage();
      await loadTab(again, session.base, options);
      const reopened = await again.evaluate(async () => {
        const store = (window as unknown as TabWindow).tab.store$();
        return {
          count: await store.state('count'),
          card1: (await store.read({ stream: 'card-1' })).every((e) => e.data === null),
        };
      });
      expect(reopened).toEqual({ count: 1, card1: true });
    } finally {
      await chromium.dispose();
    }
  });
});
