/**
 * A broker sink (publish-sink.ts) from a URL, for the CLI's `--publish`: the scheme picks the
 * broker. One line per broker; the URL's scheme is the only thing looked at here.
 */
import { natsSink } from './publish-nats.ts';
import { rabbitmqSink } from './publish-rabbitmq.ts';
import type { BrokerSink } from './publish-sink.ts';

export interface SinkUrlOptions {
  /** The broker's stream (a JetStream stream, a RabbitMQ stream) the events go to (default 'chronicle'). */
  stream?: string;
}

/** The schemes sinkFromUrl knows, for messages. */
export const SINK_SCHEMES = ['nats://', 'rabbitmq-stream://'] as const;

/** The sink for `url`; a TypeError naming the known schemes for any other. */
export function sinkFromUrl(url: string, options: SinkUrlOptions = {}): BrokerSink {
  const stream = options.stream === undefined ? {} : { stream: options.stream };
  if (url.startsWith('nats://')) return natsSink({ url, ...stream });
  if (url.startsWith('rabbitmq-stream://')) return rabbitmqSink({ url, ...stream });
  throw new TypeError(`--publish takes a URL starting with ${SINK_SCHEMES.join(' or ')}: ${url}`);
}
