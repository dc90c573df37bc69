/**
 * The NATS JetStream sink of the broker publisher (publish-sink.ts, publisher.ts).
 *
 * Invariants (beyond those of publish-sink.ts):
 * 1. One JetStream stream per deployment (`stream`, default 'chronicle'), file storage, kept
 *    without limits, capturing `<prefix>.>`; created or updated at first use (and after each
 *    reconnect), so that its duplicate window is the one configured.
 * 2. One subject per space and event stream: `<prefix>.<space>.<stream>`, each name made a valid
 *    subject token by encodeToken (no '.', '*', '>', whitespace or control character). The
 *    message's headers carry the exact names; the body is the event record as JSON, as stored
 *    and as the sync protocol sends it (an encrypted event stays sealed: the server never holds
 *    the keys).
 * 3. `Nats-Msg-Id` is `<space>:<event id>:<cursor>`, each part encoded by encodeToken (so ':'
 *    separates them unambiguously): a re-send of a copy is dropped by JetStream within the
 *    duplicate window; the space keeps one tenant's ids from deduplicating another's; the cursor
 *    lets through the copy that wins a collision (core/copies.ts) after a losing copy of its id
 *    was published.
 * 4. `publish` sends a batch pipelined (one PubAck awaited per message, all in flight together)
 *    on one connection, so the stream stores them in the order given; it resolves when every
 *    PubAck is in, a duplicate PubAck counting as acknowledged, and rejects at the first failure.
 *    After a failure the connection is closed (dropping anything it buffered) and the next call
 *    connects again.
 * 5. Connecting never happens at construction (publish-sink.ts invariant 4); the NATS modules are
 *    loaded at first use too (peers.ts).
 */
import { createHash } from 'node:crypto';
import type { JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadNats } from './peers.ts';
import { PubAcks } from './publish-nats-acks.ts';
import type { BrokerSink, PublishedEvent } from './publish-sink.ts';

export interface NatsSinkOptions {
  /** `nats://host:port`; several servers of one cluster separated by commas. */
  url: string;
  /** The JetStream stream every space goes to (default 'chronicle'). */
  stream?: string;
  /** The first token(s) of every subject (default: the stream's name). */
  subjectPrefix?: string;
  /**
   * How long JetStream remembers message ids to drop re-sends (default 24 h). A re-send happens
   * when the publisher restarts after a crash: keep it longer than a server may stay down.
   */
  duplicateWindowMs?: number;
  /** How long to wait for a PubAck or for a connection (default 10 s). */
  timeoutMs?: number;
}

const NAME = /^[A-Za-z0-9_-]+$/;
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** Longer tokens are cut and end with a hash of the whole name (encodeToken). */
const MAX_TOKEN = 200;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A name as a subject token or header value (invariant 2): letters, digits, '_' and '-' are
 * kept; every other UTF-16 code unit becomes `%XX` (below U+0100) or `%uXXXX` (upper-case hex);
 * the empty name is `%`. One-to-one, and decoded by decodeToken. Header values use it as is.
 */
