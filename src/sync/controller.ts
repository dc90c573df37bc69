/**
 * The Syncer of a client store: `store.sync`. Each connect() keeps one peer session alive over a
 * transport, reconnecting with backoff, and reports status.
 *
 * Invariants:
 * 1. Reconnect delays use exponential backoff with full jitter: random() × min(maxMs,
 *    initialMs × 2^attempt). The attempt count resets only once a connection stayed open for
 *    healthyAfterMs, never on a mere open (a server that accepts and drops at once is backed off).
 * 2. A PROTOCOL_VERSION error stops reconnecting: retrying cannot help. Every other failure
 *    (auth included: a token function may hand out a fresh token) is retried with backoff.
 * 3. pending = this replica's highest seq − the highest own seq the peer holds. Own events sit in
 *    the log in seq order and are sent in log order, so that difference counts exactly the own
 *    events the peer has not acknowledged. Per peer, meta `sync.acked` keeps { pos, seq }: "it
 *    holds my log up to pos, where my highest seq is seq"; a new session moves it to the peer's
 *    start position (scanning only the few positions in between), then to each ack.
 * 4. Clock correction (the rule): only a server's hello (hello.server) corrects the clock, and
 *    only when its time differs from ours by more than clockCorrectionThresholdMs (default one
 *    minute): the offset becomes serverTime − ourRawTime. A peer replica's clock is no better
 *    than ours, and small differences are latency noise.
 * 5. Status events fire only when the combined status changed.
 * 6. A peer's limits are learnt from its hello before anything is pulled or sent: the store then
 *    refuses appends larger than the peer accepts (store/append-limit.ts).
 * 7. Every event not sent to a peer (refused by it, or too large for it) is reported: lastError
 *    names it, and `refused` lists it (meta `sync.refused`, the last REFUSED_KEPT, kept across
 *    restarts). It is not pending: the batch that covers it moves the peer's checkpoint past it.
 * 8. Re-stamp (core/restamp.ts): on every peer's hello, after any clock correction and before
 *    anything is pulled or sent in that session, this replica's own events above the shared
 *    mark that are stamped beyond its clock + maxClockAheadMs get new HLCs (with a server's
 *    correction as the shift when one was just made). The shared mark (meta `sync.sharedSeq`)
 *    is the highest own seq ever handed to any peer; a sender raises it durably before it sends
 *    (session-sender.ts invariant 11). Re-stamps and mark raises run one at a time, so an event
 *    is never both handed over and re-stamped.
 * 9. A peer's clock never corrects ours: with no authority between two replicas, a wrong one
 *    could move every other (the failure this design removes); its future-stamped events wait
 *    instead (session-sender.ts invariant 8), and both sides report CLOCK_SKEW.
 * 10. When the store moves to a fresh replica id (a restored backup detected: core/append.ts
 *    invariant 8), the acknowledged marks are dropped and every connection is started again, so
 *    hellos, batches and `pending` speak of the new id. Own events of the old id that no peer
 *    acknowledged are still sent, but `pending` no longer counts them.
 * 11. lastSyncedAt survives a restart: the time a peer last had everything is kept in meta
 *    `sync.lastSyncedAt` (written again once SYNCED_AT_SAVE_MS stale, so not at every ack), and
 *    the status reports the later of it and what this run's links saw.
 * 12. Joining from a snapshot (protocol invariant 10, store/join.ts): every session started while
 *    the store may join (StoreOptions.join 'snapshot', an empty log) asks for one in its hello,
 *    and installs only a server's answer; once the log holds anything, sessions replay as usual.
 */

