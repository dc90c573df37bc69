/**
 * One link of the Syncer (controller.ts): a connection to one sync target kept alive, one peer
 * session at a time over its transport, reconnecting with backoff; it reports its state and
 * what its sessions saw to the controller, which keeps the marks and the combined status.
 *
 * Invariants:
 * 1. Reconnect delays use exponential backoff with full jitter: random() × min(maxMs,
 *    initialMs × 2^attempt). The attempt count resets only once a connection stayed open for
 *    healthyAfterMs, never on a mere open (a server that accepts and drops at once is backed off).
 * 2. A PROTOCOL_VERSION error stops reconnecting: retrying cannot help. Every other failure
 *    (auth included: a token function may hand out a fresh token) is retried with backoff.
 */

import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../core/clock-skew.ts';
import { negotiateLimits, sendableEventBytes } from '../core/sync.ts';
import type {
  RefusedEvent,
  SyncConnection,
  SyncState,
  SyncStatus,
  SyncTarget,
  Transport,
} from '../core/sync-types.ts';
import type { StoreInternals } from '../store/internal.ts';
import type { ClockKeeper } from './clock-keeper.ts';
import { HistoryRequests, type HistoryRoute, pageVerifier } from './history-client.ts';
import { limitsOfPeer, type SyncLimits } from './protocol.ts';
import { type PeerSession, type SessionStats, startPeerSession } from './session.ts';
import type { JoinOptions } from './session-join.ts';
import type { storeSyncLog } from './store-log.ts';
import type { StrictSync } from './strict-sync.ts';
import type { AckedMark } from './sync-meta.ts';
import { type WebSocketConstructor, webSocketTransport } from './transports/websocket.ts';

export interface BackoffOptions {
  /** First retry ceiling. Default 500 ms. */
  initialMs: number;
  /** Largest retry ceiling. Default 30 s. */
  maxMs: number;
  /** A connection open this long resets the backoff. Default 10 s. */
  healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 30_000,
  healthyAfterMs: 10_000,
};

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Full-jitter delay for the attempt-th retry (invariant 1). */
export function backoffDelay(
  attempt: number,
  backoff: BackoffOptions,
  random: () => number,
): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export interface Link {
  state: SyncState;
  transport: string;
  peer?: string;
  server?: boolean;
  lastSyncedAt?: number;
  lastError?: { code: string; message: string; eventId?: string };
  close(): Promise<void>;
  /** Drops the current connection; the link reconnects (with a hello under the current id). */
  reconnect?(): void;
  /** Lets the current session try to send again (a strict hold let go: strict-sync.ts 3). */
  poke?(): void;
  /** Where a history read goes through this link now (history-client.ts), or why not. */
  history?(): HistoryRoute;
}

/** What a link needs of its controller (controller.ts invariants in brackets). */
export interface LinkHost {
  internals: StoreInternals;
  log: ReturnType<typeof storeSyncLog>;
  backoff: BackoffOptions;
  random: () => number;
  timers: Timers;
  /** This side's limits, and the ones given in its options (handed to each session). */
  ownLimits: SyncLimits;
  limits: Partial<SyncLimits> | undefined;
  /** Announce this replica as a sync server in hello. */
  server: boolean;
  WebSocket: WebSocketConstructor | undefined;
  historyTimeoutMs: number | undefined;
  /** The controller read its marks from meta: nothing connects before. */
  ready: Promise<void>;
  closed(): boolean;
  /** Every link of the controller, this one included while it runs. */
  links: Set<Link>;
  strict: StrictSync;
  shareGuard: ClockKeeper['guard'];
  emit(): void;
  ackedOf(peer: string): AckedMark | undefined;
  saveAcked(peer: string, mark: AckedMark): void;
  /** Highest seq of this replica's events at positions (from, to] [3]. */
  ownSeqIn(from: number, to: number): Promise<number>;
  pendingOf(link: Link): number;
  refused(): RefusedEvent[];
  noteRefused(entry: RefusedEvent): void;
  noteSynced(time: number): void;
  /** Follows a server's clock [4, 8]; a failed re-stamp is reported on the link. */
  followServer(serverTime: number | undefined, link: Link, force?: boolean): Promise<void>;
  /** A server's hello came from this replica id. */
  serverMet(replica: string): void;
  serverChanged(): void;
  /** What a session asks of a server's snapshots [12]; undefined: it replays. */
  joinOptions(): Promise<JoinOptions | undefined>;
  wakeRouteWaiters(): void;
  waitForRoute(): Promise<boolean>;
}

