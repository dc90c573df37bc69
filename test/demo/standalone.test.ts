/**
 * The demo pointed at a standalone chronicle-server (demo/server/app.ts standaloneBackend,
 * CHRONICLE_SYNC_URL in start.ts): its /token mints tokens that server accepts, and /sync and
 * /healthz reach that server; the demo runs no sync server of its own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { standaloneBackend, startDemo } from '../../demo/server/app.ts';
import { RawClient, SECRET, startTestServer, tempDir } from '../server/helpers.ts';

describe('the demo with a standalone chronicle-server', () => {
  it('mints tokens it accepts and pipes /sync and /healthz to it', async () => {
    const tmp = tempDir();
    const sync = await startTestServer();
    const dist = join(tmp.dir, 'dist');
    mkdirSync(dist);
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>demo</title>');
    const demo = await startDemo({
      distDir: dist,
      dataDir: join(tmp.dir, 'data'),
      sync: { url: sync.server.url, secret: SECRET },
    });
    try {
      expect(demo.backend.server).toBeUndefined();
      const { token } = (await (await fetch(new URL('token', demo.url))).json()) as {
        token: string;
      };
      const wsUrl = new URL('sync', demo.url.replace(/^http/, 'ws')).href;
      const client = await RawClient.connect(wsUrl, { token, query: false });
      expect(sync.server.connectionCount()).toBe(1);
      client.close();
      const health = await fetch(new URL('healthz', demo.url));
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
    } finally {
      await demo.close();
      await sync.stop();
      tmp.cleanup();
    }
  });

  it('refuses a URL that is not ws:// or wss://', () => {
    expect(() => standaloneBackend('ftp://example.com', SECRET)).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => standaloneBackend('not a url', SECRET)).toThrow(/not a URL/);
  });
});
