/**
 * The worker's sync controller, loaded with a dynamic import() once the store exists: the sync
 * module (protocol, sessions, WebSocket transport) is about a quarter of the worker's code and
 * is not needed for a page's first state, so the worker's script starts smaller, and the sync
 * controller's own first reads queue behind the projections' on the cold start path.
 *
 * Invariants:
 * 1. Until the module is loaded, status() is offline with nothing pending (what the controller
 *    itself reports before its first reads); listeners registered meanwhile are handed to it,
 *    which tells them its status after those reads.
 * 2. connect() is called only once `loaded` has resolved (the host and the sessions await it), so
 *    that a bad target still throws synchronously from the controller, as in-process.
 * 3. A store closed before the module arrived never creates a controller.
 * 4. If the module cannot be loaded (a stale cache offline), the store still serves everything
 *    but sync: connect() throws a TRANSPORT SyncError that says why.
 */
import { StoreClosedError, SyncError } from '../src/core/errors.ts';
import type { SyncConnection, SyncStatus, SyncTarget } from '../src/core/sync-types.ts';
import type { StoreInternals, SyncController, SyncFactory } from '../src/store/internal.ts';

type ControllerModule = { syncFactory: () => SyncFactory };

export interface LazySyncController extends SyncController {
  /** Resolves when connect() may be called (invariant 2); never rejects. */
  readonly loaded: Promise<void>;
}

const OFFLINE: SyncStatus = { state: 'offline', pending: 0 };

const loadController = (): Promise<ControllerModule> => import('../src/sync/controller.ts');

/** A SyncFactory whose controller is loaded on first use of the store's sync (see the header). */
export function lazySyncFactory(load: () => Promise<ControllerModule> = loadController) {
  return (internals: StoreInternals): LazySyncController => lazySync(internals, load);
}

function lazySync(
  internals: StoreInternals,
  load: () => Promise<ControllerModule>,
): LazySyncController {
  let real: SyncController | undefined;
  let failure: unknown;
  let closed = false;
  /** Listeners registered before the controller existed, with their unsubscribe once it does. */
  const early = new Map<(status: SyncStatus) => void, (() => void) | undefined>();

  const loaded = load().then(
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

  return {
    loaded,
    connect(target: SyncTarget): SyncConnection {
      if (real !== undefined) return real.connect(target);
      if (closed) throw new StoreClosedError();
      if (failure !== undefined) {
        throw new SyncError('TRANSPORT', `the sync module could not be loaded: ${String(failure)}`);
      }
      // Invariant 2: callers await `loaded`; reaching this is a bug in the worker.
      throw new SyncError('TRANSPORT', 'sync is still loading: await `loaded` before connect()');
    },
    status: () => (real === undefined ? { ...OFFLINE } : real.status()),
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
      await real?.close();
    },
  };
}
