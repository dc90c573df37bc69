/**
 * The RabbitMQ sink (src/server/publish-rabbitmq.ts) against a real RabbitMQ node with the stream
 * plugin (rabbitmq-broker.ts): the BrokerSink conformance suite, then what is RabbitMQ's own.
 * Invariants cited: R1..R4 of publish-rabbitmq.ts, Q1..Q3 of rabbitmq-stream-quirks.ts.
 */
import { createRequire } from 'node:module';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import type { Message } from 'rabbitmq-stream-js-client/dist/publisher';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MissingDependencyError } from '../../src/core/errors.ts';
import { type PeerName, setPeerLoader } from '../../src/server/peers.ts';
import {
  parseRabbitmqUrl,
  publisherRef,
  RabbitmqSinkError,
  rabbitmqSink,
} from '../../src/server/publish-rabbitmq.ts';
import type { BrokerSink } from '../../src/server/publish-sink.ts';
import {
  dropQueue,
  patchStreamClient,
  predatesCommandVersions,
} from '../../src/server/rabbitmq-stream-quirks.ts';
import { makeEvents } from './events.ts';
import { publishSinkConformance } from './publish-sink-conformance.ts';
import { type RabbitBroker, startRabbit } from './rabbitmq-broker.ts';
import { consumedOf, readRabbitStream } from './rabbitmq-consumer.ts';

let broker: RabbitBroker;
let streamCount = 0;

beforeAll(async () => {
  broker = await startRabbit();
}, 120_000);
afterAll(async () => {
  await broker?.close();
}, 60_000);

const readAll = (stream: string): Promise<Message[]> => readRabbitStream(broker.url, stream);
const consumed = consumedOf;

function sinkOn(stream: string): BrokerSink {
  return rabbitmqSink({ url: broker.url, stream, timeoutMs: 5_000 });
}

publishSinkConformance('RabbitMQ stream (rabbitmq-stream-js-client)', async () => {
  streamCount += 1;
  const stream = `conformance-${streamCount}`;
  const sinks = [sinkOn(stream)];
  return {
    sink: sinks[0] as BrokerSink,
    consume: async () => (await readAll(stream)).map(consumed),
    stopBroker: (kill) => (kill ? broker.kill() : broker.stop()),
    startBroker: () => broker.restart(),
    async reopen() {
      const sink = sinkOn(stream);
      sinks.push(sink);
      return sink;
    },
    async close() {
      await Promise.all(sinks.map((sink) => sink.close()));
    },
  };
});

