/**
 * Binary frames through a real sync server (sync/binary-frame.ts, protocol invariant 11): a
 * client that offers them and one that does not share a space and converge, each getting what
 * it offered; a server set to text only keeps a binary client on text; a malformed frame is a
 * coded error and stores nothing (connection.ts invariant 8).
 */

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type EventStore,
  generateEncryptionKey,
  type LooseEvents,
  memoryStorage,
  openStore,
  type Transport,
  webSocketTransport,
} from '../../src/index.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { frameOf } from '../../src/sync/binary-frame.ts';
import { encodeFrame } from '../../src/sync/messages.ts';
import { makeEvents } from './events.ts';
import { ProtocolClient, startTestServer, type TestServer, tempDir, waitFor } from './helpers.ts';
import { historyHarness } from './history-helpers.ts';

type Events = LooseEvents<{ title: string }>;

let t: TestServer | undefined;
const stores: EventStore<Events>[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  await t?.stop();
  t = undefined;
});

/** A WebSocket transport, and how many binary frames came in on it. */
function socket(url: string, token: string) {
  const transport = webSocketTransport(url, { token, WebSocket: WebSocket as never });
  const seen = { binaryIn: 0 };
  transport.onBinary?.(() => {
    seen.binaryIn += 1;
  });
  return { transport, seen };
}

/** The transport without its binary members: a client that offers text only. */
function textOnly(inner: Transport): Transport {
  return {
    kind: inner.kind,
    open: () => inner.open(),
    send: (text) => inner.send(text),
    onMessage: (listener) => inner.onMessage(listener),
    onClose: (listener) => inner.onClose(listener),
    close: (code, reason) => inner.close(code, reason),
    bufferedBytes: () => inner.bufferedBytes?.() ?? 0,
  };
}

async function store(name: string, key: Uint8Array): Promise<EventStore<Events>> {
  const s = await openStore<Events>({ name, storage: memoryStorage(), encryption: { key } });
  stores.push(s);
  return s;
}

async function appendCards(s: EventStore<Events>, who: string, count: number) {
  for (let i = 0; i < count; i++) {
    await s.append(`card-${who}-${i % 3}`, { type: 'added', data: { title: `${who} ${i}` } });
  }
}

describe('binary frames through a sync server', () => {
  it('serves a binary client and a text-only client in one space: both converge', async () => {
    t = await startTestServer({ requireSignatures: true });
    const key = generateEncryptionKey();
    const [alice, bob] = [await store('alice', key), await store('bob', key)];
    await appendCards(alice, 'alice', 40);
    await appendCards(bob, 'bob', 40);
    const a = socket(t.server.url, t.token({ sub: 'alice' }));
    const b = socket(t.server.url, t.token({ sub: 'bob' }));
    alice.sync.connect(a.transport);
    bob.sync.connect(textOnly(b.transport));
    await waitFor(
      async () => (await alice.read()).length === 80 && (await bob.read()).length === 80,
    );
    expect(await alice.read()).toEqual(await bob.read());
    expect((await bob.read()).filter((e) => e.data.title === 'alice 39')).toHaveLength(1);
    // Alice got Bob's signed, sealed events as binary frames; Bob got everything as text.
    expect(a.seen.binaryIn).toBeGreaterThan(0);
    expect(b.seen.binaryIn).toBe(0);
    // Live: one more each way, nothing refused or tampered.
    await alice.append('card-live', { type: 'added', data: { title: 'live from alice' } });
    await bob.append('card-live', { type: 'added', data: { title: 'live from bob' } });
    await waitFor(
      async () => (await alice.read()).length === 82 && (await bob.read()).length === 82,
    );
    for (const s of [alice, bob]) {
      expect(s.sync.status().tampered).toBeUndefined();
      expect(s.sync.status().refused).toBeUndefined();
    }
  });

  it('keeps a binary client on text with a server set to text only', async () => {
    t = await startTestServer({ requireSignatures: true, binaryFrames: false });
    const key = generateEncryptionKey();
    const [alice, bob] = [await store('alice', key), await store('bob', key)];
    await appendCards(alice, 'alice', 20);
    await appendCards(bob, 'bob', 20);
    const a = socket(t.server.url, t.token({ sub: 'alice' }));
    const b = socket(t.server.url, t.token({ sub: 'bob' }));
    alice.sync.connect(a.transport);
    bob.sync.connect(b.transport);
    await waitFor(
      async () => (await alice.read()).length === 40 && (await bob.read()).length === 40,
    );
    expect(await alice.read()).toEqual(await bob.read());
    expect(a.seen.binaryIn + b.seen.binaryIn).toBe(0);
    expect(t.logs.filter((l) => l.level === 'error')).toEqual([]);
  });
});

