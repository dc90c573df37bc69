/**
 * permessage-deflate on the server's connections (server/wire-compression.ts): negotiated per
 * connection, so clients that offer it and clients that do not sync through one server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { defineProjection, memoryStorage, openStore, webSocketTransport } from '../../src/index.ts';
import { perMessageDeflateOf } from '../../src/server/wire-compression.ts';
import { RawClient, startTestServer, type TestServer, waitFor } from './helpers.ts';

let t: TestServer | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  await t?.stop();
  t = undefined;
});

/** ws's class, offering permessage-deflate or not, recording its sockets' TCP reads. */
function socketClass(offer: boolean, sockets: WebSocket[]) {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { perMessageDeflate: offer });
      sockets.push(this);
    }
  };
}

const bytesRead = (sockets: WebSocket[]) =>
  sockets.reduce(
    (n, s) => n + ((s as unknown as { _socket?: { bytesRead: number } })._socket?.bytesRead ?? 0),
    0,
  );

/**
 * How many events a store holds, folded as they arrive. Waiting on it rather than on `read()`
 * counts the catch-up's bytes alone: a store that trims (the retaining project) reads what it
 * trimmed back from the server's history, adding bytes that depend on how often it was asked.
 */
const received = defineProjection({
  name: 'received',
  version: 1,
  initial: () => 0,
  apply: (n: number) => n + 1,
});

async function storeThrough(server: TestServer, name: string, offer: boolean) {
  const sockets: WebSocket[] = [];
  const store = await openStore({ name, storage: memoryStorage(), projections: [received] });
  closers.push(() => store.close());
  store.sync.connect(
    webSocketTransport(server.server.url, {
      token: server.token({ sub: name }),
      WebSocket: socketClass(offer, sockets) as never,
    }),
  );
  return { store, sockets };
}

/** A writer's 400 repetitive events, then what a new reader's socket read to catch them up. */
async function catchUpBytes(wireCompression: boolean, offer: boolean) {
  t = await startTestServer({ wireCompression });
  const writer = await storeThrough(t, 'writer', true);
  for (let i = 0; i < 4; i++) {
    await writer.store.append(
      `board-${i}`,
      Array.from({ length: 100 }, (_, j) => ({
        type: 'CardAdded',
        data: { title: `card ${j} of the release checklist`, column: 'todo' },
      })),
    );
  }
  await waitFor(() => writer.store.sync.status().pending === 0, 15_000);
  const reader = await storeThrough(t, 'reader', offer);
  await waitFor(async () => (await reader.store.state(received)) === 400, 15_000);
  const extensions = reader.sockets.map((s) => s.extensions);
  const bytes = bytesRead(reader.sockets);
  for (const close of closers.splice(0)) await close();
  await t.stop();
  t = undefined;
  return { bytes, extensions };
}

describe('wire compression (server/wire-compression.ts)', () => {
  it('deflates the catch-up of a client that offers it, to well under the plain bytes', async () => {
    const plain = await catchUpBytes(false, true);
    const deflated = await catchUpBytes(true, true);
    expect(plain.extensions).toEqual(['']);
    expect(deflated.extensions[0]).toContain('permessage-deflate');
    expect(deflated.bytes).toBeLessThan(plain.bytes * 0.6);
  });

  it('keeps a plain connection for a client that does not offer it, which still syncs', async () => {
    const old = await catchUpBytes(true, false);
    expect(old.extensions).toEqual(['']);
    expect(old.bytes).toBeGreaterThan(0);
  });

  it('bounds a message by its inflated size: a small frame that inflates past maxMessageBytes closes with 1009 (invariant 3)', async () => {
    t = await startTestServer({ wireCompression: true, limits: { maxMessageBytes: 64 * 1024 } });
    const client = await RawClient.connect(t.server.url, { token: t.token() });
    expect(client.ws.extensions).toContain('permessage-deflate');
    client.send({ type: 'ping', time: 1, pad: 'x'.repeat(1024 * 1024) });
    expect((await client.closed).code).toBe(1009);
  });

  it('sends messages under the threshold plain and keeps no window between messages by default, and refuses settings zlib cannot take (invariants 1, 2)', () => {
    expect(perMessageDeflateOf(undefined)).toBe(false);
    expect(perMessageDeflateOf(true)).toMatchObject({
      threshold: 1024,
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
    });
    expect(perMessageDeflateOf({ level: 6, contextTakeover: true })).toMatchObject({
      zlibDeflateOptions: { level: 6 },
      serverNoContextTakeover: false,
    });
    expect(() => perMessageDeflateOf({ windowBits: 16 })).toThrow(TypeError);
    expect(() => perMessageDeflateOf({ level: 10 })).toThrow(TypeError);
    expect(() => perMessageDeflateOf({ threshold: -1 })).toThrow(TypeError);
  });
});
