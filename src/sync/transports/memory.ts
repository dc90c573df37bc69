/**
 * A pair of in-process transports joined back to back, with optional seeded fault injection:
 * the fake network of the sync tests (in the style of Yjs's TestConnector).
 *
 * A connection exists while both ends have opened: `open()` on one end resolves once the other
 * end has opened too (both ends' reconnect loops meet). `close()` on either end closes both.
 *
 * Invariants:
 * 1. Without faults, a connection is an ordered, reliable channel: every message sent is
 *    delivered once, in order, unless the connection closes first.
 * 2. `close()` is graceful: what the closing end sent before is delivered to the other end
 *    before its onClose runs. `kill()` and injected disconnects are not: in-flight messages
 *    are lost, as when a network dies.
 * 3. A dropped message kills its connection (with reason 'dropped'): a stream socket never loses
 *    one message and then delivers the next, and the protocol relies on that order.
 * 4. Duplicates and reordering break nothing silently: duplicates are harmless to the protocol,
 *    reordering makes the receiver refuse a gap and reconnect.
 * 5. Faults are drawn from a seeded PRNG: the same seed and the same calls give the same run.
 * 6. A binary message is delivered as a copy of the bytes sent (as a socket or structured clone
 *    would), in the same order as text messages, to onBinary listeners.
 */
import { SyncError } from '../../core/errors.ts';
import type { Transport, TransportCloseInfo } from '../../core/sync-types.ts';

export interface MemoryFaults {
  /** Each message is delayed by a random 0..delayMs (order kept, invariant 1). */
  delayMs?: number;
  /** Probability that a message swaps places with the one queued before it. */
  reorder?: number;
  /** Probability that a message is delivered twice. */
  duplicate?: number;
  /** Probability that a message is lost, which kills the connection (invariant 3). */
  drop?: number;
  /** Probability, per message sent, that the connection dies just after it. */
  disconnect?: number;
}

export interface MemoryTransportOptions {
  seed?: number;
  faults?: MemoryFaults;
  /** Runs `fn` after `delayMs` (default: a microtask for 0, setTimeout otherwise). */
  schedule?: (fn: () => void, delayMs: number) => void;
  /**
   * Which ends carry binary messages (sendBinary/onBinary, core/sync-types.ts): true for both,
   * or one flag per end. Default false: text only, as a transport without them. Binary
   * messages take the same queue as text ones, with the same faults (invariant 6).
   */
  binary?: boolean | readonly [boolean, boolean];
}

export interface MemoryTransport extends Transport {
  /** Kills the current connection as a network failure would (invariant 2). */
  kill(reason?: string): void;
  readonly isOpen: boolean;
}

/** mulberry32: small, fast, good enough for fault injection. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const defaultSchedule = (fn: () => void, delayMs: number): void => {
  if (delayMs <= 0) queueMicrotask(fn);
  else setTimeout(fn, delayMs);
};

/** A text or binary message; `undefined` marks a graceful close. */
type Message = string | Uint8Array | undefined;

interface Connection {
  alive: boolean;
  /** Messages in flight towards end 0 and end 1; `undefined` marks a graceful close. */
  queues: [Message[], Message[]];
  closed: [boolean, boolean];
}

interface End {
  opening: { resolve: () => void; reject: (error: Error) => void }[];
  wantsOpen: boolean;
  messageListeners: Set<(text: string) => void>;
  binaryListeners: Set<(bytes: Uint8Array) => void>;
  closeListeners: Set<(info: TransportCloseInfo) => void>;
}

