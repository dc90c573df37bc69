/**
 * The RabbitMQ sink (publish-sink.ts) over RabbitMQ streams: a persistent, replayable log that
 * consumers read from any offset, through the stream protocol (rabbitmq-stream-js-client, an
 * optional peer dependency loaded on first use).
 *
 * Invariants (on top of publish-sink.ts's):
 * 1. One stream per deployment (`stream`, declared at first use), one named producer per space:
 *    its reference is derived from the space (`publisherRef`) and its publishing id is the
 *    event's position. The broker keeps the highest publishing id per reference with the stream
 *    and drops, while confirming, a message whose id is not above it: a re-sent or overlapping
 *    batch reaches consumers no second time, from this sink or a restarted one (sink invariant 2).
 * 2. `publish` resolves once the broker confirmed every publishing id of the batch; it rejects
 *    with RabbitmqSinkError on a publish error, a closed connection or after `timeoutMs`, never
 *    hangs. After any failure the connection is dropped whole and the next call opens a new one:
 *    a producer's state on a dead connection is unknown, and the broker's sequence is the truth.
 * 3. `acknowledged(space)` is the producer's last publishing id as the broker holds it, so the
 *    publisher resumes from what the broker has even when its own position lags.
 * 4. One batch at a time per space: calls for one space are chained, so that confirms, and
 *    publishing ids, never interleave within a producer.
 * Each message: the event record as JSON; message id = event id; application properties space,
 * pos, stream and type, for consumers that filter without parsing the body.
 */
import { createHash } from 'node:crypto';
import type { Client, Publisher } from 'rabbitmq-stream-js-client';
import { ChronicleError } from '../core/errors.ts';
import { loadRabbitmqStream } from './peers.ts';
import type { BrokerSink, PublishedEvent } from './publish-sink.ts';
import { dropQueue, patchStreamClient } from './rabbitmq-stream-quirks.ts';

export interface RabbitmqSinkOptions {
  /**
   * `rabbitmq-stream://user:password@host:5552/vhost?stream=name` (user and password default to
   * guest, the vhost to `/`).
   */
  url: string;
  /** The deployment's stream: this, or the URL's `stream` parameter, or 'chronicle'. */
  stream?: string;
  /** Bound on one publish (connecting, declaring, every confirm) or query. Default 10 s. */
  timeoutMs?: number;
}

/** The broker refused, dropped or did not answer a publish: nothing is known of the batch. */
export class RabbitmqSinkError extends ChronicleError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('TRANSPORT', message, details);
    this.name = 'RabbitmqSinkError';
  }
}

export const DEFAULT_RABBITMQ_STREAM = 'chronicle';
const DEFAULT_TIMEOUT_MS = 10_000;
/** Bytes of message bodies per publish frame: well under the broker's 1 MiB frame_max. */
const FRAME_BUDGET = 256 * 1024;
/** The stream protocol caps a publisher reference at 256 bytes. */
const MAX_REFERENCE_BYTES = 256;
/** Messages per publish frame at most (the client's default is 100). */
const MAX_CHUNK = 1000;

/** The producer's reference of `space` (invariant 1): readable, or hashed when too long. */
export function publisherRef(space: string): string {
  const ref = `chronicle/${space}`;
  if (Buffer.byteLength(ref) <= MAX_REFERENCE_BYTES) return ref;
  return `chronicle/sha256/${createHash('sha256').update(space).digest('hex')}`;
}

interface Endpoint {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  /** The URL's `stream` parameter. */
  stream?: string;
}

/** Parses `rabbitmq-stream://user:password@host:port/vhost?stream=name`. */
export function parseRabbitmqUrl(url: string): Endpoint {
  const parsed = new URL(url);
  if (parsed.protocol !== 'rabbitmq-stream:') {
    throw new RabbitmqSinkError(`not a rabbitmq-stream:// URL: ${parsed.protocol}`, { url });
  }
  const path = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const stream = parsed.searchParams.get('stream');
  return {
    ...(stream === null || stream === '' ? {} : { stream }),
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? 5552 : Number(parsed.port),
    username: parsed.username === '' ? 'guest' : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? 'guest' : decodeURIComponent(parsed.password),
    vhost: path === '' ? '/' : path,
  };
}

/** A batch waiting for its confirms. */
interface Waiting {
  ids: Set<bigint>;
  resolve(): void;
  reject(error: Error): void;
}

