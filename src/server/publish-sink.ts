/**
 * What the broker publisher (publisher.ts) needs from a message broker: a sink that takes one
 * space's events in log order and resolves once the broker holds them durably. Each broker is one
 * short file behind this interface (publish-nats.ts, publish-rabbitmq.ts); a Kafka or Cassandra
 * sink would be another, and none ships that is not tested against the real broker.
 *
 * Invariants (every sink keeps them; test/server/publish-sink-conformance.ts checks them against
 * the real broker):
 * 1. `publish` hands the broker the events in the order given and resolves only once the broker
 *    has acknowledged every one durably; it rejects (nothing is known of the batch) otherwise.
 * 2. Exactly once as consumers see it: an event published again (the publisher crashed between
 *    the broker's acknowledgement and writing its own position, or a batch's promise rejected
 *    after the broker took part of it) reaches consumers no second time. The sink has the broker
 *    drop the repeat: by the event id (NATS `Nats-Msg-Id`) or by the position (a RabbitMQ
 *    stream's named producer and its publishing id).
 * 3. Positions grow within a space: a sink may rely on `pos` increasing from one call to the
 *    next for one space (holes allowed: core/copies.ts), never on it being dense.
 * 4. A sink never throws at construction for an unreachable broker: it connects on first use and
 *    again after a failure, so that a broker that is down delays publishing and nothing else.
 */
import type { StoredEventRecord } from '../core/events.ts';

/** One event as the publisher hands it to a sink. */
export interface PublishedEvent {
  /** Its position in the space's receive-order log (invariant 3). */
  pos: number;
  event: StoredEventRecord;
}

export interface BrokerSink {
  /** For logs and metrics: 'nats:<url>/<stream>', 'rabbitmq:<url>/<stream>'. */
  readonly name: string;
  /** Publishes one space's events, in order (invariants 1 and 2). */
  publish(space: string, events: readonly PublishedEvent[]): Promise<void>;
  /**
   * The highest position of `space` the broker has acknowledged, when the broker can tell
   * (a RabbitMQ stream's named producer can); undefined when it cannot. The publisher resumes
   * from the greater of this and its own durable position.
   */
  acknowledged?(space: string): Promise<number | undefined>;
  close(): Promise<void>;
}
