/**
 * The server's named limits, each with a default. Every one has a test that goes over it and
 * asserts the code (test/server/limits.test.ts).
 *
 * Invariants:
 * 1. Every queue, buffer and count a client can grow is bounded by one of these.
 * 2. Going over a limit costs the offending connection (an error, or a close), never the process
 *    or the other connections.
 */
import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../core/clock-skew.ts';
import {
  DEFAULT_SERVER_EVENT_BYTES,
  DEFAULT_SYNC_LIMITS,
  type SyncLimits,
} from '../sync/protocol.ts';

export interface ServerLimits extends SyncLimits {
  /**
   * (SyncLimits) Bytes of one WebSocket message; `ws` closes with 1009 past it, before buffering
   * the rest of the frame. Default 1 MiB.
   */
  maxMessageBytes: number;
  /** (SyncLimits) Events in one `events` message. Default 2000. */
  maxBatchEvents: number;
  /**
   * (SyncLimits) JSON bytes of one event's data + meta. Default 512 KiB (an event must fit in a
   * message). Announced in hello like every SyncLimits field: clients refuse larger appends.
   */
  maxEventBytes: number;
  /** Nesting depth of a message's JSON (envelope + event + data). Default 80. */
  maxMessageDepth: number;
  /**
   * Bytes queued in a socket's send buffer (ws `bufferedAmount`). A client that does not read
   * (slow consumer) past it is closed with 1013. Default 8 MiB.
   */
  maxBufferedBytes: number;
  /**
   * How long a connection may hold unacknowledged batches with no ack arriving: past it the peer
   * is a slow consumer (it stopped reading, or cannot keep up with the space) and is closed with
   * LIMIT_EXCEEDED and 1013; it reconnects and resumes from its checkpoint. Default 30 s.
   */
  maxAckWaitMs: number;
  /** Open connections in one space; the next gets LIMIT_EXCEEDED and close 1013. Default 1,000. */
  maxConnectionsPerSpace: number;
  /** Open connections in the whole server. Default 10,000. */
  maxConnections: number;
  /** Sustained messages per second per connection (token bucket). Default 200. */
  maxMessagesPerSecond: number;
  /** Messages a connection may send in a burst above the rate. Default 400. */
  messageBurst: number;
  /** Bytes of all the headers of an HTTP request (node's maxHeaderSize → 431). Default 16 KiB. */
  maxHeaderBytes: number;
  /** Headers of one HTTP request; more are refused with 431. Default 100. */
  maxHeadersCount: number;
  /** Time to receive a request's headers (slowloris). Default 10 s. */
  headersTimeoutMs: number;
  /** A ping goes out every interval; a socket that missed the last pong is terminated. Default 30 s. */
  heartbeatIntervalMs: number;
  /** After a close frame, how long a peer has to answer before the socket is destroyed. Default 5 s. */
  closeGraceMs: number;
  /**
   * An event whose HLC wall time is further ahead of the server's clock is refused alone with
   * CLOCK_SKEW (core/clock-skew.ts); clients correct their clock from the server's at hello.
   * Default 5 minutes.
   */
  maxClockAheadMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  ...DEFAULT_SYNC_LIMITS,
  maxMessageBytes: 1024 * 1024,
  maxBatchEvents: 2000,
  maxEventBytes: DEFAULT_SERVER_EVENT_BYTES,
  maxMessageDepth: 80,
  maxBufferedBytes: 8 * 1024 * 1024,
  maxAckWaitMs: 30_000,
  maxConnectionsPerSpace: 1_000,
  maxConnections: 10_000,
  maxMessagesPerSecond: 200,
  messageBurst: 400,
  maxHeaderBytes: 16 * 1024,
  maxHeadersCount: 100,
  headersTimeoutMs: 10_000,
  heartbeatIntervalMs: 30_000,
  closeGraceMs: 5_000,
  maxClockAheadMs: DEFAULT_MAX_CLOCK_AHEAD_MS,
};

export function resolveLimits(overrides: Partial<ServerLimits> = {}): ServerLimits {
  const limits: ServerLimits = { ...DEFAULT_SERVER_LIMITS };
  for (const key of Object.keys(DEFAULT_SERVER_LIMITS) as (keyof ServerLimits)[]) {
    const value = overrides[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new TypeError(`limits.${key} must be a positive number`);
    }
    limits[key] = value;
  }
  return limits;
}

/** A token bucket: `rate` tokens a second, holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  private readonly rate: number;
  private readonly burst: number;

  constructor(rate: number, burst: number, now: number) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