describe('binary frames a client sends the server', () => {
  const binaryHello = { hello: { binary: true } };
  /** Sealed-looking events (the server reads no sealed data): something to carry as bytes. */
  const sealed = (count: number, replica: string) =>
    makeEvents(count, { replica, meta: { $sealed: 'k1' }, data: 'AAECAwQFBgcICQ' });

  it('stores and acks a well-formed frame', async () => {
    t = await startTestServer();
    const client = await ProtocolClient.connect(t.server.url, t.token(), binaryHello);
    expect(client.serverHello.binary).toBe(true);
    const events = sealed(3, client.replica);
    const frame = encodeFrame({ type: 'events', from: 0, to: 3, toId: events[2]!.id, events })!;
    client.raw.ws.send(frame, { binary: true });
    const answer = await client.raw.next((m) => m.type === 'ack' || m.type === 'error');
    expect(answer).toMatchObject({ type: 'ack', to: 3 });
    client.close();
  });

  it.each<[string, (frame: Uint8Array) => Uint8Array, RegExp]>([
    ['truncated', (f) => f.subarray(0, f.length - 3), /do not end where the frame does/],
    [
      'with a JSON length past its end',
      (f) => {
        const bad = f.slice();
        new DataView(bad.buffer).setUint32(1, 1 << 30, true);
        return bad;
      },
      /runs past its end/,
    ],
    [
      'with a section of the wrong size',
      (f) => {
        const length = new DataView(f.buffer, f.byteOffset).getUint32(1, true);
        const json = Buffer.from(f.subarray(5, 5 + length)).toString('utf8');
        return frameOf(json.replace('"bin":[0,0,30]', '"bin":[3,0,27]'), f.subarray(5 + length));
      },
      /not 64 bytes a signature/,
    ],
  ])('refuses a frame %s with PROTOCOL and stores nothing', async (_name, spoil, reason) => {
    t = await startTestServer();
    const client = await ProtocolClient.connect(t.server.url, t.token(), binaryHello);
    const events = sealed(3, client.replica);
    const frame = encodeFrame({ type: 'events', from: 0, to: 3, toId: events[2]!.id, events })!;
    client.raw.ws.send(spoil(frame), { binary: true });
    const error = await client.raw.nextOfType('error');
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(reason);
    expect([1002, 1008]).toContain((await client.raw.closed).code);
    const reader = await ProtocolClient.connect(t.server.url, t.token({ sub: 'reader' }));
    expect(await reader.pullAll()).toEqual([]);
    reader.close();
  });

  it('refuses a binary frame on a server set to text only, whose hello did not offer them', async () => {
    t = await startTestServer({ binaryFrames: false });
    const client = await ProtocolClient.connect(t.server.url, t.token(), binaryHello);
    expect(client.serverHello.binary).toBeUndefined();
    const events = sealed(2, client.replica);
    const frame = encodeFrame({ type: 'events', from: 0, to: 2, toId: events[1]!.id, events })!;
    client.raw.ws.send(frame, { binary: true });
    const error = await client.raw.nextOfType('error');
    expect(error).toMatchObject({ code: 'PROTOCOL', message: expect.stringMatching(/binary/) });
    expect((await client.raw.closed).code).toBe(1008);
  });
});

describe('history pages as binary frames', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const { serve, storeWith } = historyHarness(cleanups);

  it('pages sealed events as binary frames, each the same as stored', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const seeded = makeEvents(150, {
      replica: 'replicaaaaaaaaaa',
      meta: { $sealed: 'k1' },
      data: Buffer.alloc(40, 9).toString('base64url'),
    });
    const server = await serve(sqliteStorage(join(tmp.dir, 'server.sqlite')), seeded);
    const seen = { binaryIn: 0 };
    const { store, history } = await storeWith(server.url, {
      watch: (transport) =>
        transport.onBinary?.(() => {
          seen.binaryIn += 1;
        }),
    });
    // Past the catch-up (its batches are binary frames too): only the page's frame counts.
    await waitFor(() => store.sync.status().state === 'idle', 10_000);
    const binaryBefore = seen.binaryIn;
    const page = await history.read({ limit: 50 });
    expect(page.map(({ id, data, meta }) => ({ id, data, meta }))).toEqual(
      seeded.slice(0, 50).map(({ id, data, meta }) => ({ id, data, meta })),
    );
    expect(seen.binaryIn).toBeGreaterThan(binaryBefore);
  });
});
