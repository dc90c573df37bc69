/**
 * A Transport between two endpoints on a BroadcastChannel (tabs, workers, or Node ≥ 18).
 *
 * Design: a channel is a bus that every endpoint of that name hears, so a connection is made
 * point to point on top of it. Each transport has a random endpoint id; every envelope names its
 * sender, its addressee and a connection id, and an endpoint ignores what is not addressed to its
 * current connection. The handshake:
 *   - open(): post `syn { from, conn }` with a fresh connection id;
 *   - an opening endpoint that hears a `syn` from an endpoint with a greater id accepts it: it
 *     answers `ack { from, to, conn }` with that conn id and waits; one with a smaller id re-posts
 *     its own syn instead (the other side may have started listening after the first one went out);
 *   - the opener that receives an `ack` for its conn answers `ok` and is connected; the acceptor
 *     is connected when the `ok` arrives. An opener already paired answers `fin` instead, and the
 *     acceptor offers itself again with a syn;
 *   - `msg { text }` carries protocol messages, `fin` closes, `beat` is a heartbeat.
 *
 * Invariants:
 * 1. An endpoint is in at most one connection; messages of other connections are never delivered.
 * 2. Messages of one connection arrive in order (BroadcastChannel delivers one sender's messages
 *    in posting order).
 * 3. A peer that vanishes without `fin` (tab killed) is detected by missing heartbeats within
 *    3 × heartbeatMs, and the connection closes with an error.
 * 4. open() rejects when no peer answers within openTimeoutMs, so a reconnect loop backs off.
 */
import { SyncError } from '../../core/errors.ts';
import type { Transport, TransportCloseInfo } from '../../core/sync-types.ts';

export interface BroadcastChannelTransportOptions {
  /** open() rejects when no peer answers within this time. Default 10 s. */
  openTimeoutMs?: number;
  /** Heartbeat period; 0 disables heartbeats. Default 5 s. */
  heartbeatMs?: number;
}

type Envelope =
  | { v: 1; kind: 'syn'; from: string; conn: string }
  | { v: 1; kind: 'ack' | 'ok' | 'fin' | 'beat'; from: string; to: string; conn: string }
  | { v: 1; kind: 'msg'; from: string; to: string; conn: string; text: string };

function randomId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  if (e.v !== 1 || typeof e.from !== 'string' || typeof e.conn !== 'string') return false;
  switch (e.kind) {
    case 'syn':
      return true;
    case 'ack':
    case 'ok':
    case 'fin':
    case 'beat':
      return typeof e.to === 'string';
    case 'msg':
      return typeof e.to === 'string' && typeof e.text === 'string';
    default:
      return false;
  }
}

type State =
  | { kind: 'idle' }
  | {
      kind: 'opening';
      conn: string;
      /** Set while this endpoint accepted someone's syn and waits for its `ok`. */
      accepted?: { conn: string; peer: string } | undefined;
      resolve: () => void;
      reject: (e: Error) => void;
    }
  | { kind: 'open'; conn: string; peer: string; lastHeard: number };

