/**
 * The store a worker serves: opened with its first client, closed with its last, with the status
 * every client sees (storage open or closed from outside, sync leadership, sync status).
 *
 * Invariants:
 * 1. One store per worker at a time; clients share it (a SharedWorker's tabs) and it closes when
 *    the last client leaves, so that no idle worker holds the database open.
 * 2. At most one worker per database runs network sync: the holder of the Web Lock
 *    `chronicle:leader:<name>`. A SharedWorker takes it at once; in the fallback mode each tab's
 *    worker queues for it, and the browser hands it to the next one when the leader's tab closes.
 * 3. Leadership is given up (the lock released) when the store closes, so that another tab's
 *    worker takes over from the durable sync checkpoints in IndexedDB.
 * 4. Status listeners hear every change of HostStatus, in order.
 * 5. The store starts opening when the worker starts (openAhead), not when the first client's
 *    hello arrives: a page starts its worker to connect at once, and the IndexedDB open then runs
 *    while the page's connect message is still on its way. If no client comes within
 *    OPEN_AHEAD_MS, the store is closed again (invariant 1).
 * 6. In the fallback mode, a tab that does not lead reads the history below a trimmed horizon
 *    through the leader's session (history-relay.ts): every store served here with the default
 *    lazy sync has a relay, which answers only while this worker leads.
 */

import type { ClosedReason, HostMode, HostStatus } from '../src/client/protocol.ts';
import type { SyncConnection, SyncStatus } from '../src/core/sync-types.ts';
import { indexedDbStorage } from '../src/storage/indexeddb.ts';
import { createStore } from '../src/store/create-store.ts';
import type { EventStore, StoreOptions } from '../src/store/types.ts';
import { HistoryRelay } from './history-relay.ts';
import { type LazySyncController, lazySyncFactory } from './lazy-sync.ts';
import { watchedStorage } from './watched-storage.ts';

export interface ServeOptions<E = unknown> extends StoreOptions<E> {
  /**
   * The sync server this worker connects to while it is the leader (invariant 2), or a list of
   * servers sharing one database (failover, as store.sync.connect takes it). `token` may
   * be a function: it is called on every (re)connect, so a token can be refreshed before it
   * expires. The sync module is loaded only when this worker leads (lazy-sync.ts).
   */
  sync?: { url: string | readonly string[]; token?: string | (() => Promise<string>) };
  /**
   * How often (ms) the worker re-reads the log in case another tab's write notice was lost
   * (RELIABILITY 33). Default 1000; 0 disables it.
   */
  pollIntervalMs?: number;
}

const OFFLINE: SyncStatus = { state: 'offline', pending: 0 };
/** How long a store opened ahead waits for its first client (invariant 5). */
export const OPEN_AHEAD_MS = 10_000;

export class StoreHost<E = unknown> {
  private opening: Promise<EventStore<E>> | undefined;
  private clients = 0;
  private closedReason: ClosedReason | undefined;
  private leader = false;
  private releaseLeadership: (() => void) | undefined;
  private leaderSync: SyncConnection | undefined;
  private syncError: { code: string; message: string } | undefined;
  private unsubscribeSync: (() => void) | undefined;
  private readonly statusListeners = new Set<(status: HostStatus) => void>();
  private current: EventStore<E> | undefined;
  /** Each store's history relay (invariant 6), closed with it. */
  private readonly relays = new WeakMap<EventStore<E>, HistoryRelay>();

  private readonly options: ServeOptions<E>;
  readonly mode: HostMode;

  constructor(options: ServeOptions<E>, mode: HostMode) {
    this.options = options;
    this.mode = mode;
  }

  status(): HostStatus {
    const sync = this.current?.sync.status() ?? OFFLINE;
    const status: HostStatus = {
      mode: this.mode,
      storage: this.closedReason === undefined ? 'open' : 'closed',
      leader: this.leader,
      sync:
        this.syncError !== undefined && sync.lastError === undefined
          ? { ...sync, lastError: this.syncError }
          : sync,
    };
    if (this.closedReason !== undefined) status.closedReason = this.closedReason;
    return status;
  }