/** Starts a link to `target`; it runs until closed (or a PROTOCOL_VERSION error: invariant 2). */
export function connectLink(host: LinkHost, target: SyncTarget): SyncConnection {
  const { internals, log, timers, random, backoff } = host;
  const transport: Transport =
    'url' in target
      ? webSocketTransport(target.url, {
          // A list of URLs is shuffled with the same source as the backoff (tests inject it).
          random,
          ...(target.token !== undefined ? { token: target.token } : {}),
          ...(host.WebSocket !== undefined ? { WebSocket: host.WebSocket } : {}),
        })
      : target;
  let stopped = false;
  let attempt = 0;
  let session: PeerSession | undefined;
  let retryTimer: unknown;
  let healthyTimer: unknown;
  /** Ends a backoff sleep early (stop only: a stray close must not skip the backoff). */
  let wakeSleep: (() => void) | undefined;
  /** Resolves the wait for the current connection to close. */
  let connectionClosed: (() => void) | undefined;
  /**
   * From the link's start, or an attempt to open its connection, to that attempt's hello or
   * failure: history reads wait for it (history-client.ts invariant 4).
   */
  let opening = true;
  const opened = () => {
    opening = false;
    host.wakeRouteWaiters();
  };

  // Protocol 9: the history reads of this link's sessions (history-client.ts).
  const historyRequests = new HistoryRequests(
    timers,
    host.historyTimeoutMs,
    pageVerifier(log.integrity),
  );
  /** The current session's server announced history in its hello. */
  let servesHistory = false;
  const link: Link = {
    state: 'connecting',
    transport: transport.kind,
    close: () => stop(),
    reconnect: () => transport.close(1000, 'this replica moved to a fresh id'),
    poke: () => session?.poke(),
    history: () => {
      const current = session;
      if (opening) {
        return {
          ok: false,
          why: 'older history is on the server, and the connection to it did not open in time',
          wait: host.waitForRoute,
        };
      }
      if (current === undefined || link.server !== true) {
        return { ok: false, why: 'older history is on the server, and it is not connected' };
      }
      if (!servesHistory) {
        return {
          ok: false,
          why: 'older history is on the server, which does not serve it (an older server, or one whose storage keeps no history by cursor)',
        };
      }
      return {
        ok: true,
        requests: historyRequests,
        send: (request) => current.requestHistory(request),
      };
    },
  };

  /** This session's acknowledged mark: undefined until the peer's start position is known. */
  let base: AckedMark | undefined;
  let baseAsked = false;

  const onStats = (stats: SessionStats) => {
    const peer = stats.peer?.replica;
    if (peer !== undefined) {
      link.peer = peer;
      if (stats.peerPulled && !baseAsked) {
        // The peer holds this log up to startPos: find the own seq there, scanning only from
        // the last known mark (what was in flight when the last session ended).
        baseAsked = true;
        const known = host.ackedOf(peer) ?? { pos: 0, seq: 0 };
        const from = stats.startPos >= known.pos ? known.pos : 0;
        const seqBefore = stats.startPos >= known.pos ? known.seq : 0;
        void host.ownSeqIn(from, stats.startPos).then((seq) => {
          base = { pos: stats.startPos, seq: Math.max(seqBefore, seq) };
          host.saveAcked(peer, base);
          host.emit();
        });
      }
      if (base !== undefined && stats.ackedPos > (host.ackedOf(peer)?.pos ?? 0)) {
        host.saveAcked(peer, { pos: stats.ackedPos, seq: Math.max(base.seq, stats.ackedOwnSeq) });
      }
    }
    if (stats.closed) return host.emit();
    const idle = stats.caughtUp && (stats.peerCaughtUp || !stats.peerPulled);
    link.state = idle ? 'idle' : 'syncing';
    if (idle) {
      link.lastSyncedAt = internals.now();
      host.noteSynced(link.lastSyncedAt);
    }
    host.emit();
  };

  // A peer may speak first (a server sends its hello on accept), before open() has resolved
  // here and the session exists: hold those messages and hand them over in order.
  let early: (string | Uint8Array)[] = [];
  const receive = (message: string | Uint8Array) => {
    if (session !== undefined) void session.receive(message);
    else early.push(message);
  };
  const offMessage = transport.onMessage(receive);
  // A transport that carries binary both ways (core/sync-types.ts): protocol 11.
  const binary = transport.sendBinary !== undefined && transport.onBinary !== undefined;
  const offBinary = binary ? transport.onBinary!(receive) : () => {};
  const offClose = transport.onClose((info) => {
    session?.close();
    session = undefined;
    servesHistory = false;
    historyRequests.closeAll();
    opened();
    early = [];
    if (info.error !== undefined) link.lastError = info.error;
    connectionClosed?.();
    connectionClosed = undefined;
  });

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wakeSleep = resolve;
      retryTimer = timers.setTimeout(resolve, ms);
    });

  const run = async () => {
    await host.ready;
    while (!stopped && !host.closed()) {
      link.state = 'connecting';
      host.emit();
      early = [];
      opening = true;
      try {
        await transport.open();
      } catch (error) {
        link.lastError = {
          code: 'TRANSPORT',
          message: error instanceof Error ? error.message : String(error),
        };
        opened();
        await sleep(backoffDelay(attempt++, backoff, random));
        continue;
      }
      if (stopped) {
        transport.close(1000, 'sync stopped');
        break;
      }
      let fatalVersion = false;
      let peerHello: { server?: boolean; maxClockAheadMs?: number } = {};
      const closedPromise = new Promise<void>((resolve) => {
        connectionClosed = resolve;
      });
      healthyTimer = timers.setTimeout(() => {
        attempt = 0;
      }, backoff.healthyAfterMs);
      link.state = 'syncing';
      host.emit();
      base = undefined;
      baseAsked = false;
      const join = await host.joinOptions();
      if (stopped || host.closed()) {
        transport.close(1000, 'sync stopped');
        break;
      }
      session = startPeerSession({
        ...(join !== undefined ? { join } : {}),
        log,
        send: (text) => transport.send(text),
        ...(binary ? { sendBinary: (bytes: Uint8Array) => transport.sendBinary!(bytes) } : {}),
        closeConnection: (code, reason) => transport.close(code, reason),
        bufferedBytes: () => transport.bufferedBytes?.() ?? 0,
        ...(host.limits !== undefined ? { limits: host.limits } : {}),
        now: () => internals.now(),
        maxClockDriftMs: internals.maxClockDriftMs,
        ...(internals.maxClockAheadMs !== undefined
          ? { maxClockAheadMs: internals.maxClockAheadMs }
          : {}),
        shareGuard: host.shareGuard(),
        schedule: (fn, ms) => {
          const handle = timers.setTimeout(fn, ms);
          return () => timers.clearTimeout(handle);
        },
        ...(host.server ? { isServer: true } : {}),
        onPeerHello: async (hello) => {
          // What the peer accepts, before anything is sent (controller.ts invariant 6).
          const limits = negotiateLimits(host.ownLimits, limitsOfPeer(hello));
          await internals
            .learnPeerLimits?.(hello.replica, { maxEventBytes: sendableEventBytes(limits) })
            .catch(() => {});
          peerHello = hello;
          if (hello.server === true) {
            link.server = true;
            host.serverMet(hello.replica);
          }
          servesHistory = hello.server === true && hello.history === true;
          opened();
          // History may answer again: stale projections rebase (store/server-link.ts).
          // After this hello is taken in (not through `timers`, which schedule retries).
          if (servesHistory) queueMicrotask(host.serverChanged);
          host.strict.noteHello(hello);
          await host.followServer(hello.server === true ? hello.time : undefined, link);
          return undefined;
        },
        holdBack: (event, peer) => host.strict.holdBack(event, peer),
        onRejected: async (events) => {
          await internals.rejectStrict?.(events);
          host.strict.recount(true);
          host.emit();
        },
        onHistoryReply: (reply) => historyRequests.onReply(reply),
        onStatus: onStats,
        onError: (error) => {
          link.lastError = { code: error.code, message: error.message };
          if (error.eventId !== undefined) link.lastError.eventId = error.eventId;
          if (error.skipped !== undefined && error.eventId !== undefined && link.peer) {
            host.noteRefused({
              eventId: error.eventId,
              peer: link.peer,
              code: error.code,
              message: error.message,
            });
          }
          if (error.heldForClock !== undefined && peerHello.server === true) {
            // A server refused one of ours for the clock: ours ran ahead since its hello
            // (controller.ts invariant 4); its clock is the refusal's limit less its tolerance.
            const tolerance = peerHello.maxClockAheadMs ?? DEFAULT_MAX_CLOCK_AHEAD_MS;
            void host.followServer(error.heldForClock.limit - tolerance, link, true);
          }
          if (error.code === 'PROTOCOL_VERSION') fatalVersion = true;
          host.emit();
        },
      });
      const held = early;
      early = [];
      for (const text of held) void session.receive(text);
      await closedPromise;
      timers.clearTimeout(healthyTimer);
      if (fatalVersion) break;
      if (stopped || host.closed()) break;
      link.state = 'connecting';
      host.emit();
      await sleep(backoffDelay(attempt++, backoff, random));
    }
    link.state = 'offline';
    host.emit();
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    timers.clearTimeout(retryTimer);
    timers.clearTimeout(healthyTimer);
    session?.close();
    session = undefined;
    servesHistory = false;
    historyRequests.closeAll();
    opened();
    transport.close(1000, 'sync stopped');
    wakeSleep?.();
    connectionClosed?.();
    offMessage();
    offBinary();
    offClose();
    host.links.delete(link);
    host.emit();
  };

  host.links.add(link);
  void run();
  return {
    close: stop,
    status: () => {
      const status: SyncStatus = { state: link.state, pending: host.pendingOf(link) };
      if (link.lastSyncedAt !== undefined) status.lastSyncedAt = link.lastSyncedAt;
      if (link.lastError !== undefined) status.lastError = link.lastError;
      const mine = host.refused().filter((r) => r.peer === link.peer);
      if (mine.length > 0) status.refused = mine;
      return status;
    },
  };
}
