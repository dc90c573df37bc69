/**
 * The broker publisher under faults (publisher.ts invariants 1 and 4), on each broker the CLI
 * publishes to (NATS JetStream, a RabbitMQ stream):
 * - the server process, run with `--publish`, SIGKILLed while clients append and it publishes,
 *   then restarted on the same SQLite file;
 * - the broker SIGKILLed while clients keep syncing, then started again on its data;
 * a consumer of the broker ends with every event once, in log order.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/server/metrics.ts';
import { natsSink } from '../../src/server/publish-nats.ts';
import { rabbitmqSink } from '../../src/server/publish-rabbitmq.ts';
import type { BrokerSink } from '../../src/server/publish-sink.ts';
import { createSyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { httpGet, SECRET, spaceToken, tempDir, waitFor } from './helpers.ts';
import { type NatsBroker, startNats } from './nats-broker.ts';
import { readStream, streamCount } from './nats-consumer.ts';
import { type RabbitBroker, startRabbit } from './rabbitmq-broker.ts';
import { consumedOf, readRabbitStream } from './rabbitmq-consumer.ts';
import { exited, startServerProcess } from './server-process.ts';
import { connectSession, MemorySyncLog } from './session-client.ts';

/** What the test needs of a broker: where the CLI publishes, and what a consumer sees. */
interface BrokerUnderTest {
  url: string;
  /** How many events of `spaces` the broker holds in `stream`. */
  published(stream: string, spaces: readonly string[]): Promise<number>;
  /** Every message's space and event id, in stream order. */
  read(stream: string): Promise<{ space: string; id: string }[]>;
  sink(stream: string): BrokerSink;
  kill(): Promise<void>;
  /** Starts it again on its data, after kill(). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function natsUnderTest(): Promise<BrokerUnderTest> {
  const broker: NatsBroker = await startNats();
  return {
    url: broker.url,
    published: (stream) => streamCount(broker.url, stream),
    read: async (stream) =>
      (await readStream(broker.url, stream)).map((m) => ({ space: m.space, id: m.event.id })),
    sink: (stream) => natsSink({ url: broker.url, stream, timeoutMs: 2000 }),
    kill: () => broker.kill(),
    start: () => broker.start(),
    stop: () => broker.stop(),
  };
}

async function rabbitUnderTest(): Promise<BrokerUnderTest> {
  const broker: RabbitBroker = await startRabbit();
  return {
    url: broker.url,
    // The named producers' last publishing ids: positions, dense here (no collisions).
    async published(stream, spaces) {
      const sink = rabbitmqSink({ url: broker.url, stream, timeoutMs: 5_000 });
      try {
        let total = 0;
        for (const space of spaces) total += (await sink.acknowledged?.(space)) ?? 0;
        return total;
      } catch {
        return 0; // the stream is not declared yet
      } finally {
        await sink.close();
      }
    },
    read: async (stream) =>
      (await readRabbitStream(broker.url, stream)).map(consumedOf).map((m) => ({
        space: m.space,
        id: m.id,
      })),
    sink: (stream) => rabbitmqSink({ url: broker.url, stream, timeoutMs: 2000 }),
    kill: () => broker.kill(),
    start: () => broker.restart(),
    stop: () => broker.close(),
  };
}

const cleanups: (() => void | Promise<void>)[] = [];
let streams = 0;
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const token = (space: string) => spaceToken(space);

/** The ids of a space in log order, as the server's SQLite file holds them. */
function idsInFile(path: string, space: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id FROM events WHERE space = ? ORDER BY pos').all(space) as {
      id: string;
    }[];
    return rows.map((r) => r.id);
  } finally {
    db.close();
  }
}