  onStatus(listener: (status: HostStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private emit(): void {
    const status = this.status();
    for (const listener of [...this.statusListeners]) listener(status);
  }

  /** The store, opened for a new client (invariant 1). */
  acquire(): Promise<EventStore<E>> {
    this.clients += 1;
    const opening = this.opening ?? this.begin();
    opening.catch(() => {
      this.clients -= 1;
    });
    return opening;
  }

  /** Starts opening the store before any client asked for it (invariant 5). */
  openAhead(): void {
    if (this.opening !== undefined) return;
    // On failure the first client retries, and gets the error if it fails again.
    const opening = this.begin();
    setTimeout(() => {
      if (this.clients > 0 || this.opening !== opening) return;
      this.opening = undefined;
      void opening.then(
        (store) => this.shutDown(store),
        () => undefined,
      );
    }, OPEN_AHEAD_MS);
  }

  /** A client left; the last one closes the store. */
  async release(): Promise<void> {
    this.clients = Math.max(0, this.clients - 1);
    if (this.clients > 0 || this.opening === undefined) return;
    const opening = this.opening;
    this.opening = undefined;
    const store = await opening.catch(() => undefined);
    await this.shutDown(store);
  }

  /**
   * Starts opening the store, as `opening`. A failed open is forgotten, so that the next client
   * retries it rather than getting the error cached forever.
   */
  private begin(): Promise<EventStore<E>> {
    const opening = this.open();
    this.opening = opening;
    opening.catch(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    return opening;
  }

  private async open(): Promise<EventStore<E>> {
    const { sync: _sync, pollIntervalMs, ...storeOptions } = this.options;
    const inner = storeOptions.storage ?? indexedDbStorage(storeOptions.name);
    const storage = watchedStorage(inner, {
      pollIntervalMs: pollIntervalMs ?? 1000,
      onExternalClose: (reason) => {
        this.closedReason = reason;
        this.dropLeadership();
        this.emit();
      },
    });
    this.closedReason = undefined;
    // Invariant 6: it answers for this store while this worker leads, through the lazy
    // controller's history (which waits for a loading module and an opening link; if nothing
    // asked for sync here it falls back to this relay, which rejects at once in a leader).
    let lazy: LazySyncController | undefined;
    const relay =
      storeOptions.syncFactory === undefined
        ? new HistoryRelay({
            name: storeOptions.name,
            leads: () => this.leader && this.current === store,
            history: () => lazy?.history,
          })
        : undefined;
    let store: EventStore<E> | undefined;
    try {
      // The sync module is loaded after the store, off the first state's path (lazy-sync.ts).
      store = await createStore<E>({
        ...storeOptions,
        storage,
        syncFactory:
          storeOptions.syncFactory ??
          ((internals) => {
            lazy = lazySyncFactory(relay === undefined ? {} : { fallbackHistory: relay })(
              internals,
            );
            return lazy;
          }),
      });
    } catch (error) {
      relay?.close();
      throw error;
    }
    if (relay !== undefined) this.relays.set(store, relay);
    this.current = store;
    this.unsubscribeSync = store.sync.on('status', () => this.emit());
    this.campaign(store);
    return store;
  }

  /** Resolves when `store.sync.connect()` may be called (lazy-sync.ts, 2). */
  syncReady(store: EventStore<E>): Promise<void> {
    return (store.sync as Partial<LazySyncController>).ready?.() ?? Promise.resolve();
  }

  /** Queues for the leader lock (invariant 2); runs sync while holding it. */
  private campaign(store: EventStore<E>): void {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (locks === undefined) {
      // No Web Locks (very old browsers): a single worker cannot tell, so it leads.
      this.becomeLeader(store);
      return;
    }
    const held = new Promise<void>((resolve) => {
      this.releaseLeadership = resolve;
    });
    locks
      .request(`chronicle:leader:${this.options.name}`, async () => {
        if (this.current !== store || this.closedReason !== undefined) return;
        this.becomeLeader(store);
        await held;
      })
      .catch(() => undefined);
  }

  private becomeLeader(store: EventStore<E>): void {
    this.leader = true;
    const target = this.options.sync;
    if (target !== undefined) {
      void this.syncReady(store).then(() => {
        // Still the leader of this store (not closed or deposed while sync was loading)?
        if (!this.leader || this.current !== store) return;
        try {
          this.leaderSync = store.sync.connect({ ...target });
        } catch (error) {
          const e = error as { code?: unknown; message?: unknown };
          this.syncError = {
            code: typeof e.code === 'string' ? e.code : 'TRANSPORT',
            message: String(e.message ?? error),
          };
          this.emit();
        }
      });
    }
    this.emit();
  }

  private dropLeadership(): void {
    const connection = this.leaderSync;
    this.leaderSync = undefined;
    void connection?.close().catch(() => undefined);
    this.leader = false;
    this.releaseLeadership?.();
    this.releaseLeadership = undefined;
  }

  private async shutDown(store: EventStore<E> | undefined): Promise<void> {
    this.dropLeadership();
    this.unsubscribeSync?.();
    this.unsubscribeSync = undefined;
    this.current = undefined;
    this.syncError = undefined;
    if (store !== undefined) this.relays.get(store)?.close();
    await store?.close().catch(() => undefined);
    this.emit();
  }
}