import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../core/clock-skew.ts';
import type { JsonValue } from '../core/events.ts';
import { DEFAULT_JOIN_BYTES } from '../core/space-join.ts';
import {
  DEFAULT_CLOCK_CORRECTION_THRESHOLD_MS,
  negotiateLimits,
  sendableEventBytes,
} from '../core/sync.ts';
import type {
  ConnectionStatus,
  RefusedEvent,
  SyncConnection,
  SyncState,
  SyncStatus,
  SyncTarget,
  Transport,
} from '../core/sync-types.ts';
import type { StoreInternals, SyncController } from '../store/internal.ts';
import { clockKeeper } from './clock-keeper.ts';
import {
  firstRoute,
  HistoryRequests,
  type HistoryRoute,
  historySource,
  pageVerifier,
  RouteWaiters,
} from './history-client.ts';
import { DEFAULT_SYNC_LIMITS, limitsOfPeer, type SyncLimits } from './protocol.ts';
import { type PeerSession, type SessionStats, startPeerSession } from './session.ts';
import type { JoinOptions } from './session-join.ts';
import { CHECKPOINT_META_PREFIX, storeSyncLog } from './store-log.ts';
import { strictSync } from './strict-sync.ts';
import {
  ACKED_META_KEY,
  type AckedMark,
  parseAcked,
  parseRefused,
  parseSyncedAt,
  REFUSED_KEPT,
  REFUSED_META_KEY,
  SYNCED_AT_META_KEY,
  SYNCED_AT_SAVE_MS,
} from './sync-meta.ts';
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

export interface SyncControllerOptions {
  backoff?: Partial<BackoffOptions>;
  /** In [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
  timers?: Timers;
  limits?: Partial<SyncLimits>;
  clockCorrectionThresholdMs?: number;
  /**
   * Announce this replica as a sync server in hello: a hub its peers correct their clocks to
   * (invariant 4), as they do to createSyncServer's. Default false.
   */
  server?: boolean;
  /** WebSocket class for `{ url }` targets (the `ws` package on Node). */
  WebSocket?: WebSocketConstructor;
  /** Longest wait for a server's answer to a history read (ms). Default 15,000. */
  historyTimeoutMs?: number;
  /** The largest snapshot a joining store takes (bytes; DEFAULT_JOIN_BYTES, 64 MiB). */
  joinMaxBytes?: number;
  /**
   * The longest wait for the next part of a snapshot sent in parts (ms); past it the store
   * replays the log. Default 30,000 (session-join.ts SNAPSHOT_PART_TIMEOUT_MS).
   */
  snapshotPartTimeoutMs?: number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Full-jitter delay for the attempt-th retry (invariant 1). */
export function backoffDelay(
  attempt: number,
  backoff: BackoffOptions,
  random: () => number,
): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

interface Link {
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

export function createSyncController(
  internals: StoreInternals,
  options: SyncControllerOptions = {},
): SyncController {
  const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...options.backoff };
  const random = options.random ?? Math.random;
  const timers = options.timers ?? realTimers;
  const threshold = options.clockCorrectionThresholdMs ?? DEFAULT_CLOCK_CORRECTION_THRESHOLD_MS;
  const ownLimits: SyncLimits = { ...DEFAULT_SYNC_LIMITS, ...options.limits };
  const log = storeSyncLog(internals);
  const links = new Set<Link>();
  const listeners = new Set<(status: SyncStatus) => void>();
  /** History reads waiting for an opening link (history-client.ts invariant 4). */
  const routeWaiters = new RouteWaiters(timers, options.historyTimeoutMs);
  const wakeRouteWaiters = () => routeWaiters.wake();
  const waitForRoute = () => routeWaiters.wait();
  let ownSeq = 0;
  /** Reads of ownSeq started on changes; the latest one's answer wins. */
  let ownSeqReads = 0;
  /** Per peer: it holds this log up to `pos`, where this replica's highest seq is `seq`. */
  let acked: Record<string, AckedMark> = {};
  /** Events not sent to a peer (invariant 7), oldest first. */
  let refused: RefusedEvent[] = [];
  let lastEmitted = '';
  /** Invariant 11: the latest time a link was idle, and what meta holds of it. */
  let syncedAt = { saved: 0, latest: 0 };
  const noteSynced = (time: number) => {
    if (time <= syncedAt.latest) return;
    syncedAt = { ...syncedAt, latest: time };
    if (time - syncedAt.saved < SYNCED_AT_SAVE_MS) return;
    syncedAt = { saved: time, latest: time };
    void internals.log.setMeta(SYNCED_AT_META_KEY, time).catch(() => {});
  };
  const clock = clockKeeper(internals, { thresholdMs: threshold });
  /** Follows a server's clock (invariants 4, 8); a failed re-stamp is reported, not fatal. */
  const followServer = (serverTime: number | undefined, link: Link, force = false) =>
    clock.followServer(serverTime, force).catch((error: unknown) => {
      link.lastError = {
        code: 'STORAGE',
        message: `re-stamp failed: ${error instanceof Error ? error.message : String(error)}`,
      };
    });
  let closed = false;
  const strict = strictSync(
    internals,
    () => acked,
    () => emit(),
  );
  // Events left the log (rejected, by the server or beside an accepted one): count again, whole.
  const unsubscribeStrict = internals.onStrictChange?.(() => {
    strict.recount(true);
    emit();
  });
  const unsubscribeUnreadable = internals.onUnreadableChange?.(() => emit());
  const unsubscribeChain = log.chain.onChange(() => emit());

