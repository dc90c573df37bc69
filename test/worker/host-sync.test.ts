/**
 * worker/host.ts: serveStore's `sync` with a token function. The leader's worker calls it on
 * every (re)connect, so an expired token is replaced. In Node, on a memory storage, against a
 * real sync server on 127.0.0.1 (no Web Locks in Node 20: the host leads at once).
 */

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createToken } from '../../src/server/auth.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { StoreHost } from '../../worker/host.ts';
import { SECRET, startTestServer, type TestServer, waitFor } from '../server/helpers.ts';

const scope = globalThis as { WebSocket?: unknown };
const nativeWebSocket = scope.WebSocket;
let server: TestServer | undefined;

afterEach(async () => {
  scope.WebSocket = nativeWebSocket;
  await server?.stop();
  server = undefined;
});

describe("serveStore's sync with a token function (worker/host.ts)", () => {
  it('calls it on every connection attempt: an expired token is replaced by a fresh one', async () => {
    // A worker has a global WebSocket; Node 20 has none.
    scope.WebSocket = WebSocket;
    const t = await startTestServer();
    server = t;
    let calls = 0;
    const token = async () => {
      calls += 1;
      if (calls === 1) {
        const old = Date.now() - 3_600_000;
        return createToken(
          SECRET,
          { space: 'space-a', sub: 'alice', scope: ['read', 'write'], expiresInSeconds: 60 },
          old,
        );
      }
      return t.token();
    };
    const host = new StoreHost(
      {
        name: 'host-sync',
        storage: memoryStorage(),
        pollIntervalMs: 0,
        sync: { url: t.server.url, token },
      },
      'dedicated',
    );
    const store = await host.acquire();
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'from the worker' } });
    await waitFor(() => {
      const s = host.status().sync;
      return s.state === 'idle' && s.pending === 0;
    }, 15_000);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(t.logs).toContainEqual(
      expect.objectContaining({ event: 'auth_failure', reason: 'expired' }),
    );
    await host.release();
  });

  it('takes a list of servers and syncs through a live one when another is down (failover)', async () => {
    scope.WebSocket = WebSocket;
    const t = await startTestServer();
    server = t;
    const host = new StoreHost(
      {
        name: 'host-sync-list',
        storage: memoryStorage(),
        pollIntervalMs: 0,
        // Whichever the shuffled order starts with, the dead one is left for the next.
        sync: { url: ['ws://127.0.0.1:1', t.server.url], token: t.token() },
      },
      'dedicated',
    );
    const store = await host.acquire();
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'through the list' } });
    await waitFor(() => {
      const s = host.status().sync;
      return s.state === 'idle' && s.pending === 0;
    }, 15_000);
    await host.release();
  });
});
