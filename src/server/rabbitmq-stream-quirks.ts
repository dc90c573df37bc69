/**
 * Three defects of rabbitmq-stream-js-client 1.0.0 that rabbitmqSink works around, each kept
 * here so that it can go once the client fixes it:
 *
 * 1. Every connection sends ExchangeCommandVersions (command 0x1b), which RabbitMQ added in
 *    3.11: a 3.9 or 3.10 broker (Debian 12 ships 3.10.8) answers with a Close, so no connection
 *    ever opens. The exchange only matters for features of 3.11 and later (super streams,
 *    filtering, stream stats), none of which the sink uses: it is skipped for brokers below 3.11.
 * 2. A command the broker sends that the client does not know (a Close above all) makes its
 *    decoder throw inside the socket's `data` handler: an uncaught exception that would take the
 *    whole sync server down. Such a connection is destroyed instead, which the sink sees as a
 *    closed connection (and reconnects on next use).
 * 3. A publisher whose connection closed keeps its unsent messages and retries them on every
 *    turn of the event loop (setImmediate) forever: a busy loop that holds a core. The sink
 *    drops a dead publisher's queue (`dropQueue`).
 *
 * The patches touch the client's Connection class, which the package loads once per process:
 * they apply to every user of the client in the process, and keep its behaviour on 3.11+.
 */
import { createRequire } from 'node:module';

interface ConnectionInternals {
  peerProperties?: Record<string, string>;
  socket?: { destroy(error?: Error): void };
  exchangeCommandVersions(): Promise<unknown>;
  received(data: Buffer): void;
}

interface ConnectionClass {
  prototype: ConnectionInternals;
}

const PATCHED = Symbol.for('chronicle.rabbitmq-stream-quirks');

/** The broker's version below 3.11 (quirk 1): `version` is its peer property, e.g. '3.10.8'. */
export function predatesCommandVersions(version: string | undefined): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version ?? '');
  if (match === null) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major < 3 || (major === 3 && minor < 11);
}

/** Applies quirks 1 and 2 to the client's Connection class, once per process. */
export function patchStreamClient(): void {
  const nodeRequire = createRequire(import.meta.url);
  const { Connection } = nodeRequire('rabbitmq-stream-js-client/dist/connection') as {
    Connection: ConnectionClass & { [PATCHED]?: true };
  };
  if (Connection[PATCHED]) return;
  Connection[PATCHED] = true;
  const proto = Connection.prototype;
  // Another version of the client, whose internals are not these, is left as it is (the peer
  // range allows later 1.x releases): each patch applies only to the method it knows.
  const exchange = proto.exchangeCommandVersions;
  if (typeof exchange === 'function') {
    proto.exchangeCommandVersions = function (this: ConnectionInternals) {
      if (predatesCommandVersions(this.peerProperties?.version)) return Promise.resolve(true);
      return exchange.call(this);
    };
  }
  const received = proto.received;
  if (typeof received === 'function') {
    proto.received = function (this: ConnectionInternals, data: Buffer) {
      try {
        received.call(this, data);
      } catch (error) {
        this.socket?.destroy(error instanceof Error ? error : new Error(String(error)));
      }
    };
  }
}

/** Quirk 3: empties a publisher's queue of unsent messages, stopping its retry loop. */
export function dropQueue(publisher: object): void {
  const queue = (publisher as { queue?: unknown }).queue;
  if (Array.isArray(queue)) queue.length = 0;
}