  const ready = (async () => {
    acked = parseAcked(await internals.log.getMeta(ACKED_META_KEY));
    refused = parseRefused(await internals.log.getMeta(REFUSED_META_KEY));
    await log.chain.ready();
    const stored = parseSyncedAt(await internals.log.getMeta(SYNCED_AT_META_KEY));
    if (stored !== undefined)
      syncedAt = { saved: stored, latest: Math.max(stored, syncedAt.latest) };
    const read = ++ownSeqReads;
    const seq = await log.ownSeq();
    if (read === ownSeqReads) ownSeq = seq;
  })()
    // The status before this point could only guess `pending` (as 0): tell listeners the truth.
    .then(() => {
      strict.recount();
      emit();
    })
    .catch(() => {});

  const bestAcked = () => Math.max(0, ...Object.values(acked).map((m) => m.seq));
  const pendingOf = (link: Link) =>
    Math.max(0, ownSeq - (link.peer === undefined ? bestAcked() : (acked[link.peer]?.seq ?? 0)));

  /** Highest seq of this replica's events at positions (from, to] (a short range, see run()). */
  const ownSeqIn = async (from: number, to: number): Promise<number> => {
    let max = 0;
    for (let pos = from; pos < to; ) {
      const page = await internals.log.readByPos(pos, Math.min(500, to - pos));
      if (page.length === 0) break;
      for (const r of page) {
        // A page skips holes (adapter.ts 3): it may run past `to`, which the peer does not hold.
        if (r.pos > to) return max;
        if (r.event.replica === internals.replicaId && r.event.seq > max) max = r.event.seq;
        pos = r.pos;
      }
    }
    return max;
  };

  // A partial replica's view of its server (store/server-link.ts): the replica ids of the
  // servers this controller has met (a server's hello says so; servers of one space share one),
  // how far they hold this log, and a signal when that moves or history may answer again.
  const serverPeers = new Set<string>();
  const serverListeners = new Set<() => void>();
  const serverChanged = () => {
    for (const listener of [...serverListeners]) listener();
  };

  const saveAcked = (peer: string, mark: AckedMark) => {
    const before = acked[peer]?.seq ?? 0;
    const movedPos = mark.pos !== (acked[peer]?.pos ?? 0);
    acked = { ...acked, [peer]: mark };
    if (movedPos && serverPeers.has(peer)) serverChanged();
    if (mark.seq !== before) {
      // An authority's ack may end tentative events, and lift the hold on other peers.
      strict.recount();
      for (const link of links) link.poke?.();
    }
    const value: { [key: string]: JsonValue } = {};
    for (const [p, m] of Object.entries(acked)) value[p] = { pos: m.pos, seq: m.seq };
    void internals.log.setMeta(ACKED_META_KEY, value).catch(() => {});
  };

