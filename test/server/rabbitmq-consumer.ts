/**
 * Reads a RabbitMQ stream from its start, as a consumer of the broker publisher's messages does
 * (publish-rabbitmq.ts): every message with its properties.
 */
import { type Client, connect, Offset } from 'rabbitmq-stream-js-client';
import type { Message } from 'rabbitmq-stream-js-client/dist/publisher';
import { parseRabbitmqUrl } from '../../src/server/publish-rabbitmq.ts';
import { patchStreamClient } from '../../src/server/rabbitmq-stream-quirks.ts';
import type { Consumed } from './publish-sink-conformance.ts';

export async function rawRabbitClient(url: string): Promise<Client> {
  patchStreamClient();
  return connect({ ...parseRabbitmqUrl(url) });
}

/**
 * Every message of `stream` from its start. A producer without a reference first appends an end
 * marker (no `space` property): the read ends at it, so nothing the broker held is left out.
 */
export async function readRabbitStream(url: string, stream: string): Promise<Message[]> {
  const client = await rawRabbitClient(url);
  try {
    const marker = await client.declarePublisher({ stream });
    const end = `end-${Math.random()}`;
    await marker.send(Buffer.from(end), { messageProperties: { messageId: end } });
    await marker.flush();
    const messages: Message[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('end marker never read')), 60_000);
      client
        .declareConsumer({ stream, offset: Offset.first() }, (message) => {
          if (message.messageProperties?.messageId === end) {
            clearTimeout(timer);
            resolve();
          } else {
            messages.push(message);
          }
        })
        .catch(reject);
    });
    return messages.filter((m) => m.applicationProperties?.space !== undefined);
  } finally {
    await client.close().catch(() => {});
  }
}

/** A message as the sink conformance suite compares them. */
export function consumedOf(message: Message): Consumed {
  const props = message.applicationProperties ?? {};
  return {
    space: String(props.space),
    pos: Number(props.pos),
    id: String(message.messageProperties?.messageId),
  };
}
