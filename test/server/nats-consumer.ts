/**
 * Reads a JetStream stream from its start, as a consumer of the broker publisher's messages
 * does (publish-nats.ts): an ordered consumer, every message with its headers.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { decodeToken } from '../../src/server/publish-nats.ts';

export interface ConsumedMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  space: string;
  pos: number;
  type: string;
  event: StoredEventRecord;
}

/** Every message the stream holds now, in stream order. */
export async function readStream(url: string, stream = 'chronicle'): Promise<ConsumedMessage[]> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    let last: number;
    try {
      last = (await jsm.streams.info(stream)).state.last_seq;
    } catch {
      return []; // not created yet: nothing published
    }
    const out: ConsumedMessage[] = [];
    if (last === 0) return out;
    const consumer = await jetstream(nc).consumers.get(stream);
    while (out.length === 0 || out[out.length - 1]!.seq < last) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
      for await (const m of batch) {
        const h = m.headers;
        out.push({
          seq: m.seq,
          subject: m.subject,
          msgId: h?.get('Nats-Msg-Id'),
          space: decodeToken(h?.get('Chronicle-Space') ?? ''),
          pos: Number(h?.get('Chronicle-Pos')),
          type: decodeToken(h?.get('Chronicle-Type') ?? ''),
          event: m.json<StoredEventRecord>(),
        });
        if (m.seq >= last) break;
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** The event ids the stream holds for `space`, in stream order. */
export function idsOf(messages: readonly ConsumedMessage[], space: string): string[] {
  return messages.filter((m) => m.space === space).map((m) => m.event.id);
}

/** How many messages the stream holds (0 before it exists). */
export async function streamCount(url: string, stream = 'chronicle'): Promise<number> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(stream)).state.messages;
  } catch {
    return 0;
  } finally {
    await nc.close();
  }
}
