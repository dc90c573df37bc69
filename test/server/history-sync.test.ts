/**
 * History on demand over the wire (protocol.ts invariant 9; src/sync/history-serve.ts,
 * history-client.ts): a store pages a real server's history (SQLite, blocks and rows) by cursor
 * through its sync controller; offline, against a server without history, and against a lying
 * server, a read rejects with a coded error and stores nothing.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { memoryStorage, openStore, webSocketTransport } from '../../src/index.ts';
import { createSyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import { decodeEventBatch } from '../../src/sync/event-codec.ts';
import { encodeMessage } from '../../src/sync/messages.ts';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { ProtocolClient, SECRET, spaceToken, tempDir, waitFor } from './helpers.ts';
import { history, historyHarness, pageAll } from './history-helpers.ts';
import { modelRead } from './storage-conformance-history.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const { serve, storeWith } = historyHarness(cleanups);

/** A ws:// URL on 127.0.0.1 whose port was just free: connecting to it is refused. */
async function closedPortUrl(): Promise<string> {
  const probe = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => probe.once('listening', () => resolve()));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `ws://127.0.0.1:${port}`;
}

function sqliteServerStorage(): ServerStorage {
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup());
  // Blocks below, a tail of 100 rows: pages cross the boundary.
  return sqliteStorage(`${tmp.dir}/server.sqlite`, {
    compaction: { tailEvents: 100, idleMs: 60_000, maxDelayMs: 60_000 },
  });
}

describe('history on demand', () => {
  it("pages the server's history by cursor, forward, reversed and by stream, past the server's batch size", async () => {
    const events = history();
    const server = await serve(sqliteServerStorage(), events);
    const { history: source } = await storeWith(server.url);
    const read = (q: CursorQuery) => source.read(q);
    // 100 a page where the server sends at most 64 a message: each read is filled to its limit.
    expect(await read({ limit: 100 })).toHaveLength(100);
    expect(await pageAll(read, { limit: 100 })).toEqual(modelRead(events, { limit: 10_000 }));
    expect(await pageAll(read, { limit: 37, reverse: true })).toEqual(
      modelRead(events, { limit: 10_000, reverse: true }),
    );
    expect(await pageAll(read, { stream: 'card-1', limit: 25 })).toEqual(
      modelRead(events, { stream: 'card-1', limit: 10_000 }),
    );
  });

  it('rejects with HISTORY_OFFLINE when no server is connected', async () => {
    const { history: source } = await storeWith(undefined);
    await expect(source.read({ limit: 10 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
      message: expect.stringContaining('older history is on the server'),
    });
  });

  it("waits for an opening connection's hello, and fails at once when it cannot open (history-client.ts 4)", async () => {
    const events = history();
    const server = await serve(sqliteServerStorage(), events);
    // A long timeout: a read that waited for it would outlast the test's own.
    const { store, history: source } = await storeWith(undefined, { historyTimeoutMs: 60_000 });
    store.sync.connect(
      webSocketTransport(server.url, {
        token: spaceToken('space-a'),
        WebSocket: WebSocket as never,
      }),
    );
    // Asked at once, before the connection opened: answered once the server said hello.
    expect(await source.read({ limit: 10 })).toHaveLength(10);
    // A link to a port nobody listens on: its attempt fails, the read with it, at once.
    const dead = await storeWith(undefined, { historyTimeoutMs: 60_000 });
    dead.store.sync.connect(
      webSocketTransport(await closedPortUrl(), {
        token: spaceToken('space-a'),
        WebSocket: WebSocket as never,
      }),
    );
    await expect(dead.history.read({ limit: 10 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
    });
    // Waiting out its backoff, it is offline: a read fails at once too.
    await expect(dead.history.read({ limit: 10 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
    });
  }, 20_000);

  it('rejects with HISTORY_OFFLINE, saying why, against a server whose storage serves no history', async () => {
    const real = sqliteServerStorage();
    // A storage without readByCursor (an older one): its spaces lack the method.
    const storage: ServerStorage = Object.create(real, {
      openSpace: {
        value: async (name: string): Promise<SpaceLog> => {
          const space = await real.openSpace(name);
          return new Proxy(space, {
            get: (target, key) =>
              key === 'readByCursor' ? undefined : Reflect.get(target, key, target),
          });
        },
      },
    });
    const server = await serve(storage, history());
    const { history: source } = await storeWith(server.url);
    await expect(source.read({ limit: 10 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
      message: expect.stringContaining('does not serve it'),
    });
    // A client that asks anyway gets a coded, non-fatal answer with its req.
    const client = await ProtocolClient.connect(server.url, spaceToken('space-a'));
    cleanups.push(() => client.close());
    expect(client.serverHello.history).toBeUndefined();
    client.raw.send({ type: 'history', req: 7, limit: 10 });
    expect(await client.raw.nextOfType('error')).toMatchObject({
      code: 'HISTORY_UNAVAILABLE',
      req: 7,
    });
    // Not fatal: the session goes on and answers a ping.
    client.raw.send({ type: 'ping', time: 1 });
    await client.raw.nextOfType('pong');
  });

  it('serves history only to a token with the read scope (FORBIDDEN, coded, not fatal)', async () => {
    const server = await serve(sqliteServerStorage(), history());
    const { createToken } = await import('../../src/server/auth.ts');
    const token = createToken(SECRET, {
      space: 'space-a',
      sub: 'w',
      scope: ['write'],
      expiresInSeconds: 600,
    });
    const client = await ProtocolClient.connect(server.url, token);
    cleanups.push(() => client.close());
    expect(client.serverHello.history).toBe(true);
    client.raw.send({ type: 'history', req: 1, limit: 10 });
    expect(await client.raw.nextOfType('error')).toMatchObject({ code: 'FORBIDDEN', req: 1 });
    // A reader's token is answered with a page.
    const reader = await ProtocolClient.connect(server.url, spaceToken('space-a'));
    cleanups.push(() => reader.close());
    reader.raw.send({ type: 'history', req: 2, limit: 10 });
    const answer = await reader.raw.nextOfType('history-page');
    expect(answer).toMatchObject({ req: 2, more: true });
    expect(decodeEventBatch(answer.events)).toHaveLength(10);
  });
});

/** A server that says it serves history and answers each request with `answer`'s text. */
async function lyingServer(answer: (req: number, asked: Record<string, unknown>) => string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  wss.on('connection', (ws) => {
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        replica: 'liarliarliarliar',
        epoch: 'liar',
        head: 0,
        seq: 0,
        time: Date.now(),
        server: true,
        history: true,
      }),
    );
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      if (m.type === 'history') ws.send(answer(m.req as number, m));
    });
  });
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
}

