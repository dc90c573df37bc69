/** Every named server limit, exceeded, with its code (RELIABILITY 23, 24, 29, 30). */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_LIMITS, resolveLimits } from '../../src/server/limits.ts';
import { makeEvent, makeEvents } from './events.ts';
import {
  httpGet,
  ProtocolClient,
  RawClient,
  startTestServer,
  type TestServer,
  waitFor,
} from './helpers.ts';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

async function headPos(server: TestServer, space = 'space-a'): Promise<number> {
  return (await server.storage.openSpace(space)).headPos();
}

/** Sends a raw HTTP upgrade request and returns the status line (or 'closed'). */
function rawUpgrade(port: number, extraHeaders: string): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(data.split('\r\n')[0] || 'closed'));
    socket.write(
      'GET /?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        `${extraHeaders}\r\n`,
    );
  });
}

describe('limits', () => {
  it('has a positive default for every limit and refuses a bad override', () => {
    for (const value of Object.values(DEFAULT_SERVER_LIMITS)) expect(value).toBeGreaterThan(0);
    expect(DEFAULT_SERVER_LIMITS.maxMessageBytes).toBe(1024 * 1024);
    expect(() => resolveLimits({ maxBatchEvents: 0 })).toThrow(TypeError);
  });

  it('closes a connection sending a frame over maxMessageBytes with 1009; others keep working (case 23)', async () => {
    t = await startTestServer({ limits: { maxMessageBytes: 64 * 1024 } });
    const other = await ProtocolClient.connect(t.server.url, t.token({ sub: 'bob' }));
    const big = await ProtocolClient.connect(t.server.url, t.token());
    big.raw.send({ type: 'ping', time: 1, pad: 'x'.repeat(100 * 1024) });
    expect((await big.raw.closed).code).toBe(1009);
    expect((await other.push(makeEvents(1, { replica: other.replica }))).type).toBe('ack');
    other.close();
  });

  it('refuses a batch over maxBatchEvents with LIMIT_EXCEEDED and stores nothing', async () => {
    t = await startTestServer({ limits: { maxBatchEvents: 5 } });
    const client = await ProtocolClient.connect(t.server.url, t.token());
    const answer = await client.push(makeEvents(6, { replica: client.replica }));
    expect(answer).toMatchObject({ type: 'error', code: 'LIMIT_EXCEEDED' });
    await client.raw.closed;
    expect(await headPos(t)).toBe(0);
  });

  it('refuses an event over maxEventBytes with LIMIT_EXCEEDED and stores nothing of its batch', async () => {
    t = await startTestServer({ limits: { maxEventBytes: 1024 } });
    const client = await ProtocolClient.connect(t.server.url, t.token());
    const small = makeEvent({ replica: client.replica, seq: 1 });
    const large = makeEvent({ replica: client.replica, seq: 2, data: { text: 'y'.repeat(2000) } });
    const answer = await client.push([small, large]);
    expect(answer).toMatchObject({ type: 'error', code: 'LIMIT_EXCEEDED' });
    expect(await headPos(t)).toBe(0);
  });

  it('refuses a message nested deeper than maxMessageDepth with PROTOCOL and close 1008 (case 27)', async () => {
    t = await startTestServer();
    const client = await RawClient.connect(t.server.url, { token: t.token() });
    client.send(`{"type":"ping","time":1,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expect(await client.nextOfType('error')).toMatchObject({ code: 'PROTOCOL' });
    expect((await client.closed).code).toBe(1008);
  });

  it('refuses connections past maxConnectionsPerSpace with LIMIT_EXCEEDED and 1013; other spaces are unaffected', async () => {
    t = await startTestServer({ limits: { maxConnectionsPerSpace: 2 } });
    const one = await RawClient.connect(t.server.url, { token: t.token() });
    const two = await RawClient.connect(t.server.url, { token: t.token() });
    const three = await RawClient.connect(t.server.url, { token: t.token() });
    expect(await three.nextOfType('error')).toMatchObject({ code: 'LIMIT_EXCEEDED' });
    expect((await three.closed).code).toBe(1013);
    const elsewhere = await ProtocolClient.connect(t.server.url, t.token({ space: 'space-b' }));
    expect(elsewhere.serverHello.type).toBe('hello');
    // A slot frees when a connection closes.
    one.close();
    await one.closed;
    await waitFor(() => t!.server.connectionCount() === 2);
    const four = await ProtocolClient.connect(t.server.url, t.token());
    expect(four.serverHello.type).toBe('hello');
    for (const c of [two, elsewhere.raw, four.raw]) c.close();
  });

  it('refuses upgrades past maxConnections with 503', async () => {
    t = await startTestServer({ limits: { maxConnections: 1 } });
    const one = await RawClient.connect(t.server.url, { token: t.token() });
    await expect(
      RawClient.connect(t.server.url, { token: t.token({ space: 'space-b' }) }),
    ).rejects.toMatchObject({
      status: 503,
    });
    one.close();
  });

  it('rate-limits a flooding client with RATE_LIMITED and close 4029; others keep being served (case 30)', async () => {
    t = await startTestServer({ limits: { maxMessagesPerSecond: 20, messageBurst: 40 } });
    const calm = await ProtocolClient.connect(t.server.url, t.token({ sub: 'bob' }));
    const flood = await ProtocolClient.connect(t.server.url, t.token());
    for (let i = 0; i < 500; i++) flood.raw.send({ type: 'ping', time: i });
    expect(await flood.raw.nextOfType('error')).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await flood.raw.closed).code).toBe(4029);
    calm.raw.send({ type: 'ping', time: 7 });
    expect(await calm.raw.nextOfType('pong')).toMatchObject({ type: 'pong' });
    calm.close();
  });

  it('refuses a huge Sec-WebSocket-Protocol header with 431 and stays up (case 24)', async () => {
    t = await startTestServer();
    const status = await rawUpgrade(
      t.server.port,
      `Sec-WebSocket-Protocol: ${'p,'.repeat(40_000)}p\r\n`,
    );
    expect(status).toMatch(/^HTTP\/1\.1 431/);
    expect((await httpGet(t.server, '/healthz')).status).toBe(200);
  });

  it('refuses an upgrade with thousands of headers, and one over maxHeadersCount, with 431 (case 24)', async () => {
    t = await startTestServer({ limits: { maxHeadersCount: 50 } });
    let many = '';
    for (let i = 0; i < 3000; i++) many += `x-h${i}: v\r\n`;
    expect(await rawUpgrade(t.server.port, many)).toMatch(/^HTTP\/1\.1 431/);
    let some = '';
    for (let i = 0; i < 60; i++) some += `x-h${i}: v\r\n`;
    expect(await rawUpgrade(t.server.port, some)).toMatch(/^HTTP\/1\.1 431/);
    expect((await httpGet(t.server, '/healthz')).status).toBe(200);
  });

  it('closes a client that does not read once its send buffer passes maxBufferedBytes (case 29)', async () => {
    t = await startTestServer({
      limits: {
        maxBufferedBytes: 256 * 1024,
        maxInFlightBatches: 10_000,
        maxInFlightBytes: 1024 * 1024 * 1024,
        closeGraceMs: 200,
      },
    });
    const space = await t.storage.openSpace('space-a');
    const filler = 'z'.repeat(10_000);
    for (let b = 0; b < 10; b++) {
      await space.ingest(
        makeEvents(300, { replica: 'filler', firstSeq: b * 300 + 1, data: { filler } }),
      );
    }
    const slow = await ProtocolClient.connect(t.server.url, t.token());
    (slow.raw.ws as unknown as { _socket: Socket })._socket.pause();
    slow.raw.send({ type: 'pull' });
    await waitFor(() => t!.logs.some((l) => l.event === 'slow_consumer'), 10_000);
    await waitFor(() => t!.server.connectionCount() === 0, 10_000);
    expect(t.server.metrics.render()).toMatch(/chronicle_errors_total\{code="LIMIT_EXCEEDED"\} 1/);
    slow.raw.ws.terminate();
  });

  it('terminates a half-open socket that stops answering pings (case 29)', async () => {
    t = await startTestServer({ limits: { heartbeatIntervalMs: 50 } });
    const healthy = await RawClient.connect(t.server.url, { token: t.token({ sub: 'bob' }) });
    const dead = await RawClient.connect(t.server.url, { token: t.token() });
    (dead.ws as unknown as { _socket: Socket })._socket.pause();
    await waitFor(() => t!.logs.some((l) => l.event === 'heartbeat_timeout'), 5000);
    await waitFor(() => t!.server.connectionCount() === 1, 5000);
    expect(healthy.ws.readyState).toBe(healthy.ws.OPEN);
    healthy.close();
    dead.ws.terminate();
  });
});
