/** Replicas converging through a real server, with the real session on both sides. */

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { makeEvents } from './events.ts';
import { ProtocolClient, startTestServer, type TestServer, waitFor } from './helpers.ts';
import { connectSession, MemorySyncLog, type SessionClient } from './session-client.ts';

let t: TestServer | undefined;
const open: SessionClient[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await t?.stop();
  t = undefined;
});

async function join(server: TestServer, log: MemorySyncLog, sub: string): Promise<SessionClient> {
  const client = await connectSession(server.server.url, server.token({ sub }), log);
  open.push(client);
  return client;
}

describe('sync through the server', () => {
  it('makes two clients converge: catch-up both ways, then live tailing', async () => {
    t = await startTestServer();
    const a = new MemorySyncLog();
    const b = new MemorySyncLog();
    a.append(1200);
    b.append(700);
    await join(t, a, 'alice');
    await join(t, b, 'bob');
    await waitFor(() => a.records.length === 1900 && b.records.length === 1900, 20_000);
    expect(a.ids()).toEqual(b.ids());
    a.append(3);
    b.append(2);
    await waitFor(() => a.records.length === 1905 && b.records.length === 1905, 10_000);
    expect(a.ids()).toEqual(b.ids());
    const space = await t.storage.openSpace('space-a');
    expect(await space.headPos()).toBe(1905);
  });

  it('resumes from checkpoints after a reconnect: nothing is stored twice', async () => {
    t = await startTestServer();
    const a = new MemorySyncLog();
    a.append(300);
    const first = await join(t, a, 'alice');
    const space = await t.storage.openSpace('space-a');
    await waitFor(async () => (await space.headPos()) === 300, 10_000);
    first.close();
    await first.closed;
    a.append(20);
    await join(t, a, 'alice');
    await waitFor(async () => (await space.headPos()) === 320, 10_000);
    // Only the 20 new events travelled on the second connection (checkpoint, not a full resend).
    expect(t.server.metrics.eventsIn).toBe(320);
    expect(a.ingestedTotal).toBe(0);
  });

  it('serves 200 concurrent clients from one process, each ending with every event', async () => {
    t = await startTestServer();
    const logs = Array.from({ length: 200 }, () => new MemorySyncLog());
    for (const log of logs) log.append(5);
    const clients = await Promise.all(logs.map((log, i) => join(t!, log, `user-${i}`)));
    expect(clients).toHaveLength(200);
    const space = await t.storage.openSpace('space-a');
    await waitFor(async () => (await space.headPos()) === 1000, 30_000);
    await waitFor(() => logs.every((log) => log.records.length === 1000), 60_000);
    const expected = logs[0]!.ids();
    for (const log of logs) expect(log.ids()).toEqual(expected);
    expect(t.server.connectionCount()).toBe(200);
  }, 120_000);

  it('stores a batch once when it is resent after the connection dropped before the ack (case 14)', async () => {
    t = await startTestServer();
    const first = await ProtocolClient.connect(t.server.url, t.token());
    const events = makeEvents(10, { replica: first.replica });
    first.raw.send({ type: 'events', from: 0, to: 10, toId: events[9]!.id, events });
    first.raw.ws.terminate();
    const space = await t.storage.openSpace('space-a');
    await waitFor(async () => (await space.headPos()) === 10, 5000);
    const again = await ProtocolClient.connect(t.server.url, t.token(), { replica: first.replica });
    const answer = await again.push(events);
    expect(answer).toMatchObject({ type: 'ack', to: 10 });
    expect(await space.headPos()).toBe(10);
    again.close();
  });

  it('shuts down gracefully: in-flight commits finish and are acked, sockets close with 1001', async () => {
    t = await startTestServer();
    const client = await ProtocolClient.connect(t.server.url, t.token());
    const events = makeEvents(200, { replica: client.replica });
    client.raw.send({ type: 'events', from: 0, to: 200, toId: events[199]!.id, events });
    const url = t.server.url;
    const stopping = t.server.close();
    expect((await client.raw.closed).code).toBe(1001);
    await stopping;
    const acked = client.raw.messages.find((m) => m.type === 'ack');
    const db = new Database(t.path, { readonly: true });
    const stored = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    db.close();
    // Whatever was acknowledged is stored (and a batch is all or nothing).
    expect([0, 200]).toContain(stored);
    if (acked !== undefined) expect(stored).toBe(200);
    expect(t.logs.some((l) => l.event === 'close' && l.code === 1001)).toBe(true);
    // The last entry names the address it listened on, not the closed port's `localhost`.
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(t.logs.at(-1)).toMatchObject({ event: 'closed', url });
  });
});