describe('a server that lies about history', () => {
  const events = history()
    .slice(0, 20)
    .sort((a, b) => (a.cursor < b.cursor ? -1 : 1));
  const page = (req: number, sent: StoredEventRecord[], more = false) =>
    encodeMessage({ type: 'history-page', req, events: sent, more });

  it('refuses a page with events outside the asked range (PROTOCOL), storing none of them', async () => {
    const url = await lyingServer((req) => page(req, events.slice(0, 5)));
    const { store, history: source } = await storeWith(url);
    await expect(source.read({ after: events[10]!.cursor, limit: 10 })).rejects.toMatchObject({
      code: 'PROTOCOL',
      message: expect.stringContaining('outside the asked range'),
    });
    expect(await store.read({ limit: 10 })).toEqual([]);
  });

  it('refuses a page out of the total order, of another stream, or longer than asked (PROTOCOL)', async () => {
    const answers = [
      (req: number) => page(req, [events[3]!, events[1]!]),
      (req: number) => page(req, [{ ...events[0]!, stream: 'other' }]),
      (req: number) => page(req, events.slice(0, 6)),
      (req: number) => page(req, [], true),
    ];
    let turn = 0;
    const url = await lyingServer((req) => answers[turn++]!(req));
    const { history: source } = await storeWith(url);
    for (const query of [
      { limit: 10 },
      { stream: events[0]!.stream, limit: 10 },
      { limit: 5 },
      { limit: 5 },
    ]) {
      await expect(source.read(query)).rejects.toMatchObject({ code: 'PROTOCOL' });
    }
  });

  it('refuses a malformed page with a coded error and keeps the session', async () => {
    const url = await lyingServer((req) =>
      JSON.stringify({ type: 'history-page', req, more: false, events: { data: [1] } }),
    );
    const { store, history: source } = await storeWith(url);
    await expect(source.read({ limit: 10 })).rejects.toMatchObject({ code: 'PROTOCOL' });
    expect(store.sync.status().connections?.[0]?.state).not.toBe('connecting');
  });

  it('rejects with HISTORY_OFFLINE when the server does not answer in time', async () => {
    const url = await lyingServer(() => JSON.stringify({ type: 'ping', time: Date.now() }));
    const { history: source } = await storeWith(url, { historyTimeoutMs: 200 });
    await expect(source.read({ limit: 10 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
      message: expect.stringContaining('did not answer'),
    });
  });
});

describe('signatures on history pages', () => {
  /** A writer's five events as a real server (signatures required) stores them, and its key. */
  async function signedHistory() {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const storage = sqliteStorage(`${tmp.dir}/server.sqlite`);
    const server = await createSyncServer({ storage, auth: { secret: SECRET }, log: () => {} });
    cleanups.push(() => server.close());
    const writer = await openStore({ name: 'writer', storage: memoryStorage() });
    cleanups.push(() => writer.close());
    writer.sync.connect(
      webSocketTransport(server.url, {
        token: spaceToken('space-a', 'writer'),
        WebSocket: WebSocket as never,
      }),
    );
    for (let i = 0; i < 5; i++) {
      await writer.append('card-1', { type: 'renamed', data: { title: `title ${i}` } });
    }
    await waitFor(() => writer.sync.status().pending === 0);
    const space = await storage.openSpace('space-a');
    const events = (await space.readByPos(0, 10)).map((r) => r.event);
    return { server, events, replica: events[0]!.replica };
  }

  it('verifies an honest server’s page with the keys it names', async () => {
    const { server, events } = await signedHistory();
    const { history: source } = await storeWith(server.url, { signing: true });
    const read = await source.read({ limit: 10 });
    expect(read.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(read.every((e) => typeof e.meta?.$sig === 'string')).toBe(true);
  });

  it('refuses a page whose signed event was altered or forged (TAMPERED), storing none of it', async () => {
    const { events, replica } = await signedHistory();
    const key = events.find((e) => typeof e.meta?.$key === 'string')?.meta?.$key as string;
    const altered = events.map((e, i) => (i === 2 ? { ...e, data: { title: 'forged' } } : e));
    const url = await lyingServer((req) =>
      encodeMessage({
        type: 'history-page',
        req,
        events: altered,
        more: false,
        keys: { [replica]: key },
      }),
    );
    const { store, history: source } = await storeWith(url, { signing: true });
    await expect(source.read({ limit: 10 })).rejects.toMatchObject({
      code: 'TAMPERED',
      details: { eventId: events[2]!.id },
    });
    expect(await store.read({ limit: 10 })).toEqual([]);
  });
});
