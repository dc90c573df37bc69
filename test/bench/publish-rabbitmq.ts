/**
 * A crude figure, not a test: `npx tsx test/bench/publish-rabbitmq.ts`. Starts a throwaway
 * RabbitMQ node (its start time is the first figure), then publishes 20,000 events of about 300
 * bytes through rabbitmqSink in batches of 500, one space and then ten spaces at once, each
 * batch awaited until every confirm is in. Prints events/s; the median of three runs.
 */

import { rabbitmqSink } from '../../src/server/publish-rabbitmq.ts';
import type { PublishedEvent } from '../../src/server/publish-sink.ts';
import { makeEvents } from '../server/events.ts';
import { startRabbit } from '../server/rabbitmq-broker.ts';

const TOTAL = 20_000;
const BATCH = 500;

function eventsOf(space: string, count: number): PublishedEvent[] {
  return makeEvents(count, { prefix: space, data: { text: 'x'.repeat(90) } }).map((event, i) => ({
    pos: i + 1,
    event,
  }));
}

async function run(url: string, stream: string, spaces: number): Promise<number> {
  const sink = rabbitmqSink({ url, stream });
  const perSpace = TOTAL / spaces;
  const logs = Array.from({ length: spaces }, (_, i) => eventsOf(`${stream}-s${i}`, perSpace));
  const began = performance.now();
  await Promise.all(
    logs.map(async (events, i) => {
      for (let at = 0; at < events.length; at += BATCH) {
        await sink.publish(`${stream}-s${i}`, events.slice(at, at + BATCH));
      }
    }),
  );
  const seconds = (performance.now() - began) / 1000;
  await sink.close();
  return TOTAL / seconds;
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const broker = await startRabbit();
try {
  const size = Buffer.byteLength(JSON.stringify(eventsOf('size', 1)[0]?.event));
  console.log(`RabbitMQ node started in ${Math.round(broker.startMs)} ms; events of ${size} bytes`);
  await broker.kill();
  await broker.restart();
  console.log(`restart after SIGKILL: ${Math.round(broker.startMs)} ms`);
  for (const spaces of [1, 10]) {
    const rates: number[] = [];
    for (let round = 0; round < 3; round++) {
      rates.push(await run(broker.url, `bench-${spaces}-${round}`, spaces));
    }
    console.log(
      `${spaces} space(s), batches of ${BATCH}: ${Math.round(median(rates) ?? 0)} events/s (runs: ${rates.map(Math.round).join(', ')})`,
    );
  }
} finally {
  await broker.close();
}