/** One connection's state: dropped whole on any failure (invariant 2). */
interface Session {
  client: Promise<Client>;
  producers: Map<string, Promise<Publisher>>;
  /** By `${connectionId}/${publisherId}`. */
  waiting: Map<string, Waiting>;
  dead: boolean;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RabbitmqSinkError(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A BrokerSink that publishes to a RabbitMQ stream (RabbitMQ 3.9 or later with the
 * `rabbitmq_stream` plugin).
 *
 * @example
 * const sink = rabbitmqSink({ url: 'rabbitmq-stream://guest:guest@localhost:5552' });
 */
export function rabbitmqSink(options: RabbitmqSinkOptions): BrokerSink {
  const { stream: streamOfUrl, ...endpoint } = parseRabbitmqUrl(options.url);
  const stream = options.stream ?? streamOfUrl ?? DEFAULT_RABBITMQ_STREAM;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const name = `rabbitmq:rabbitmq-stream://${endpoint.hostname}:${endpoint.port}/${stream}`;
  let session: Session | undefined;
  let closed = false;
  const chains = new Map<string, Promise<unknown>>();

  function drop(target: Session, error: Error): void {
    if (target.dead) return;
    target.dead = true;
    if (session === target) session = undefined;
    for (const waiting of target.waiting.values()) waiting.reject(error);
    target.waiting.clear();
    for (const producer of target.producers.values()) {
      producer.then(dropQueue, () => {});
    }
    // Closing a client whose broker is gone never answers: bounded, and errors ignored.
    target.client.then((client) => withTimeout(client.close(), 1000, 'close')).catch(() => {});
  }

  function open(): Session {
    if (closed) throw new RabbitmqSinkError('sink closed', { name });
    if (session !== undefined) return session;
    const { connect } = loadRabbitmqStream();
    patchStreamClient();
    const waiting = new Map<string, Waiting>();
    const settle = (key: string, ids: readonly bigint[], error?: Error) => {
      const batch = waiting.get(key);
      if (batch === undefined) return;
      if (error !== undefined) {
        waiting.delete(key);
        batch.reject(error);
        return;
      }
      for (const id of ids) batch.ids.delete(id);
      if (batch.ids.size === 0) {
        waiting.delete(key);
        batch.resolve();
      }
    };
    const client = connect({
      ...endpoint,
      listeners: {
        connection_closed: () => drop(fresh, closedError()),
        publish_confirm: (confirm, connectionId) =>
          settle(`${connectionId}/${confirm.publisherId}`, confirm.publishingIds),
        publish_error: (error, connectionId) =>
          settle(
            `${connectionId}/${error.publisherId}`,
            [],
            new RabbitmqSinkError(
              `RabbitMQ refused a message (code ${error.publishingError.code})`,
              {
                name,
                code: error.publishingError.code,
                publishingId: String(error.publishingError.publishingId),
              },
            ),
          ),
      },
    }).then(async (opened) => {
      await opened.createStream({ stream, arguments: {} });
      return opened;
    });
    const fresh: Session = { client, producers: new Map(), waiting, dead: false };
    client.catch((error: unknown) => drop(fresh, asSinkError(error)));
    session = fresh;
    return fresh;
  }

  function closedError(): RabbitmqSinkError {
    return new RabbitmqSinkError('connection to RabbitMQ closed', { name });
  }

  function producer(current: Session, space: string): Promise<Publisher> {
    let found = current.producers.get(space);
    if (found === undefined) {
      found = current.client.then((client) =>
        client.declarePublisher({
          stream,
          publisherRef: publisherRef(space),
          maxChunkLength: MAX_CHUNK,
          connectionClosedListener: () => drop(current, closedError()),
        }),
      );
      current.producers.set(space, found);
    }
    return found;
  }

  async function send(
    current: Session,
    space: string,
    events: readonly PublishedEvent[],
  ): Promise<void> {
    const publisher = await producer(current, space);
    const connection = publisher.getConnectionInfo();
    if (current.dead || !connection.ready) throw closedError();
    const key = `${connection.id}/${publisher.publisherId}`;
    const confirmed = new Promise<void>((resolve, reject) => {
      const ids = new Set(events.map((e) => BigInt(e.pos)));
      current.waiting.set(key, { ids, resolve, reject });
    });
    confirmed.catch(() => {});
    let bytes = 0;
    for (const { pos, event } of events) {
      // Timed out or disconnected meanwhile: the rest would go to a connection being closed.
      if (current.dead) throw closedError();
      const body = Buffer.from(JSON.stringify(event));
      if (bytes > 0 && bytes + body.length > FRAME_BUDGET) {
        await publisher.flush();
        bytes = 0;
      }
      bytes += body.length;
      await publisher.basicSend(BigInt(pos), body, {
        messageProperties: { messageId: event.id, contentType: 'application/json' },
        applicationProperties: { space, pos, stream: event.stream, type: event.type },
      });
    }
    await publisher.flush();
    // A flush on a closed connection sends nothing and says so only by returning false.
    if (!publisher.getConnectionInfo().ready) throw closedError();
    await confirmed;
  }

  /** Invariant 4, and the bound of invariant 2: a failure drops the session. */
  function perSpace<T>(
    space: string,
    what: string,
    run: (current: Session) => Promise<T>,
  ): Promise<T> {
    const previous = chains.get(space) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const current = open();
        try {
          return await withTimeout(run(current), timeoutMs, `${what} of space ${space} to ${name}`);
        } catch (error) {
          const failure = asSinkError(error);
          drop(current, failure);
          throw failure;
        }
      });
    chains.set(space, next);
    next
      .catch(() => {})
      .then(() => {
        if (chains.get(space) === next) chains.delete(space);
      });
    return next;
  }

  return {
    name,
    publish: (space, events) =>
      events.length === 0 && !closed
        ? Promise.resolve()
        : perSpace(space, 'publish', (current) => send(current, space, events)),
    acknowledged: (space) =>
      perSpace(space, 'sequence query', async (current) => {
        const sequence = await (await producer(current, space)).getLastPublishingId();
        // 0 is the broker's answer for a reference it never saw: positions start at 1.
        return sequence === 0n ? undefined : Number(sequence);
      }),
    async close() {
      closed = true;
      const current = session;
      if (current === undefined) return;
      session = undefined;
      current.dead = true;
      for (const waiting of current.waiting.values()) {
        waiting.reject(new RabbitmqSinkError('sink closed', { name }));
      }
      try {
        const client = await withTimeout(current.client, timeoutMs, 'connect');
        await withTimeout(client.close(), timeoutMs, 'close');
      } catch {
        for (const producer of current.producers.values()) producer.then(dropQueue, () => {});
      }
    },
  };
}

/** A ChronicleError (MissingDependencyError above all) passes as it is. */
function asSinkError(error: unknown): ChronicleError {
  if (error instanceof ChronicleError) return error;
  const message = error instanceof Error ? error.message : `code ${String(error)}`;
  return new RabbitmqSinkError(`RabbitMQ: ${message}`, { cause: message });
}
