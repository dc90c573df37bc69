/**
 * Encryption and crypto-shredding on Firefox's own on-disk profile (its IndexedDB is SQLite):
 * what the files hold, read byte by byte after the browser closed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEncryptionKey, generateEncryptionKey } from '../../../src/index.ts';
import { appendThenShred } from '../fixtures/shred-page.ts';
import { startServer, uniqueDb } from '../tabs/harness.ts';
import { launchFirefox } from './launch.ts';
import { openFirefoxTab } from './pages.ts';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('an encrypted store on an on-disk Firefox profile', () => {
  let vite: ViteDevServer;
  let base: string;
  beforeAll(async () => {
    ({ server: vite, url: base } = await startServer());
  }, 60_000);
  afterAll(async () => {
    await vite?.close();
  });

  it('writes no plaintext to IndexedDB, before or after a shred', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'chronicle-ff-profile-'));
    try {
      const firefox = await launchFirefox(profile);
      const marker = `marker-${Date.now().toString(36)}`;
      let wrapped = '';
      try {
        const tab = await openFirefoxTab(firefox.defaultBrowserContext(), base, {
          db: uniqueDb('ff-shred'),
          mode: 'dedicated',
          key: encodeEncryptionKey(generateEncryptionKey()),
        });
        const result = await tab.run(appendThenShred, marker);
        wrapped = result.wrapped;
        expect(result.count).toBe(1);
        await tab.close();
      } finally {
        await firefox.close();
      }
      const files = filesUnder(join(profile, 'storage'));
      const holding = (text: string) =>
        files.filter((file) => readFileSync(file).includes(Buffer.from(text)));
      expect(files.length).toBeGreaterThan(0);
      expect(holding(marker)).toEqual([]);
      expect(holding('kept')).toEqual([]);
      expect(wrapped.length).toBeGreaterThan(40);
      // Firefox's SQLite may keep a deleted row's bytes in a free page until it is reused.
      console.log(
        `firefox shred on disk: the erased key's text in ${holding(wrapped).length} file(s)`,
      );
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
