/** Garbage in, the server survives (RELIABILITY 27, 28); operations endpoints. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { toWire } from '../sync/wire.ts';
import { makeEvent, makeEvents } from './events.ts';
import { httpGet, ProtocolClient, RawClient, startTestServer, type TestServer } from './helpers.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.stop();
});

/** Connects, sends `payload` after the server's hello, returns the error code and close code. */
async function sendGarbage(payload: string | Buffer, opts: { hello?: boolean } = {}) {
  const client = opts.hello
    ? (await ProtocolClient.connect(t.server.url, t.token())).raw
    : await RawClient.connect(t.server.url, { token: t.token() });
  if (!opts.hello) await client.nextOfType('hello');
  client.ws.send(payload, { binary: Buffer.isBuffer(payload) });
  const closed = await client.closed;
  const error = client.messages.find((m) => m.type === 'error');
  return { error: error?.code, close: closed.code };
}

async function stillServing(): Promise<void> {
  expect((await httpGet(t.server, '/healthz')).status).toBe(200);
  const client = await ProtocolClient.connect(t.server.url, t.token({ sub: 'healthy' }));
  client.raw.send({ type: 'ping', time: 1 });
  expect((await client.raw.nextOfType('pong')).type).toBe('pong');
  client.close();
}

describe('garbage (case 27)', () => {
  const cases: [string, string][] = [
    ['invalid JSON', '{"type": "hello", '],
    ['truncated message', '{"type":"events","from":0,"to":1,"events":[{"id":"a"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['an array', '[{"type":"hello"}]'],
    ['an unknown type', '{"type":"drop-tables"}'],
    ['a type that is not a string', '{"type":{"$ne":null}}'],
    [
      'a hello with wrongly typed fields',
      `{"type":"hello","protocol":${PROTOCOL_VERSION},"replica":"abc","epoch":5,"head":"0","seq":-1,"time":"now"}`,
    ],
    ['an empty message', ''],
  ];

  it.each(cases)('answers %s with a PROTOCOL error and a close', async (_name, payload) => {
    const result = await sendGarbage(payload);
    expect(result.error).toBe('PROTOCOL');
    expect([1002, 1007, 1008]).toContain(result.close);
    await stillServing();
  });

  it('refuses a binary frame with PROTOCOL and close 1008', async () => {
    const result = await sendGarbage(Buffer.from([0, 1, 2, 255]));
    expect(result).toEqual({ error: 'PROTOCOL', close: 1008 });
    await stillServing();
  });

  it('closes on invalid UTF-8 in a text frame with 1007', async () => {
    const client = await RawClient.connect(t.server.url, { token: t.token() });
    await client.nextOfType('hello');
    // ws refuses to send invalid UTF-8 as text; write the frame bytes ourselves (masked, FIN, text).
    const payload = Buffer.from([0xc3, 0x28]);
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    const socket = (client.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    expect((await client.closed).code).toBe(1007);
    await stillServing();
  });

  it('refuses wrongly typed events (bad hlc, cursor, seq) with VALIDATION and stores nothing', async () => {
    const client = await ProtocolClient.connect(t.server.url, t.token({ space: 'garbage' }));
    const event = { ...makeEvent({ replica: client.replica }), seq: 'one' };
    const answer = await client.push([event as never]);
    expect(answer).toMatchObject({ type: 'error' });
    expect(['VALIDATION', 'PROTOCOL']).toContain(answer.code);
    expect(await (await t.storage.openSpace('garbage')).headPos()).toBe(0);
    await stillServing();
  });

  it('refuses events claiming positions the batch does not cover (a gap) with GAP', async () => {
    const client = await ProtocolClient.connect(t.server.url, t.token({ space: 'garbage-gap' }));
    const events = makeEvents(1, { replica: client.replica });
    client.raw.send({ type: 'events', from: 5, to: 6, toId: events[0]!.id, events });
    expect(await client.raw.nextOfType('error')).toMatchObject({ code: 'GAP' });
    expect(await (await t.storage.openSpace('garbage-gap')).headPos()).toBe(0);
  });
});

describe('prototype pollution (case 28)', () => {
  it('stores __proto__ and constructor keys in data and meta as plain data', async () => {
    const writer = await ProtocolClient.connect(t.server.url, t.token({ space: 'proto' }));
    const base = makeEvent({ replica: writer.replica, seq: 1 });
    // Written as raw text: JSON.stringify of an object literal would drop a real __proto__ key.
    const text = toWire({
      type: 'events',
      from: 0,
      to: 1,
      toId: base.id,
      events: [{ ...base, data: null, meta: { marker: true } }],
    })
      .replace(
        '"data":[null]',
        '"data":[{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}]',
      )
      .replace('{"marker":true}', '{"__proto__":{"isAdmin":true}}');
    expect(text).toContain('"__proto__":{"isAdmin":true}');
    writer.raw.send(text);
    expect((await writer.raw.next((m) => m.type === 'ack' || m.type === 'error')).type).toBe('ack');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();

    const reader = await ProtocolClient.connect(
      t.server.url,
      t.token({ space: 'proto', sub: 'bob' }),
    );
    const [event] = await reader.pullAll();
    const data = event!.data as Record<string, unknown>;
    expect(Object.hasOwn(data, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(Object.hasOwn(event!.meta!, '__proto__')).toBe(true);
    writer.close();
    reader.close();
  });
});

describe('operations', () => {
  it('answers GET /healthz with 200 JSON', async () => {
    const res = await httpGet(t.server, '/healthz');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/application\/json/);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'ok' });
  });

  it('answers GET /metrics in Prometheus text with connections, events, bytes and errors by code', async () => {
    const client = await ProtocolClient.connect(t.server.url, t.token({ space: 'metrics' }));
    await client.push(makeEvents(3, { replica: client.replica }));
    const res = await httpGet(t.server, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/text\/plain/);
    expect(res.body).toMatch(/^# TYPE chronicle_connections gauge$/m);
    expect(res.body).toMatch(/^chronicle_connections [1-9]\d*$/m);
    expect(res.body).toMatch(/^chronicle_events_in_total [3-9]\d*$/m);
    expect(res.body).toMatch(/^chronicle_bytes_in_total [1-9]\d*$/m);
    expect(res.body).toMatch(/^chronicle_bytes_out_total [1-9]\d*$/m);
    expect(res.body).toMatch(/^chronicle_errors_total\{code="PROTOCOL"\} [1-9]\d*$/m);
    // No tenant appears in metrics (metrics.ts invariant 1).
    expect(res.body).not.toContain('metrics"');
    expect(res.body).not.toContain('alice');
    client.close();
  });

  it('answers anything else with 404', async () => {
    expect((await httpGet(t.server, '/nope')).status).toBe(404);
  });

  it('logs one structured line per connect and close, with the close code', async () => {
    const client = await ProtocolClient.connect(t.server.url, t.token({ space: 'logs' }));
    client.close();
    await client.raw.closed;
    await new Promise((r) => setTimeout(r, 50));
    const mine = t.logs.filter((l) => l.space === 'logs');
    expect(mine.map((l) => l.event)).toEqual(['connect', 'close']);
    expect(mine[1]).toMatchObject({ code: 1005, sub: 'alice' });
  });
});
