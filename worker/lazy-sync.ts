/**
 * The worker's sync controller, loaded with a dynamic import() only when something needs it: a
 * page's `sync.connect()`, or serveStore's `sync` option once this worker leads. The sync module
 * (protocol, sessions, WebSocket transport) is a separate chunk of about a third of the worker's
 * code; an app that never syncs never downloads, compiles or runs it, and one that syncs loads it
 * off the first state's path (a page connects after its first state, the leader after the open).
 *
 * Invariants:
 * 1. Until the module is loaded, status() is offline with nothing pending (what the controller
 *    itself reports before its first reads); listeners registered meanwhile are handed to it,
 *    which tells them its status after those reads.
 * 2. connect() is called only once ready() has resolved (the host and the sessions await it), so
 *    that a bad target still throws synchronously from the controller, as in-process.
 * 3. A store closed before the module arrived never creates a controller.
 * 4. If the module cannot be loaded (a stale cache offline), the store still serves everything
 *    but sync: connect() throws a TRANSPORT SyncError that says why.
 * 5. Nothing loads the module unasked (unless `delayMs` asks for it): no timer, no status read.
 * 6. `history` (store/history-source.ts) is the loaded controller's. A read made while the module
 *    loads (something asked for it: a connect is coming) waits for it and goes to the controller
 *    (which waits for an opening link: sync/history-client.ts invariant 4). Before anything
 *    asked, nothing is connected here: a read goes to `fallbackHistory` (the leading tab's
 *    worker, through history-relay.ts) or rejects with HistoryUnavailableError
 *    (HISTORY_OFFLINE), and never loads the module by itself (invariant 5).
 */
import { HistoryUnavailableError, StoreClosedError, SyncError } from '../src/core/errors.ts';
import type { SyncConnection, SyncStatus, SyncTarget } from '../src/core/sync-types.ts';
import type { HistorySource } from '../src/store/history-source.ts';
import type { StoreInternals, SyncController, SyncFactory } from '../src/store/internal.ts';

type ControllerModule = { syncFactory: () => SyncFactory };

export interface LazySyncController extends SyncController {
  /** Loads the controller now if it is not loaded yet; resolves when connect() may be called. */
  ready(): Promise<void>;
}

export interface LazySyncOptions {
  load?: () => Promise<ControllerModule>;
  /**
   * Load the controller this long after the store opened even if nothing asked for it (an app
   * that will sync and wants it warm). Default: never (invariant 5).
   */
  delayMs?: number;
  /** Where history is read while no controller is loaded here (invariant 6). */
  fallbackHistory?: HistorySource;
}

const OFFLINE: SyncStatus = { state: 'offline', pending: 0 };

const loadController = (): Promise<ControllerModule> => import('../src/sync/controller.ts');

/** A SyncFactory whose controller is loaded after the store opened (see the header). */
export function lazySyncFactory(options: LazySyncOptions = {}) {
  return (internals: StoreInternals): LazySyncController => lazySync(internals, options);
}

function lazySync(internals: StoreInternals, options: LazySyncOptions): LazySyncController {
  let real: SyncController | undefined;
  let failure: unknown;
  let closed = false;
  let loading: Promise<void> | undefined;
  /** Listeners registered before the controller existed, with their unsubscribe once it does. */
  const early = new Map<(status: SyncStatus) => void, (() => void) | undefined>();

  const ready = (): Promise<void> => {
    clearTimeout(timer);
    loading ??= (options.load ?? loadController)().then(
      (module) => {
        if (closed) return;
        real = module.syncFactory()(internals);
        // The controller tells its listeners its status once its first reads are done.
        for (const listener of [...early.keys()]) early.set(listener, real.on('status', listener));
      },
      (error: unknown) => {
        failure = error;
      },
    );
    return loading;
  };
  const timer =
    options.delayMs === undefined ? undefined : setTimeout(() => void ready(), options.delayMs);

  return {
    ready,
    connect(target: SyncTarget): SyncConnection {
      if (real !== undefined) return real.connect(target);
      if (closed) throw new StoreClosedError();
      if (failure !== undefined) {
        throw new SyncError('TRANSPORT', `the sync module could not be loaded: ${String(failure)}`);
      }
      // Invariant 2: callers await ready(); reaching this is a bug in the worker.
      throw new SyncError('TRANSPORT', 'sync is still loading: await ready() before connect()');
    },
    status: () => (real === undefined ? { ...OFFLINE } : real.status()),
    history: {
      async read(query) {
        // Invariant 6: the host connects as soon as the module is there, before this goes on.
        if (real === undefined && loading !== undefined) await loading;
        const source = real?.history ?? options.fallbackHistory;
        if (source === undefined) {
          return Promise.reject(
            new HistoryUnavailableError(
              'older history is on the server, and this store is not connected to one',
            ),
          );
        }
        return source.read(query);
      },
    },
    on(_event: 'status', listener: (status: SyncStatus) => void): () => void {
      if (real !== undefined) return real.on('status', listener);
      early.set(listener, undefined);
      return () => {
        early.get(listener)?.();
        early.delete(listener);
      };
    },
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      await real?.close();
    },
  };
}