describe('rabbitmqSink', () => {
  afterEach(() => setPeerLoader(undefined));

  it('R1: each message carries the event as JSON, its id as message id, and space, pos, stream and type as properties', async () => {
    const sink = sinkOn('properties');
    const [event] = makeEvents(1, { prefix: 'props', stream: 'todo-1', type: 'todo.added' });
    if (event === undefined) throw new Error('no event');
    await sink.publish('space-p', [{ pos: 4, event }]);
    await sink.close();
    const [message] = await readAll('properties');
    expect(message?.messageProperties?.messageId).toBe(event.id);
    expect(message?.messageProperties?.contentType).toBe('application/json');
    expect(message?.applicationProperties).toEqual({
      space: 'space-p',
      pos: 4,
      stream: 'todo-1',
      type: 'todo.added',
    });
    expect(JSON.parse(message?.content.toString() ?? 'null')).toEqual(event);
  });

  it("R1: events near the server's size limit (512 KiB of data each) go out in frames the broker takes", async () => {
    const sink = sinkOn('large');
    const events = makeEvents(3, { prefix: 'large', data: { text: 'x'.repeat(500_000) } });
    await sink.publish(
      'space-l',
      events.map((event, i) => ({ pos: i + 1, event })),
    );
    await sink.close();
    const read = await readAll('large');
    expect(read.map((m) => m.messageProperties?.messageId)).toEqual(events.map((e) => e.id));
  });

  it('R1: a space too long for a producer reference gets a hashed one, distinct per space', () => {
    expect(publisherRef('a')).toBe('chronicle/a');
    const long = 'x'.repeat(300);
    expect(Buffer.byteLength(publisherRef(long))).toBeLessThanOrEqual(256);
    expect(publisherRef(long)).not.toBe(publisherRef(`${long}y`));
  });

  it('reads user, password, host, port, vhost and stream from the URL, with the stream defaults, and names the sink without the password', () => {
    expect(parseRabbitmqUrl('rabbitmq-stream://u%40x:p%2Fw@broker:5553/prod')).toEqual({
      hostname: 'broker',
      port: 5553,
      username: 'u@x',
      password: 'p/w',
      vhost: 'prod',
    });
    expect(parseRabbitmqUrl('rabbitmq-stream://broker')).toEqual({
      hostname: 'broker',
      port: 5552,
      username: 'guest',
      password: 'guest',
      vhost: '/',
    });
    expect(parseRabbitmqUrl('rabbitmq-stream://broker/%2F?stream=orders')).toMatchObject({
      vhost: '/',
      stream: 'orders',
    });
    expect(rabbitmqSink({ url: 'rabbitmq-stream://u:secret@broker?stream=orders' }).name).toBe(
      'rabbitmq:rabbitmq-stream://broker:5552/orders',
    );
    expect(() => parseRabbitmqUrl('amqp://broker')).toThrow(RabbitmqSinkError);
  });

  it('R2: a publish to a broker nobody listens on rejects with TRANSPORT, and the sink does not throw at construction', async () => {
    const sink = rabbitmqSink({ url: 'rabbitmq-stream://127.0.0.1:1', timeoutMs: 5_000 });
    const [event] = makeEvents(1, { prefix: 'nobody' });
    if (event === undefined) throw new Error('no event');
    await expect(sink.publish('s', [{ pos: 1, event }])).rejects.toMatchObject({
      code: 'TRANSPORT',
    });
    await sink.close();
  });

  it('R2: a publish to a broker that accepts the connection and never answers rejects after timeoutMs, and close does not hang', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const sink = rabbitmqSink({ url: `rabbitmq-stream://127.0.0.1:${port}`, timeoutMs: 300 });
    const [event] = makeEvents(1, { prefix: 'silent' });
    if (event === undefined) throw new Error('no event');
    try {
      await expect(sink.publish('s', [{ pos: 1, event }])).rejects.toMatchObject({
        code: 'TRANSPORT',
        message: expect.stringContaining('no answer in 300 ms'),
      });
      await sink.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('without rabbitmq-stream-js-client, a publish rejects with MISSING_DEPENDENCY naming it', async () => {
    const installed = createRequire(import.meta.url);
    setPeerLoader((name: PeerName) => {
      if (name === 'rabbitmq-stream-js-client') {
        throw Object.assign(new Error(`Cannot find module '${name}'`), {
          code: 'MODULE_NOT_FOUND',
        });
      }
      return installed(name);
    });
    const sink = rabbitmqSink({ url: broker.url });
    const [event] = makeEvents(1, { prefix: 'missing' });
    if (event === undefined) throw new Error('no event');
    const failure = sink.publish('s', [{ pos: 1, event }]);
    await expect(failure).rejects.toBeInstanceOf(MissingDependencyError);
    await expect(failure).rejects.toMatchObject({ dependency: 'rabbitmq-stream-js-client' });
  });

  it('Q1: skips the command-version exchange for brokers before 3.11 only', () => {
    expect(predatesCommandVersions('3.10.8')).toBe(true);
    expect(predatesCommandVersions('3.9.0')).toBe(true);
    expect(predatesCommandVersions('3.11.0')).toBe(false);
    expect(predatesCommandVersions('4.0.5')).toBe(false);
    expect(predatesCommandVersions(undefined)).toBe(false);
  });

  it('Q2: a frame the client cannot decode (a Close from the broker) destroys its connection instead of throwing out of the socket handler', () => {
    patchStreamClient();
    const { Connection } = createRequire(import.meta.url)(
      'rabbitmq-stream-js-client/dist/connection',
    ) as { Connection: { prototype: object } };
    const destroyed: unknown[] = [];
    const connection = Object.assign(Object.create(Connection.prototype), {
      logger: { debug() {} },
      decoder: {
        add() {
          throw new Error('Unknown response 22');
        },
      },
      socket: { destroy: (error: unknown) => destroyed.push(error) },
    }) as { received(data: Buffer): void };
    expect(() => connection.received(Buffer.from([0, 22]))).not.toThrow();
    expect(String(destroyed[0])).toContain('Unknown response 22');
  });

  it('Q3: the queue of a publisher whose connection died is emptied', () => {
    const publisher = { queue: [1, 2, 3] };
    dropQueue(publisher);
    expect(publisher.queue).toEqual([]);
  });
});