  const noteRefused = (entry: RefusedEvent) => {
    if (refused.some((r) => r.eventId === entry.eventId && r.peer === entry.peer)) return;
    refused = [...refused, entry].slice(-REFUSED_KEPT);
    const value: JsonValue[] = refused.map((r) => ({ ...r }));
    void internals.log.setMeta(REFUSED_META_KEY, value).catch(() => {});
  };

  const combined = (): SyncStatus => {
    const all = [...links];
    const order: SyncState[] = ['syncing', 'connecting', 'idle'];
    const state = order.find((s) => all.some((l) => l.state === s)) ?? 'offline';
    const pending =
      all.length === 0 ? Math.max(0, ownSeq - bestAcked()) : Math.min(...all.map(pendingOf));
    const status: SyncStatus = { state, pending };
    const synced = Math.max(syncedAt.latest, ...all.map((l) => l.lastSyncedAt ?? 0));
    if (synced > 0) status.lastSyncedAt = synced;
    const errored = all.find((l) => l.lastError !== undefined);
    if (errored?.lastError !== undefined) status.lastError = errored.lastError;
    if (refused.length > 0) status.refused = refused;
    const tentative = strict.tentative();
    if (tentative > 0) status.tentative = tentative;
    const rejected = internals.strictRejections?.() ?? [];
    if (rejected.length > 0) status.rejected = rejected;
    if (all.length > 0) status.connections = all.map(connectionStatus);
    const unreadable = internals.unreadable?.();
    if (unreadable !== undefined) status.unreadable = unreadable;
    const tampered = log.chain.tampered();
    if (tampered.length > 0) status.tampered = tampered;
    return status;
  };

  const connectionStatus = (link: Link): ConnectionStatus => {
    const c: ConnectionStatus = {
      transport: link.transport,
      state: link.state,
      pending: pendingOf(link),
    };
    if (link.peer !== undefined) c.peer = link.peer;
    if (link.server === true) c.server = true;
    if (link.lastSyncedAt !== undefined) c.lastSyncedAt = link.lastSyncedAt;
    if (link.lastError !== undefined) c.lastError = link.lastError;
    return c;
  };

  const emit = () => {
    const status = combined();
    const text = JSON.stringify(status);
    if (text === lastEmitted) return;
    lastEmitted = text;
    for (const listener of [...listeners]) listener(status);
  };

  let knownReplica = internals.replicaId;
  const unsubscribeChange = internals.onChange((headPos) => {
    if (internals.replicaId !== knownReplica) {
      // Invariant 8: a fresh replica id. Marks counted the old id's seqs; sessions said hello
      // under it: start both again.
      knownReplica = internals.replicaId;
      acked = {};
      void internals.log.setMeta(ACKED_META_KEY, {}).catch(() => {});
      for (const link of links) link.reconnect?.();
    }
    // Reads started one after another may resolve out of order (an append's, then an ingest's
    // that took a losing own copy out): only the latest started may set ownSeq, or a stale,
    // higher one would stay and keep `pending` above 0 for good.
    const read = ++ownSeqReads;
    strict.recount();
    // After this store's own append the store knows the seq: no read for the next append to
    // wait for (a read per append cost a burst of awaited appends a third of its rate).
    const known = internals.ownSeqAt?.(headPos);
    if (known !== undefined) {
      ownSeq = known;
      emit();
      return;
    }
    void log.ownSeq().then((seq) => {
      if (read !== ownSeqReads) return;
      ownSeq = seq;
      emit();
    });
  });

