/**
 * The page side of network sync: when to be connected to the demo's sync server, and with what
 * token.
 *
 * The worker could run sync by itself (serveStore's `sync` option), but then nothing could take
 * it offline on purpose; so the page opens and closes the connection through `store.sync`.
 *
 * Invariants:
 * 1. One tab per device connects: the holder of the Web Lock `chronicle-demo:sync:<db>`. With
 *    a SharedWorker every tab shares that one connection's status; when the holder's tab
 *    closes, the browser hands the lock (and the connection) to another tab.
 * 2. Connected exactly while: holding the lock, the "work offline" switch is off, and the
 *    browser says it is online (navigator.onLine, which context.setOffline drives in tests).
 * 3. The token is fetched from the demo server's /token endpoint (demo-only, see
 *    demo/server/app.ts) just before connecting; a token refused by the server (UNAUTHORIZED:
 *    expired, or the server restarted with a new secret) is fetched again, with backoff.
 */
import type { EventStore, SyncConnection, SyncStatus } from '../../src/index.ts';

const OFFLINE_KEY = 'chronicle-demo:work-offline';

export interface SyncView {
  status: SyncStatus;
  /** The user chose to work offline. */
  forcedOffline: boolean;
  /** The browser reports no network. */
  browserOffline: boolean;
  /**
   * Whether `status.pending` can be believed: only once the worker pushed a status. The status
   * a page gets when it connects can be computed before the worker's sync controller has read
   * its acknowledgement marks from IndexedDB (it then says pending 0), and nothing pushes a
   * correction until the next event or connection: a library gap this demo works around.
   */
  trusted: boolean;
}

export class SyncLink {
  private connection: SyncConnection | undefined;
  private leader = false;
  private token: string | undefined;
  private retryMs = 1000;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private generation = 0;
  private lastRefresh = 0;
  private trusted = false;
  private readonly listeners = new Set<(view: SyncView) => void>();

  private readonly store: EventStore<unknown>;
  private readonly db: string;

  /** `space`: an encrypted board's own space on the server (board-link.ts); default the demo's. */
  private readonly space: string | undefined;

  constructor(store: EventStore<unknown>, db: string, space?: string) {
    this.space = space;
    this.store = store;
    this.db = db;
  }

  start(): void {
    this.store.sync.on('status', (status) => {
      this.trusted = true;
      const refused = status.lastError?.code === 'UNAUTHORIZED';
      if (refused && this.connection !== undefined && Date.now() - this.lastRefresh > 5000) {
        // invariant 3: the worker keeps retrying with the token it has; give it a new one (at
        // most every 5 s, in case the error outlives the connection in the status).
        this.lastRefresh = Date.now();
        this.token = undefined;
        void this.reconnect();
      }
      this.emit();
    });
    // A browser cannot read why a WebSocket upgrade failed (a 401 looks like any network
    // error), so a connection that keeps failing while the server answers /token gets a fresh
    // token now and then: after a server restart with another secret, say (invariant 3).
    setInterval(() => {
      const status = this.store.sync.status();
      if (this.connection === undefined || status.lastError === undefined) return;
      if (status.state === 'connecting' || status.state === 'offline') {
        this.token = undefined;
        void this.reconnect();
      }
    }, 20_000);
    addEventListener('online', () => void this.reconnect());
    addEventListener('offline', () => void this.update());
    addEventListener('storage', (event) => {
      if (event.key === OFFLINE_KEY) void this.update();
    });
    const locks = navigator.locks as LockManager | undefined;
    if (locks === undefined) {
      this.leader = true;
      void this.update();
      return;
    }
    // Held for the page's lifetime: the promise never resolves (invariant 1).
    void locks.request(`chronicle-demo:sync:${this.db}`, () => {
      this.leader = true;
      void this.update();
      return new Promise<never>(() => {});
    });
  }

  view(): SyncView {
    return {
      status: this.store.sync.status(),
      forcedOffline: this.forcedOffline(),
      browserOffline: !navigator.onLine,
      trusted: this.trusted,
    };
  }

  on(listener: (view: SyncView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setForcedOffline(offline: boolean): void {
    if (offline) localStorage.setItem(OFFLINE_KEY, '1');
    else localStorage.removeItem(OFFLINE_KEY);
    // The storage event reaches other tabs only; this one updates itself.
    void this.update();
  }

  forcedOffline(): boolean {
    return localStorage.getItem(OFFLINE_KEY) === '1';
  }

  private emit(): void {
    const view = this.view();
    for (const listener of [...this.listeners]) listener(view);
  }

  private wanted(): boolean {
    return this.leader && !this.forcedOffline() && navigator.onLine;
  }

  /** Closes and reopens at once: after the network returns, skip the transport's backoff. */
  private async reconnect(): Promise<void> {
    await this.disconnect();
    await this.update();
  }

  private async disconnect(): Promise<void> {
    this.generation += 1;
    clearTimeout(this.retryTimer);
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close().catch(() => undefined);
  }

  /** Brings the connection in line with invariant 2. */
  private async update(): Promise<void> {
    if (!this.wanted()) {
      await this.disconnect();
      this.emit();
      return;
    }
    if (this.connection !== undefined) return;
    const generation = ++this.generation;
    try {
      this.token ??= await fetchToken(this.space);
    } catch {
      if (generation !== this.generation) return;
      this.retryTimer = setTimeout(() => void this.update(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 30_000);
      this.emit();
      return;
    }
    if (generation !== this.generation || !this.wanted() || this.connection !== undefined) return;
    this.retryMs = 1000;
    const url = new URL('/sync', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.connection = this.store.sync.connect({ url: url.href, token: this.token });
    this.emit();
  }
}

async function fetchToken(space: string | undefined): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5000);
  const path = space === undefined ? '/token' : `/token?space=${encodeURIComponent(space)}`;
  try {
    const response = await fetch(path, { cache: 'no-store', signal: controller.signal });
    if (!response.ok) throw new Error(`/token answered ${response.status}`);
    const body = (await response.json()) as { token?: unknown };
    if (typeof body.token !== 'string') throw new Error('/token sent no token');
    return body.token;
  } finally {
    clearTimeout(timer);
  }
}
