/**
 * `@chronicle-es/store/worker`: the worker host. The app writes a tiny worker module that imports
 * its projections (reducers are code: they cannot be sent across threads) and calls serveStore.
 *
 * @example
 * // store.worker.ts
 * import { serveStore } from '@chronicle-es/store/worker';
 * import { todos } from './projections.ts';
 * serveStore({ name: 'todos', projections: [todos], sync: { url: 'wss://sync.example.com' } });
 *
 * Invariants:
 * 1. In a SharedWorker every connecting port is served (one store for every tab); in a dedicated
 *    Worker its page is served. Both speak src/client/protocol.ts.
 * 2. A client of another protocol version is refused with a message, never half-served.
 * 3. Errors cross with their class and code (src/client/errors.ts is installed first).
 * 4. The store starts opening as soon as serveStore runs (host.ts, 5): the first page is on its
 *    way, and its first state should not wait for the IndexedDB open to start.
 */

import { installErrorTransfer } from '../src/client/errors.ts';
import {
  type ClientMessage,
  type HostMessage,
  type HostMode,
  isClientMessage,
  PROTOCOL_VERSION,
} from '../src/client/protocol.ts';
import { ValidationError } from '../src/core/errors.ts';
import { type ServeOptions, StoreHost } from './host.ts';
import { liveListeners, Session } from './session.ts';

export type { ServeOptions } from './host.ts';

/** The parts of a worker scope or port that serving needs (lib.dom has no worker scopes). */
interface Endpoint {
  addEventListener(type: 'message', listener: (event: MessageEvent<unknown>) => void): void;
  postMessage(message: unknown, transfer?: Transferable[]): void;
  start?: () => void;
}

interface SharedScope {
  addEventListener(type: 'connect', listener: (event: MessageEvent<unknown>) => void): void;
}

/**
 * A SharedWorker's global scope has `onconnect`; a dedicated worker's has `postMessage` instead.
 */
function scopeMode(): HostMode | undefined {
  const scope = globalThis as Record<string, unknown>;
  if ('onconnect' in scope) return 'shared';
  if (typeof scope.postMessage === 'function' && typeof scope.importScripts === 'function') {
    return 'dedicated';
  }
  return undefined;
}

/**
 * Serves an event store to the pages that connect with connectStore().
 *
 * `sync`, when given, is connected by the one worker that holds the leader Web Lock: the
 * SharedWorker, or in the fallback mode (no SharedWorker) one tab's worker at a time.
 */
export function serveStore<E = unknown>(options: ServeOptions<E>): void {
  const mode = scopeMode();
  if (mode === undefined) {
    throw new ValidationError(
      'serveStore',
      'must be called in a SharedWorker or a dedicated Worker',
    );
  }
  installErrorTransfer();
  const host = new StoreHost(options as ServeOptions, mode);
  const sessions = new Set<Session>();

  const serve = (endpoint: Endpoint) => {
    endpoint.addEventListener('message', (event) => {
      if (!isClientMessage(event.data)) return;
      handle(event.data);
    });
    endpoint.start?.();
  };

  const handle = (message: ClientMessage) => {
    switch (message.type) {
      case 'chronicle:connect': {
        if (message.version !== PROTOCOL_VERSION) {
          const refusal: HostMessage = {
            type: 'chronicle:refused',
            error: new ValidationError(
              'protocol',
              `the page speaks protocol ${message.version}, this worker ${PROTOCOL_VERSION}: reload the page`,
            ).toJSON(),
          };
          message.port.postMessage(refusal);
          message.port.close();
          return;
        }
        const session = new Session(host, message.port, (s) => sessions.delete(s));
        sessions.add(session);
        session.start(message.lock);
        return;
      }
      case 'chronicle:stats': {
        const stats: HostMessage = {
          type: 'chronicle:stats',
          connections: sessions.size,
          listeners: liveListeners.count,
          leader: host.status().leader,
        };
        message.reply.postMessage(stats);
        message.reply.close();
        return;
      }
      default: {
        const never: never = message;
        return never;
      }
    }
  };

  host.openAhead();
  if (mode === 'shared') {
    (globalThis as unknown as SharedScope).addEventListener('connect', (event) => {
      for (const port of event.ports) serve(port);
    });
  } else {
    serve(globalThis as unknown as Endpoint);
  }
}
