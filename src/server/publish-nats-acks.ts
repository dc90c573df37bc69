/**
 * JetStream PubAcks for a pipelined batch (publish-nats.ts invariant 4), on one subscription per
 * connection instead of a request (an inbox, a timer, a promise) per message: each message is
 * published with a reply subject `<inbox>.<n>`, where JetStream sends its PubAck; a batch
 * resolves when every one of its acks is in, and rejects at the first error or after the timeout.
 * This took publishing from ~10,000 to ~30,000 events/s (test/bench/publish-node.ts).
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { loadNats } from './peers.ts';

interface Waiting {
  left: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The failure a PubAck (or the broker's status reply) reports, if any. */
function ackError(m: Msg): Error | undefined {
  // No stream captures the subject (503 no responders), or another status reply.
  if (m.data.length === 0) {
    const status = m.headers?.code ?? 0;
    return new Error(`JetStream did not take the message (status ${status || 'empty reply'})`);
  }
  try {
    const ack = m.json<{ seq?: number; error?: { code?: number; description?: string } }>();
    if (ack.error !== undefined) {
      return new Error(`JetStream refused the message: ${ack.error.description ?? 'error'}`);
    }
    if (typeof ack.seq !== 'number') return new Error('JetStream sent an unreadable PubAck');
    // A duplicate PubAck ({ duplicate: true }) counts: the stream holds that message already.
    return undefined;
  } catch {
    return new Error('JetStream sent an unreadable PubAck');
  }
}

export class PubAcks {
  private readonly inbox: string;
  private readonly subscription: Subscription;
  /** The batch each reply subject belongs to. */
  private readonly replies = new Map<string, Waiting>();
  private next = 0;

  constructor(nc: NatsConnection) {
    this.inbox = loadNats().nats.createInbox();
    this.subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (_error, m) => this.heard(m),
    });
    void this.subscription.closed.then(() => this.failAll(new Error('connection closed')));
  }

  /**
   * Reply subjects for `count` messages, and the promise of their acks (rejecting after
   * `timeoutMs` unless all came).
   */
  batch(count: number, timeoutMs: number): { replies: string[]; acked: Promise<void> } {
    const replies: string[] = [];
    for (let i = 0; i < count; i += 1) {
      this.next += 1;
      replies.push(`${this.inbox}.${this.next}`);
    }
    const acked = new Promise<void>((resolve, reject) => {
      const forget = () => {
        clearTimeout(timer);
        for (const reply of replies) this.replies.delete(reply);
      };
      const waiting: Waiting = {
        left: count,
        resolve: () => {
          forget();
          resolve();
        },
        reject: (error) => {
          forget();
          reject(error);
        },
      };
      const timer = setTimeout(
        () => waiting.reject(new Error(`no PubAck within ${timeoutMs} ms`)),
        timeoutMs,
      );
      for (const reply of replies) this.replies.set(reply, waiting);
    });
    return { replies, acked };
  }

  private heard(m: Msg): void {
    const waiting = this.replies.get(m.subject);
    if (waiting === undefined) return; // a batch that failed already
    this.replies.delete(m.subject);
    const error = ackError(m);
    if (error !== undefined) {
      waiting.reject(error);
      return;
    }
    waiting.left -= 1;
    if (waiting.left === 0) waiting.resolve();
  }

  private failAll(error: Error): void {
    for (const waiting of new Set(this.replies.values())) waiting.reject(error);
  }
}
