/**
 * `npm run bench -- publish`: the broker publisher (src/server/publisher.ts) to a real NATS
 * JetStream (Debian's nats-server, started as the tests start it: test/server/nats-broker.ts).
 * (a) throughput: a 20,000-event log on SQLite published from position 0, events/s; also to a
 *     RabbitMQ stream (a throwaway node, test/server/rabbitmq-broker.ts) when it is installed;
 * (b) lag: a client appends at a steady rate through the server, which publishes; per event, the
 *     time from the server's commit (its ack goes out right after: server.ts, connection.ts) to a
 *     JetStream consumer's receipt, both clocks of this process, p50/p99;
 * (c) client sync beside it: 20,000 events from a writer to a reader through the server, with
 *     the publisher off (baseline) and on, events/s.
 * Medians of RUNS runs; each run on a fresh SQLite file and a fresh stream. Skipped (no results)
 * when nats-server is not installed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  createSyncServer,
  createToken,
  natsSink,
  rabbitmqSink,
  type ServerStorage,
  silentLogger,
  sqliteStorage,
} from '../../src/server/index.ts';
import type { BrokerSink } from '../../src/server/publish-sink.ts';
import { Publisher } from '../../src/server/publisher.ts';
import { makeEvents } from '../server/events.ts';
import { type NatsBroker, startNats } from '../server/nats-broker.ts';
import { startRabbit } from '../server/rabbitmq-broker.ts';
import { connectSession, MemorySyncLog } from '../server/session-client.ts';
import { sampleEvent } from './browser-shared.ts';
import { type BenchResult, median, percentile, result } from './results.ts';

const SECRET = 'bench-secret-0123456789';
const RUNS = 3;
const LOG_EVENTS = 20_000;
const LAG_EVENTS = 2000;
/** The lag run's client appends this many events every LAG_TICK_MS (1,000 events/s). */
const LAG_CHUNK = 10;
const LAG_TICK_MS = 10;
const DEADLINE_MS = 120_000;