  /**
   * Invariant 12: what a session asks of a server's snapshots, while the store may join (its
   * log is empty and it opted in: store/join.ts); undefined: it replays.
   */
  const joinOptions = async (): Promise<JoinOptions | undefined> => {
    const install = internals.installSnapshot;
    if (install === undefined) return undefined;
    const projections = await internals.joinRequest?.().catch(() => undefined);
    if (projections === undefined) return undefined;
    return {
      projections,
      maxBytes: options.joinMaxBytes ?? DEFAULT_JOIN_BYTES,
      ...(options.snapshotPartTimeoutMs !== undefined
        ? { partTimeoutMs: options.snapshotPartTimeoutMs }
        : {}),
      install: (snapshot, peer, id) => {
        // Only a server's fold is taken (a peer replica does not announce snapshots anyway).
        if (peer.server !== true) return Promise.resolve(false);
        const value: { [key: string]: JsonValue } = { epoch: peer.epoch, pos: snapshot.pos };
        if (id !== undefined) value.id = id;
        return install(snapshot, { key: CHECKPOINT_META_PREFIX + peer.replica, value });
      },
    };
  };

  const connect = (target: SyncTarget): SyncConnection => {
    const transport: Transport =
      'url' in target
        ? webSocketTransport(target.url, {
            // A list of URLs is shuffled with the same source as the backoff (tests inject it).
            random,
            ...(target.token !== undefined ? { token: target.token } : {}),
            ...(options.WebSocket !== undefined ? { WebSocket: options.WebSocket } : {}),
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
      wakeRouteWaiters();
    };

    // Protocol 9: the history reads of this link's sessions (history-client.ts).
    const historyRequests = new HistoryRequests(
      timers,
      options.historyTimeoutMs,
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
            wait: waitForRoute,
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
          const known = acked[peer] ?? { pos: 0, seq: 0 };
          const from = stats.startPos >= known.pos ? known.pos : 0;
          const seqBefore = stats.startPos >= known.pos ? known.seq : 0;
          void ownSeqIn(from, stats.startPos).then((seq) => {
            base = { pos: stats.startPos, seq: Math.max(seqBefore, seq) };
            saveAcked(peer, base);
            emit();
          });
        }
        if (base !== undefined && stats.ackedPos > (acked[peer]?.pos ?? 0)) {
          saveAcked(peer, { pos: stats.ackedPos, seq: Math.max(base.seq, stats.ackedOwnSeq) });
        }
      }
      if (stats.closed) return emit();
      const idle = stats.caughtUp && (stats.peerCaughtUp || !stats.peerPulled);
      link.state = idle ? 'idle' : 'syncing';
      if (idle) {
        link.lastSyncedAt = internals.now();
        noteSynced(link.lastSyncedAt);
      }
      emit();
    };

