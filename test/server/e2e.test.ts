/** Two stores (the public API: openStore + webSocketTransport) converging through the server. */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Transport } from '../../src/core/sync-types.ts';
import { memoryStorage, openStore, webSocketTransport } from '../../src/index.ts';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';

let t: TestServer | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  await t?.stop();
  t = undefined;
});

/**
 * Delivers each incoming message one macrotask later: the same conversation with the server's
 * hello arriving after the client's session started rather than before.
 */
function deferDelivery(transport: Transport): Transport {
  return {
    kind: transport.kind,
    open: () => transport.open(),
    send: (text) => transport.send(text),
    close: (code, reason) => transport.close(code, reason),
    onClose: (listener) => transport.onClose(listener),
    onMessage: (listener) => transport.onMessage((text) => setTimeout(() => listener(text), 0)),
  };
}

async function storeOn(server: TestServer, name: string, sub: string, defer: boolean) {
  const store = await openStore({ name, storage: memoryStorage() });
  closers.push(() => store.close());
  const transport = webSocketTransport(server.server.url, {
    token: server.token({ sub }),
    // ws's class is structurally a browser WebSocket for what the transport uses.
    WebSocket: WebSocket as never,
  });
  store.sync.connect(defer ? deferDelivery(transport) : transport);
  return store;
}

async function converge(defer: boolean): Promise<void> {
  t = await startTestServer();
  const a = await storeOn(t, 'a', 'alice', defer);
  const b = await storeOn(t, 'b', 'bob', defer);
  await a.append('todo-1', [
    { type: 'added', data: { title: 'milk' } },
    { type: 'done', data: null },
  ]);
  await b.append('todo-2', {
    type: 'added',
    data: { title: '__proto__', tags: JSON.parse('{"__proto__":1}') },
  });
  await waitFor(async () => (await a.read()).length === 3 && (await b.read()).length === 3, 15_000);
  const ids = async (s: typeof a) => (await s.read()).map((e) => e.id);
  expect(await ids(a)).toEqual(await ids(b));
  await waitFor(() => a.sync.status().pending === 0 && b.sync.status().pending === 0, 15_000);
  expect(a.sync.status().lastError).toBeUndefined();
}

describe('stores through the server', () => {
  it('converges two stores that appended offline (server hello delivered a macrotask late)', () =>
    converge(true));

  // The server says hello as soon as it accepts, often before the client's open() resolved:
  // the controller holds such early messages for the session.
  it('converges two stores that appended offline, over the plain transport', () => converge(false));
});