export function broadcastChannelTransport(
  channelName: string,
  options: BroadcastChannelTransportOptions = {},
): Transport {
  const me = randomId();
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const messageListeners = new Set<(text: string) => void>();
  const closeListeners = new Set<(info: TransportCloseInfo) => void>();
  let channel: BroadcastChannel | undefined;
  let state: State = { kind: 'idle' };
  let openTimer: ReturnType<typeof setTimeout> | undefined;
  let beatTimer: ReturnType<typeof setInterval> | undefined;

  const post = (envelope: Envelope) => channel?.postMessage(envelope);

  const stopTimers = () => {
    if (openTimer !== undefined) clearTimeout(openTimer);
    if (beatTimer !== undefined) clearInterval(beatTimer);
    openTimer = undefined;
    beatTimer = undefined;
  };

  const shutdown = () => {
    stopTimers();
    channel?.close();
    channel = undefined;
    state = { kind: 'idle' };
  };

  const ended = (info: TransportCloseInfo) => {
    shutdown();
    for (const listener of [...closeListeners]) listener(info);
  };

  const connected = (conn: string, peer: string) => {
    const opening = state;
    if (openTimer !== undefined) clearTimeout(openTimer);
    openTimer = undefined;
    state = { kind: 'open', conn, peer, lastHeard: Date.now() };
    if (heartbeatMs > 0) {
      beatTimer = setInterval(() => {
        if (state.kind !== 'open') return;
        if (Date.now() - state.lastHeard > 3 * heartbeatMs) {
          ended({
            reason: 'peer silent',
            error: { code: 'TRANSPORT', message: 'the peer stopped answering' },
          });
          return;
        }
        post({ v: 1, kind: 'beat', from: me, to: state.peer, conn: state.conn });
      }, heartbeatMs);
    }
    if (opening.kind === 'opening') opening.resolve();
  };

  const onEnvelope = (envelope: Envelope) => {
    if (envelope.from === me) return;
    if (envelope.kind === 'syn') {
      if (state.kind !== 'opening' || state.accepted !== undefined) return;
      if (me < envelope.from) {
        state.accepted = { conn: envelope.conn, peer: envelope.from };
        post({ v: 1, kind: 'ack', from: me, to: envelope.from, conn: envelope.conn });
      } else {
        post({ v: 1, kind: 'syn', from: me, conn: state.conn });
      }
      return;
    }
    if (envelope.to !== me) return;
    switch (envelope.kind) {
      case 'ack':
        if (state.kind === 'opening' && envelope.conn === state.conn && !state.accepted) {
          post({ v: 1, kind: 'ok', from: me, to: envelope.from, conn: envelope.conn });
          connected(envelope.conn, envelope.from);
        } else if (!(state.kind === 'open' && state.conn === envelope.conn)) {
          post({ v: 1, kind: 'fin', from: me, to: envelope.from, conn: envelope.conn });
        }
        return;
      case 'ok':
        if (
          state.kind === 'opening' &&
          state.accepted?.conn === envelope.conn &&
          state.accepted.peer === envelope.from
        ) {
          connected(envelope.conn, envelope.from);
        }
        return;
      case 'fin':
        if (
          state.kind === 'opening' &&
          state.accepted?.conn === envelope.conn &&
          state.accepted.peer === envelope.from
        ) {
          // The opener paired with someone else: offer this endpoint again.
          state.accepted = undefined;
          post({ v: 1, kind: 'syn', from: me, conn: state.conn });
          return;
        }
        if (state.kind === 'open' && state.conn === envelope.conn && state.peer === envelope.from) {
          ended({ code: 1000, reason: 'closed by peer' });
        }
        return;
      case 'beat':
      case 'msg':
        if (state.kind !== 'open' || state.conn !== envelope.conn || state.peer !== envelope.from) {
          return;
        }
        state.lastHeard = Date.now();
        if (envelope.kind === 'msg') {
          for (const listener of [...messageListeners]) listener(envelope.text);
        }
        return;
      default: {
        const never: never = envelope;
        throw new Error(`unknown envelope ${JSON.stringify(never)}`);
      }
    }
  };

  return {
    kind: 'broadcast-channel',
    open() {
      if (state.kind === 'open') return Promise.resolve();
      if (state.kind === 'opening') {
        return Promise.reject(new SyncError('TRANSPORT', 'open() is already in progress'));
      }
      return new Promise<void>((resolve, reject) => {
        const conn = randomId();
        state = { kind: 'opening', conn, resolve, reject };
        channel = new BroadcastChannel(channelName);
        channel.onmessage = (event: MessageEvent) => {
          if (isEnvelope(event.data)) onEnvelope(event.data);
        };
        openTimer = setTimeout(() => {
          shutdown();
          reject(new SyncError('TRANSPORT', `no peer answered on channel "${channelName}"`));
        }, options.openTimeoutMs ?? 10_000);
        post({ v: 1, kind: 'syn', from: me, conn });
      });
    },
    send(text: string) {
      if (state.kind !== 'open') {
        throw new SyncError('TRANSPORT', 'the broadcast channel transport is not open');
      }
      post({ v: 1, kind: 'msg', from: me, to: state.peer, conn: state.conn, text });
    },
    onMessage(listener) {
      messageListeners.add(listener);
      return () => messageListeners.delete(listener);
    },
    onClose(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
    close(code = 1000, reason = 'closed') {
      if (state.kind === 'opening') {
        const { reject } = state;
        shutdown();
        reject(new SyncError('TRANSPORT', 'closed while opening'));
        return;
      }
      if (state.kind !== 'open') return;
      post({ v: 1, kind: 'fin', from: me, to: state.peer, conn: state.conn });
      ended({ code, reason });
    },
  };
}