let streams = 0;
const freshStream = () => `bench${++streams}_${process.pid}`;

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} took over ${DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function withStorage<T>(run: (storage: ServerStorage) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-publish-'));
  const storage = sqliteStorage(join(dir, 'server.sqlite'));
  try {
    return await run(storage);
  } finally {
    await storage.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** (a) ms to publish a 20,000-event log. */
async function publishLog(sink: () => BrokerSink): Promise<number> {
  return withStorage(async (storage) => {
    const log = await storage.openSpace('bench');
    const events = makeEvents(LOG_EVENTS, { data: sampleEvent(1).data });
    for (let i = 0; i < events.length; i += 1000) await log.ingest(events.slice(i, i + 1000));
    const publisher = new Publisher(storage, { sink: sink() }, { log: () => {} });
    const start = performance.now();
    publisher.start();
    await until(() => publisher.publishedTotal >= LOG_EVENTS, 'publishing the log');
    const ms = performance.now() - start;
    await publisher.close();
    return ms;
  });
}

function token(sub: string): string {
  return createToken(SECRET, {
    space: 'bench',
    sub,
    scope: ['read', 'write'],
    expiresInSeconds: 600,
  });
}

/** (b) per event, ms from the server's commit (and ack) to the consumer's receipt. */
async function publishLag(broker: NatsBroker): Promise<number[]> {
  return withStorage(async (storage) => {
    const stream = freshStream();
    const server = await createSyncServer({
      storage,
      auth: { secret: SECRET },
      log: silentLogger,
      requireSignatures: false,
      publish: { sink: natsSink({ url: broker.url, stream }) },
    });
    const nc = await connect({ servers: broker.url });
    try {
      const writer = new MemorySyncLog();
      // committedAt[pos - 1]: when the server committed its position pos (and sent the ack).
      const committedAt: number[] = [];
      (await storage.openSpace('bench')).onAppend((head) => {
        const at = performance.now();
        while (committedAt.length < head) committedAt.push(at);
      });
      const client = await connectSession(server.url, token('writer'), writer);
      writer.append(1);
      await until(() => committedAt.length === 1, 'the first commit');
      await until(async () => {
        try {
          await jetstream(nc).streams.get(stream);
          return true;
        } catch {
          return false;
        }
      }, 'the stream');
      // receivedAt by position (the Chronicle-Pos header).
      const received = new Map<number, number>();
      const consumer = await jetstream(nc).consumers.get(stream);
      const messages = await consumer.consume();
      void (async () => {
        for await (const m of messages)
          received.set(Number(m.headers?.get('Chronicle-Pos')), performance.now());
      })();
      for (let i = 1; i < LAG_EVENTS; i += LAG_CHUNK) {
        writer.append(Math.min(LAG_CHUNK, LAG_EVENTS - i), (n) => sampleEvent(n).data);
        await new Promise((resolve) => setTimeout(resolve, LAG_TICK_MS));
      }
      await until(() => received.size >= LAG_EVENTS, 'the consumer');
      await messages.close();
      client.close();
      const lags: number[] = [];
      // The first event waited for the stream to be created: left out.
      for (let pos = 2; pos <= LAG_EVENTS; pos++) {
        const at = received.get(pos);
        if (at !== undefined) lags.push(at - committedAt[pos - 1]!);
      }
      return lags;
    } finally {
      await nc.close();
      await server.close();
    }
  });
}

/** (c) ms for a writer's 20,000 events to reach a reader through the server. */
async function clientSync(broker: NatsBroker | undefined): Promise<number> {
  return withStorage(async (storage) => {
    const server = await createSyncServer({
      storage,
      auth: { secret: SECRET },
      log: silentLogger,
      requireSignatures: false,
      ...(broker === undefined
        ? {}
        : { publish: { sink: natsSink({ url: broker.url, stream: freshStream() }) } }),
    });
    try {
      const writer = new MemorySyncLog();
      const reader = new MemorySyncLog();
      writer.append(LOG_EVENTS, (i) => sampleEvent(i).data);
      const start = performance.now();
      const readerClient = await connectSession(server.url, token('reader'), reader);
      const writerClient = await connectSession(server.url, token('writer'), writer);
      await until(() => reader.records.length >= LOG_EVENTS, 'client sync');
      const ms = performance.now() - start;
      readerClient.close();
      writerClient.close();
      return ms;
    } finally {
      await server.close();
    }
  });
}

/** (a) on a RabbitMQ stream (a throwaway node: test/server/rabbitmq-broker.ts); none without it. */
async function publishToRabbit(): Promise<number[]> {
  if (!existsSync('/usr/sbin/rabbitmq-server')) {
    console.error('bench: publish to RabbitMQ skipped (rabbitmq-server is not installed)');
    return [];
  }
  const rabbit = await startRabbit();
  try {
    const ms: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      ms.push(await publishLog(() => rabbitmqSink({ url: rabbit.url, stream: freshStream() })));
    }
    return ms;
  } finally {
    await rabbit.close();
  }
}

export async function runPublishBenches(): Promise<BenchResult[]> {
  if (!existsSync('/usr/sbin/nats-server')) {
    console.error('bench: publish skipped (nats-server is not installed)');
    return [];
  }
  const broker = await startNats();
  try {
    const publishMs: number[] = [];
    const p50: number[] = [];
    const p99: number[] = [];
    const syncOff: number[] = [];
    const syncOn: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      publishMs.push(await publishLog(() => natsSink({ url: broker.url, stream: freshStream() })));
      const lags = await publishLag(broker);
      p50.push(percentile(lags, 50));
      p99.push(percentile(lags, 99));
      syncOff.push(await clientSync(undefined));
      syncOn.push(await clientSync(broker));
    }
    const rate = (ms: number) => LOG_EVENTS / (ms / 1000);
    const rabbitMs = await publishToRabbit();
    return [
      result(
        'publish: 20k-event log to NATS JetStream',
        'events/s',
        rate(median(publishMs)),
        undefined,
        'batches of 500, PubAcks pipelined',
      ),
      result(
        'publish: lag, server ack to consumer receipt, p50',
        'ms',
        median(p50),
        undefined,
        `${LAG_EVENTS} events at ${(LAG_CHUNK * 1000) / LAG_TICK_MS}/s`,
      ),
      result('publish: lag, server ack to consumer receipt, p99', 'ms', median(p99)),
      ...(rabbitMs.length === 0
        ? []
        : [
            result(
              'publish: 20k-event log to a RabbitMQ stream',
              'events/s',
              rate(median(rabbitMs)),
              undefined,
              'batches of 500, every confirm awaited per batch',
            ),
          ]),
      result(
        'publish: client sync 20k events with the publisher on',
        'events/s',
        rate(median(syncOn)),
        rate(median(syncOff)),
        'baseline: the same server without publishing',
      ),
    ];
  } finally {
    await broker.stop();
  }
}
