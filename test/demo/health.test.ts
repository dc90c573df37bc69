/** demo/server/app.ts handleHealth: a sync server that does not answer is a 503, said in JSON. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { handleHealth, type SyncBackend } from '../../demo/server/app.ts';

describe('the demo origin’s /healthz', () => {
  it('is 503 with a reason when the sync server does not answer', async () => {
    // A port nothing listens on: bind one, then close it.
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, '127.0.0.1', () => done()));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((done) => probe.close(() => done()));
    const backend = { target: { host: '127.0.0.1', port: deadPort, tls: false } } as SyncBackend;
    const http: Server = createServer((req, res) => {
      if (!handleHealth(backend, req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((done) => http.listen(0, '127.0.0.1', () => done()));
    try {
      const { port } = http.address() as AddressInfo;
      const answer = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(answer.status).toBe(503);
      expect(await answer.json()).toEqual({
        status: 'unavailable',
        reason: 'the sync server did not answer',
      });
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      await new Promise<void>((done) => http.close(() => done()));
    }
  });
});
