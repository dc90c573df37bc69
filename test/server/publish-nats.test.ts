/**
 * The broker publisher (publisher.ts) and its NATS JetStream sink (publish-nats.ts) against a
 * real nats-server (nats-broker.ts): every event of every space once, in log order; re-sends
 * dropped by the broker. Faults (server or broker SIGKILLed) are in publish-faults.test.ts, on
 * every broker.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/server/metrics.ts';
import { decodeToken, encodeToken, natsSink, subjectOf } from '../../src/server/publish-nats.ts';
import { createSyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvent, makeEvents } from './events.ts';
import { SECRET, tempDir, waitFor } from './helpers.ts';
import { type NatsBroker, startNats } from './nats-broker.ts';
import { idsOf, readStream } from './nats-consumer.ts';
import { publishSinkConformance } from './publish-sink-conformance.ts';

let broker: NatsBroker;
beforeAll(async () => {
  broker = await startNats();
});
afterAll(async () => {
  await broker?.stop();
});

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let streams = 0;
/** A stream of its own per test (and its subjects): tests share the broker. */
function freshStream(): string {
  streams += 1;
  return `t${streams}_${process.pid}`;
}

async function idsInLog(storage: ServerStorage, space: string): Promise<string[]> {
  const log = await storage.openSpace(space);
  return (await log.readByPos(0, 100_000)).map((r) => r.event.id);
}

publishSinkConformance('NATS JetStream (@nats-io/transport-node)', async () => {
  const stream = freshStream();
  const open = () => natsSink({ url: broker.url, stream, timeoutMs: 5_000 });
  const sinks = [open()];
  return {
    sink: sinks[0]!,
    consume: async () =>
      (await readStream(broker.url, stream)).map((m) => ({
        space: m.space,
        pos: m.pos,
        id: m.event.id,
      })),
    stopBroker: (kill) => (kill ? broker.kill() : broker.halt()),
    startBroker: () => broker.start(),
    async reopen() {
      const sink = open();
      sinks.push(sink);
      return sink;
    },
    async close() {
      await Promise.all(sinks.map((sink) => sink.close()));
    },
  };
});

describe('subject tokens (publish-nats.ts invariant 2)', () => {
  it('encodes any name one-to-one into a token without . * > whitespace or control characters', () => {
    const names = ['board-1', 'a.b', 'a*b>c', ' x\ty\n', '%41', '', 'é', '\u0000', '\ud800', '😀'];
    const tokens = names.map(encodeToken);
    expect(new Set(tokens).size).toBe(names.length);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_%u-]+$/);
    expect(tokens.map(decodeToken)).toEqual(names);
    expect(subjectOf('chronicle', 'a.b', 'todo list')).toBe('chronicle.a%2Eb.todo%20list');
  });
});

describe('natsSink', () => {
  it('drops a re-sent batch: a publisher that crashed before recording its position publishes nothing twice (publish-sink.ts 2)', async () => {
    const stream = freshStream();
    const sink = natsSink({ url: broker.url, stream });
    cleanups.push(() => sink.close());
    const events = makeEvents(5).map((event, i) => ({ pos: i + 1, event }));
    await sink.publish('s', events.slice(0, 3));
    await sink.publish('s', events);
    const messages = await readStream(broker.url, stream);
    expect(messages.map((m) => m.event.id)).toEqual(events.map((e) => e.event.id));
    expect(messages.map((m) => m.pos)).toEqual([1, 2, 3, 4, 5]);
  });

  it("keeps one space's ids from deduplicating another's, and lets through the copy that wins a collision", async () => {
    const stream = freshStream();
    const sink = natsSink({ url: broker.url, stream });
    cleanups.push(() => sink.close());
    const loser = makeEvent({ id: 'shared', replica: 'later', wall: 1_700_000_500_000 });
    const winner = makeEvent({ id: 'shared', replica: 'earlier', wall: 1_700_000_000_000 });
    await sink.publish('a', [{ pos: 1, event: loser }]);
    await sink.publish('b', [{ pos: 1, event: loser }]);
    // The winner replaced the loser in space a's log (core/copies.ts) at a new position.
    await sink.publish('a', [{ pos: 2, event: winner }]);
    const messages = await readStream(broker.url, stream);
    expect(messages.map((m) => [m.space, m.pos, m.event.replica])).toEqual([
      ['a', 1, 'later'],
      ['b', 1, 'later'],
      ['a', 2, 'earlier'],
    ]);
  });

  it('rejects while the broker is unreachable and never throws at construction (publish-sink.ts 4)', async () => {
    const sink = natsSink({ url: 'nats://127.0.0.1:1', timeoutMs: 500 });
    cleanups.push(() => sink.close());
    await expect(sink.publish('s', [{ pos: 1, event: makeEvent() }])).rejects.toThrow();
  });
});

describe('the publisher', () => {
  it('publishes every event of several spaces, found at start and appended later, in log order, once', async () => {
    const stream = freshStream();
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    // Written before the server starts: found by the first scan (publisher.ts invariant 2).
    const before = sqliteStorage(path);
    await (await before.openSpace('a')).ingest(makeEvents(300));
    await (await before.openSpace('b.c *>')).ingest(makeEvents(40));
    await before.close();
    const storage = sqliteStorage(path);
    const logs: LogEntry[] = [];
    const server = await createSyncServer({
      storage,
      auth: { secret: SECRET },
      log: (entry) => logs.push(entry),
      publish: {
        sink: natsSink({ url: broker.url, stream }),
        batchSize: 64,
        rescanMs: 200,
      },
    });
    cleanups.push(() => server.close());
    // Appended while it runs: onAppend wakes it; a space new since the scan is found too.
    for (let i = 0; i < 5; i++) {
      await (await storage.openSpace('a')).ingest(makeEvents(20, { firstSeq: 301 + 20 * i }));
      await (await storage.openSpace('new')).ingest(makeEvents(7, { firstSeq: 1 + 7 * i }));
    }
    const total = 300 + 100 + 40 + 35;
    await waitFor(async () => (await readStream(broker.url, stream)).length >= total, 20_000);
    await waitFor(() => server.metrics.publish?.lag() === 0, 5000);
    const messages = await readStream(broker.url, stream);
    expect(messages.length).toBe(total);
    expect(new Set(messages.map((m) => m.msgId)).size).toBe(total);
    for (const space of ['a', 'b.c *>', 'new']) {
      expect(idsOf(messages, space)).toEqual(await idsInLog(storage, space));
      const positions = messages.filter((m) => m.space === space).map((m) => m.pos);
      expect(positions).toEqual([...positions].sort((x, y) => x - y));
    }
    expect(messages.every((m) => m.subject.split('.').length === 3)).toBe(true);
    expect(await storage.publishedPositions('default')).toEqual(
      new Map([
        ['a', 400],
        ['b.c *>', 40],
        ['new', 35],
      ]),
    );
    expect(logs.filter((e) => e.event === 'publish_failed')).toEqual([]);
  });
});
