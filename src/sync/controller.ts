/**
 * The Syncer of a client store: `store.sync`. Each connect() keeps one peer session alive over a
 * transport, reconnecting with backoff (a link: link.ts); this file keeps what the links share
 * (acknowledged marks, refusals, the clock, the server view) and reports the combined status.
 *
 * Invariants:
 * 1. Reconnects are backed off with full jitter (link.ts states and keeps it, invariant 1).
 * 2. A PROTOCOL_VERSION error stops reconnecting (link.ts invariant 2).
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
 * 13. Retention (store/retention.ts) trims only what a server holds and, besides, what every
 *    peer replica this store is linked to (a connection the app keeps, up or reconnecting, whose
 *    peer said hello at least once) acknowledged: a device trims no event a linked peer still
 *    lacks, as it cannot send a trimmed one (docs/storage-growth.md, "Peers"). A peer that syncs
 *    with no server had its gap refused as tampering (a missing link) and never converged.
 *    Closing the connection lifts its hold.
 */

import type { JsonValue } from '../core/events.ts';
import { DEFAULT_JOIN_BYTES } from '../core/space-join.ts';
import { DEFAULT_CLOCK_CORRECTION_THRESHOLD_MS } from '../core/sync.ts';
import type {
  ConnectionStatus,
  RefusedEvent,
  SyncConnection,
  SyncState,
  SyncStatus,
  SyncTarget,
} from '../core/sync-types.ts';
import type { StoreInternals, SyncController } from '../store/internal.ts';
import { clockKeeper } from './clock-keeper.ts';
import { firstRoute, type HistoryRoute, historySource, RouteWaiters } from './history-client.ts';
import {
  type BackoffOptions,
  connectLink,
  DEFAULT_BACKOFF,
  type Link,
  type LinkHost,
  type Timers,
} from './link.ts';
import { DEFAULT_SYNC_LIMITS, type SyncLimits } from './protocol.ts';
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
import type { WebSocketConstructor } from './transports/websocket.ts';

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
    () => {
      for (const link of links) link.poke?.();
    },
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
    // A peer replica's ack may lift the hold it puts on retention (invariant 13).
    if (movedPos) serverChanged();
    if (mark.seq !== before) {
      // An authority's ack may end tentative events, and lift the hold on other peers.
      strict.recount();
      for (const link of links) link.poke?.();
    } else if (movedPos && strict.holdsFormer()) {
      // Those of a former replica id end with the position (strict-sync.ts invariant 5).
      strict.recount();
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

  const linkHost: LinkHost = {
    internals,
    log,
    backoff,
    random,
    timers,
    ownLimits,
    limits: options.limits,
    server: options.server === true,
    WebSocket: options.WebSocket,
    historyTimeoutMs: options.historyTimeoutMs,
    ready,
    closed: () => closed,
    links,
    strict,
    shareGuard: () => clock.guard(),
    emit: () => emit(),
    ackedOf: (peer) => acked[peer],
    saveAcked: (peer, mark) => saveAcked(peer, mark),
    ownSeqIn,
    pendingOf,
    refused: () => refused,
    noteRefused: (entry) => noteRefused(entry),
    noteSynced,
    followServer,
    serverMet: (replica) => serverPeers.add(replica),
    serverChanged,
    joinOptions: () => joinOptions(),
    wakeRouteWaiters,
    waitForRoute,
  };
  const connect = (target: SyncTarget): SyncConnection => connectLink(linkHost, target);

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
      // Invariant 13: a linked peer replica holds back what retention trims.
      for (const link of links) {
        const peer = link.peer;
        if (link.server === true || peer === undefined || serverPeers.has(peer)) continue;
        pos = Math.min(pos, acked[peer]?.pos ?? 0);
      }
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