describe.each([
  ['NATS JetStream', natsUnderTest],
  ['a RabbitMQ stream', rabbitUnderTest],
] as const)('publisher crash, publishing to %s', (_name, start) => {
  let broker: BrokerUnderTest;
  beforeAll(async () => {
    broker = await start();
  }, 120_000);
  afterAll(async () => {
    await broker?.stop();
  }, 60_000);

  it('publishes every event once, in order, after the server is SIGKILLed mid-stream and restarted', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const stream = 'crash';
    const args = ['--publish', broker.url, '--publish-stream', stream];
    const spaces = ['space-a', 'space-b'];
    const PER_SPACE = 2500;
    const writers = spaces.map(() => new MemorySyncLog());
    for (const writer of writers) writer.append(PER_SPACE, (i) => ({ i, text: 'x'.repeat(300) }));

    const first = await startServerProcess(path, cleanups, 0, args);
    for (const [i, space] of spaces.entries()) {
      const client = await connectSession(first.url, token(space), writers[i]!);
      cleanups.push(() => client.close());
    }
    // Killed once some are published, while the writers are still uploading.
    await waitFor(async () => (await broker.published(stream, spaces)) >= 300, 30_000);
    first.child.kill('SIGKILL');
    await exited(first.child);
    const atKill = await broker.published(stream, spaces);

    const second = await startServerProcess(path, cleanups, 0, args);
    for (const [i, space] of spaces.entries()) {
      const client = await connectSession(second.url, token(space), writers[i]!);
      cleanups.push(() => client.close());
    }
    await waitFor(
      async () => (await broker.published(stream, spaces)) >= spaces.length * PER_SPACE,
      60_000,
    );
    const messages = await broker.read(stream);
    // Mid-stream: some published before the kill, the rest after.
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(spaces.length * PER_SPACE);
    expect(messages.length).toBe(spaces.length * PER_SPACE);
    expect(new Set(messages.map((m) => `${m.space}/${m.id}`)).size).toBe(messages.length);
    for (const space of spaces) {
      const logged = idsInFile(path, space);
      expect(logged.length).toBe(PER_SPACE);
      expect(messages.filter((m) => m.space === space).map((m) => m.id)).toEqual(logged);
    }
    // The restarted process resumed from its durable position, not from the start.
    const resumed = second.entries.find((e) => e.event === 'publish_resumed');
    expect(resumed).toBeDefined();
    second.child.kill('SIGTERM');
    await exited(second.child);
  }, 120_000);

  it('keeps client sync going while the broker is SIGKILLed, shows the lag, then publishes every event once, in order, when it is back', async () => {
    const tmp = tempDir();
    const storage = sqliteStorage(join(tmp.dir, 'server.sqlite'));
    const logs: LogEntry[] = [];
    const stream = `faults${++streams}`;
    const server = await createSyncServer({
      storage,
      auth: { secret: SECRET },
      requireSignatures: false,
      log: (entry) => {
        logs.push(entry);
      },
      publish: {
        sink: broker.sink(stream),
        batchSize: 100,
        retryMs: 20,
        maxRetryMs: 300,
        rescanMs: 200,
      },
    });
    cleanups.push(async () => {
      await server.close();
      tmp.cleanup();
    });
    const writer = new MemorySyncLog();
    let acked = 0;
    const client = await connectSession(server.url, token('space-a'), writer, {
      onStatus: (s) => {
        acked = s.ackedPos;
      },
    });
    cleanups.push(() => client.close());
    writer.append(300);
    await waitFor(async () => (await broker.published(stream, ['space-a'])) >= 300, 20_000);

    await broker.kill();
    // Sync goes on: the server acknowledges what the writer appends while the broker is down.
    writer.append(700);
    await waitFor(() => acked >= 1000, 20_000);
    await waitFor(() => (server.metrics.publish?.lag() ?? 0) > 0, 5000);
    const metrics = await httpGet(server, '/metrics');
    expect(metrics.body).toMatch(/^chronicle_publish_lag_events [1-9]\d*$/m);
    await waitFor(() => logs.some((e) => e.event === 'publish_failed'), 5000);

    await broker.start();
    writer.append(200);
    await waitFor(() => acked >= 1200, 20_000);
    await waitFor(() => server.metrics.publish?.lag() === 0, 60_000);
    const messages = await broker.read(stream);
    const log = await storage.openSpace('space-a');
    const logged = (await log.readByPos(0, 100_000)).map((r) => r.event.id);
    expect(logged.length).toBe(1200);
    expect(messages.map((m) => m.id)).toEqual(logged);
    expect(server.metrics.publish?.oldestUnpublishedMs()).toBe(0);
    // One entry when it failed, one when it recovered: not one per attempt.
    expect(logs.filter((e) => e.event === 'publish_failed').length).toBe(1);
    expect(logs.filter((e) => e.event === 'publish_recovered').length).toBe(1);
  }, 120_000);
});