    // A peer may speak first (a server sends its hello on accept), before open() has resolved
    // here and the session exists: hold those messages and hand them over in order.
    let early: string[] = [];
    const offMessage = transport.onMessage((text) => {
      if (session !== undefined) void session.receive(text);
      else early.push(text);
    });
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
      await ready;
      while (!stopped && !closed) {
        link.state = 'connecting';
        emit();
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
        emit();
        base = undefined;
        baseAsked = false;
        const join = await joinOptions();
        if (stopped || closed) {
          transport.close(1000, 'sync stopped');
          break;
        }
        session = startPeerSession({
          ...(join !== undefined ? { join } : {}),
          log,
          send: (text) => transport.send(text),
          closeConnection: (code, reason) => transport.close(code, reason),
          bufferedBytes: () => transport.bufferedBytes?.() ?? 0,
          ...(options.limits !== undefined ? { limits: options.limits } : {}),
          now: () => internals.now(),
          maxClockDriftMs: internals.maxClockDriftMs,
          ...(internals.maxClockAheadMs !== undefined
            ? { maxClockAheadMs: internals.maxClockAheadMs }
            : {}),
          shareGuard: clock.guard(),
          schedule: (fn, ms) => {
            const handle = timers.setTimeout(fn, ms);
            return () => timers.clearTimeout(handle);
          },
          ...(options.server === true ? { isServer: true } : {}),
          onPeerHello: async (hello) => {
            // What the peer accepts, before anything is sent (invariant 6).
            const limits = negotiateLimits(ownLimits, limitsOfPeer(hello));
            await internals
              .learnPeerLimits?.(hello.replica, { maxEventBytes: sendableEventBytes(limits) })
              .catch(() => {});
            peerHello = hello;
            if (hello.server === true) {
              link.server = true;
              serverPeers.add(hello.replica);
            }
            servesHistory = hello.server === true && hello.history === true;
            opened();
            // History may answer again: stale projections rebase (store/server-link.ts).
            // After this hello is taken in (not through `timers`, which schedule retries).
            if (servesHistory) queueMicrotask(serverChanged);
            strict.noteHello(hello);
            await followServer(hello.server === true ? hello.time : undefined, link);
            return undefined;
          },
          holdBack: (event, peer) => strict.holdBack(event, peer),
          onRejected: async (events) => {
            await internals.rejectStrict?.(events);
            strict.recount(true);
            emit();
          },
          onHistoryReply: (reply) => historyRequests.onReply(reply),
          onStatus: onStats,
          onError: (error) => {
            link.lastError = { code: error.code, message: error.message };
            if (error.eventId !== undefined) link.lastError.eventId = error.eventId;
            if (error.skipped !== undefined && error.eventId !== undefined && link.peer) {
              noteRefused({
                eventId: error.eventId,
                peer: link.peer,
                code: error.code,
                message: error.message,
              });
            }
            if (error.heldForClock !== undefined && peerHello.server === true) {
              // A server refused one of ours for the clock: ours ran ahead since its hello
              // (invariant 4); its clock is the refusal's limit less its tolerance.
              const tolerance = peerHello.maxClockAheadMs ?? DEFAULT_MAX_CLOCK_AHEAD_MS;
              void followServer(error.heldForClock.limit - tolerance, link, true);
            }
            if (error.code === 'PROTOCOL_VERSION') fatalVersion = true;
            emit();
          },
        });
        const held = early;
        early = [];
        for (const text of held) void session.receive(text);
        await closedPromise;
        timers.clearTimeout(healthyTimer);
        if (fatalVersion) break;
        if (stopped || closed) break;
        link.state = 'connecting';
        emit();
        await sleep(backoffDelay(attempt++, backoff, random));
      }
      link.state = 'offline';
      emit();
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
      offClose();
      links.delete(link);
      emit();
    };

    links.add(link);
    void run();
    return {
      close: stop,
      status: () => {
        const status: SyncStatus = { state: link.state, pending: pendingOf(link) };
        if (link.lastSyncedAt !== undefined) status.lastSyncedAt = link.lastSyncedAt;
        if (link.lastError !== undefined) status.lastError = link.lastError;
        const mine = refused.filter((r) => r.peer === link.peer);
        if (mine.length > 0) status.refused = mine;
        return status;
      },
    };
  };

  const closeAll = async () => {
    if (closed) return;
    closed = true;
    internals.attachServer?.(undefined);
    serverListeners.clear();
    unsubscribeChange();
    unsubscribeStrict?.();
    unsubscribeUnreadable?.();
    unsubscribeChain();
    await Promise.all([...links].map((l) => l.close()));
  };
  void internals.closing.then(closeAll);

  /**
   * The first link whose server serves history now; else why none can, and a wait when some
   * link's connection is opening (history-client.ts invariant 4).
   */
  const historyRoute = (): HistoryRoute =>
    firstRoute(
      [...links].map((link) => ({ route: link.history?.(), server: link.server === true })),
    );

  const history = historySource(historyRoute);
  internals.attachServer?.({
    history,
    ackedPos: () => {
      let pos = 0;
      for (const peer of serverPeers) pos = Math.max(pos, acked[peer]?.pos ?? 0);
      return pos;
    },
    onChange: (listener) => {
      serverListeners.add(listener);
      return () => serverListeners.delete(listener);
    },
  });

  return {
    connect,
    status: combined,
    history,
    on(_event: 'status', listener: (status: SyncStatus) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: closeAll,
  };
}

/** The SyncFactory given to the store: `openStore({ ..., sync: syncFactory() })` or similar. */
export function syncFactory(options: SyncControllerOptions = {}) {
  return (internals: StoreInternals): SyncController => createSyncController(internals, options);
}