export function encodeToken(value: string): string {
  if (NAME.test(value)) return value;
  if (value === '') return '%';
  let out = '';
  for (let i = 0; i < value.length; i += 1) {
    const unit = value.charCodeAt(i);
    const char = value[i]!;
    if (NAME.test(char)) out += char;
    else if (unit < 0x100) out += `%${unit.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += `%u${unit.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return out;
}

/** The name encodeToken encoded (not for a subject token it cut: read the headers then). */
export function decodeToken(token: string): string {
  if (token === '%') return '';
  return token.replace(/%u([0-9A-F]{4})|%([0-9A-F]{2})/g, (_, u: string | undefined, b: string) =>
    String.fromCharCode(Number.parseInt(u ?? b, 16)),
  );
}

/** A subject token: encodeToken, cut with a hash when long (`~` appears in no encoded name). */
export function subjectToken(value: string): string {
  const token = encodeToken(value);
  if (token.length <= MAX_TOKEN) return token;
  const hash = createHash('sha256').update(token).digest('hex').slice(0, 32);
  return `${token.slice(0, MAX_TOKEN - 33)}~${hash}`;
}

/** The subject of an event of `space` (invariant 2). */
export function subjectOf(prefix: string, space: string, stream: string): string {
  return `${prefix}.${subjectToken(space)}.${subjectToken(stream)}`;
}

/** The message id of an event of `space` (invariant 3). */
export function messageIdOf(space: string, id: string, cursor: string): string {
  return `${encodeToken(space)}:${encodeToken(id)}:${encodeToken(cursor)}`;
}

interface Connected {
  nc: NatsConnection;
  acks: PubAcks;
}

class NatsSink implements BrokerSink {
  readonly name: string;
  private readonly servers: string[];
  private readonly stream: string;
  private readonly prefix: string;
  private readonly windowMs: number;
  private readonly timeoutMs: number;
  private connecting: Promise<Connected> | undefined;
  /** What `connecting` resolved to, to drop it synchronously (invariant 4). */
  private current: Connected | undefined;
  private closed = false;

  constructor(options: NatsSinkOptions) {
    this.stream = options.stream ?? 'chronicle';
    this.prefix = options.subjectPrefix ?? this.stream;
    if (!NAME.test(this.stream)) {
      throw new TypeError(`a JetStream stream name is letters, digits, _ and -: ${this.stream}`);
    }
    if (!PREFIX.test(this.prefix)) {
      throw new TypeError(`a subject prefix is tokens of letters, digits, _ and -: ${this.prefix}`);
    }
    this.servers = options.url
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    this.windowMs = options.duplicateWindowMs ?? DAY_MS;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.name = `nats:${this.servers.map(redact).join(',')}/${this.stream}`;
  }

  async publish(space: string, events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const connected = await this.connection();
    const { headers } = loadNats().nats;
    const spaceHeader = encodeToken(space);
    try {
      // Invariant 4: all in flight at once, stored in the order sent on this connection.
      const { replies, acked } = connected.acks.batch(events.length, this.timeoutMs);
      for (const [i, { pos, event }] of events.entries()) {
        const h = headers();
        h.set('Nats-Msg-Id', messageIdOf(space, event.id, event.cursor));
        h.set('Chronicle-Space', spaceHeader);
        h.set('Chronicle-Pos', String(pos));
        h.set('Chronicle-Type', encodeToken(event.type));
        connected.nc.publish(subjectOf(this.prefix, space, event.stream), JSON.stringify(event), {
          headers: h,
          reply: replies[i]!,
        });
      }
      // A duplicate PubAck counts as acknowledged (publish-nats-acks.ts).
      await acked;
    } catch (error) {
      this.drop(connected);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const connecting = this.connecting;
    this.connecting = undefined;
    this.current = undefined;
    const connected = await connecting?.catch(() => undefined);
    await connected?.nc.close().catch(() => {});
  }

  private connection(): Promise<Connected> {
    if (this.closed) return Promise.reject(new Error(`${this.name} is closed`));
    if (this.connecting === undefined) {
      const connecting = this.connect();
      this.connecting = connecting;
      connecting.then(
        (connected) => {
          if (this.connecting === connecting) this.current = connected;
        },
        () => {
          if (this.connecting === connecting) this.connecting = undefined;
        },
      );
    }
    return this.connecting;
  }

  private async connect(): Promise<Connected> {
    const { nats, jetstream } = loadNats();
    const nc = await nats.connect({
      servers: this.servers,
      name: 'chronicle-publisher',
      timeout: this.timeoutMs,
      // Invariant 4: a lost connection fails what is in flight; the next publish reconnects.
      reconnect: false,
    });
    const connected = { nc, acks: new PubAcks(nc) };
    void nc.closed().then(() => this.drop(connected));
    try {
      await this.ensureStream(await jetstream.jetstreamManager(nc, { timeout: this.timeoutMs }));
    } catch (error) {
      await nc.close().catch(() => {});
      throw error;
    }
    if (this.closed) {
      await nc.close().catch(() => {});
      throw new Error(`${this.name} is closed`);
    }
    return connected;
  }

  /** Creates the stream, or updates it to this configuration (invariant 1). */
  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const { jetstream, nats } = loadNats();
    const subject = `${this.prefix}.>`;
    const window = nats.nanos(this.windowMs);
    const wanted: Partial<StreamConfig> & { name: string } = {
      name: this.stream,
      subjects: [subject],
      storage: jetstream.StorageType.File,
      retention: jetstream.RetentionPolicy.Limits,
      duplicate_window: window,
    };
    try {
      await jsm.streams.add(wanted);
      return;
    } catch (error) {
      // 10058: the stream exists with another configuration (another prefix, another window).
      if (!(error instanceof jetstream.JetStreamApiError) || error.code !== 10058) throw error;
    }
    const { config } = await jsm.streams.info(this.stream);
    const subjects = config.subjects.includes(subject)
      ? config.subjects
      : [...config.subjects, subject];
    await jsm.streams.update(this.stream, {
      subjects,
      duplicate_window: window,
    });
  }

  private drop(connected: Connected): void {
    if (this.current === connected) {
      this.current = undefined;
      this.connecting = undefined;
    }
    void connected.nc.close().catch(() => {});
  }
}

function redact(server: string): string {
  try {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    return url.host;
  } catch {
    return 'nats';
  }
}

/**
 * A sink that publishes to a NATS JetStream stream (publish-sink.ts), for
 * `createSyncServer({ publish: { sink: natsSink({ url: 'nats://127.0.0.1:4222' }) } })`.
 */
export function natsSink(options: NatsSinkOptions): BrokerSink {
  return new NatsSink(options);
}