/** Two transports joined back to back. */
export function memoryTransportPair(
  options: MemoryTransportOptions = {},
): [MemoryTransport, MemoryTransport] {
  const random = seededRandom(options.seed ?? 1);
  const faults = options.faults ?? {};
  const schedule = options.schedule ?? defaultSchedule;
  const ends: [End, End] = [newEnd(), newEnd()];
  let connection: Connection | undefined;

  const chance = (p: number | undefined) => p !== undefined && p > 0 && random() < p;

  const notifyClose = (side: 0 | 1, conn: Connection, info: TransportCloseInfo) => {
    if (conn.closed[side]) return;
    conn.closed[side] = true;
    for (const listener of [...ends[side].closeListeners]) listener(info);
  };

  const kill = (conn: Connection, reason: string) => {
    if (!conn.alive && conn.closed[0] && conn.closed[1]) return;
    conn.alive = false;
    conn.queues[0].length = 0;
    conn.queues[1].length = 0;
    if (connection === conn) connection = undefined;
    const info: TransportCloseInfo = {
      code: 1006,
      reason,
      error: { code: 'TRANSPORT', message: `connection lost: ${reason}` },
    };
    schedule(() => {
      notifyClose(0, conn, info);
      notifyClose(1, conn, info);
    }, 0);
  };

  /** Delivers the head of the queue towards `side` (one call per message sent, invariant 1). */
  const deliverNext = (side: 0 | 1, conn: Connection) => {
    const queue = conn.queues[side];
    if (queue.length === 0) return;
    const text = queue.shift();
    if (text === undefined) {
      notifyClose(side, conn, { code: 1000, reason: 'closed by peer' });
      return;
    }
    if (conn.closed[side]) return;
    if (typeof text === 'string') {
      for (const listener of [...ends[side].messageListeners]) listener(text);
    } else {
      for (const listener of [...ends[side].binaryListeners]) listener(text.slice());
    }
  };

  const enqueue = (side: 0 | 1, conn: Connection, text: Message) => {
    conn.queues[side].push(text);
    const delay = faults.delayMs ? Math.floor(random() * (faults.delayMs + 1)) : 0;
    schedule(() => deliverNext(side, conn), delay);
  };

  const tryConnect = () => {
    if (connection !== undefined || !ends[0].wantsOpen || !ends[1].wantsOpen) return;
    connection = { alive: true, queues: [[], []], closed: [false, false] };
    for (const end of ends) {
      end.wantsOpen = false;
      for (const waiter of end.opening.splice(0)) waiter.resolve();
    }
  };

  const makeEnd = (side: 0 | 1): MemoryTransport => {
    const me = ends[side];
    const other = (1 - side) as 0 | 1;
    const send = (text: string | Uint8Array) => {
      const conn = connection;
      if (conn === undefined || !conn.alive) {
        throw new SyncError('TRANSPORT', 'the memory transport is not open');
      }
      if (chance(faults.drop)) {
        kill(conn, 'dropped');
        return;
      }
      const queue = conn.queues[other];
      enqueue(other, conn, text);
      if (chance(faults.reorder) && queue.length >= 2) {
        const last = queue.length - 1;
        const before = queue[last - 1];
        if (before !== undefined) {
          queue[last - 1] = queue[last];
          queue[last] = before;
        }
      }
      if (chance(faults.duplicate)) enqueue(other, conn, text);
      if (chance(faults.disconnect)) schedule(() => kill(conn, 'disconnected'), 0);
    };
    const binary = options.binary;
    const offersBinary = typeof binary === 'boolean' ? binary : binary?.[side] === true;
    const end: MemoryTransport = {
      kind: 'memory',
      get isOpen() {
        return connection?.alive === true;
      },
      open() {
        if (connection?.alive) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
          me.opening.push({ resolve, reject });
          me.wantsOpen = true;
          tryConnect();
        });
      },
      send(text: string) {
        send(text);
      },
      onMessage(listener) {
        me.messageListeners.add(listener);
        return () => me.messageListeners.delete(listener);
      },
      onClose(listener) {
        me.closeListeners.add(listener);
        return () => me.closeListeners.delete(listener);
      },
      close(code = 1000, reason = 'closed') {
        for (const waiter of me.opening.splice(0)) {
          waiter.reject(new SyncError('TRANSPORT', 'closed while opening'));
        }
        me.wantsOpen = false;
        const conn = connection;
        if (conn === undefined || !conn.alive) return;
        conn.alive = false;
        connection = undefined;
        conn.queues[side].length = 0;
        enqueue(other, conn, undefined);
        schedule(() => notifyClose(side, conn, { code, reason }), 0);
      },
      kill(reason = 'killed') {
        if (connection !== undefined) kill(connection, reason);
      },
    };
    if (offersBinary) {
      end.sendBinary = (bytes) => send(bytes.slice());
      end.onBinary = (listener) => {
        me.binaryListeners.add(listener);
        return () => me.binaryListeners.delete(listener);
      };
    }
    return end;
  };

  return [makeEnd(0), makeEnd(1)];
}

function newEnd(): End {
  return {
    opening: [],
    wantsOpen: false,
    messageListeners: new Set(),
    binaryListeners: new Set(),
    closeListeners: new Set(),
  };
}
