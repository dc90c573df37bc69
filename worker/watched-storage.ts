/**
 * Wraps the store's StorageAdapter for the worker: reports when another tab closed the database
 * (versionchange, delete), and re-reads the log now and then in case a write notice was lost.
 *
 * Invariants:
 * 1. A database closed from outside is reported once, with its reason; the connection is already
 *    closed by the adapter then (it never blocks the other tab's upgrade or delete).
 * 2. IndexedDB is the truth, BroadcastChannel only a hint (RELIABILITY 33): every
 *    `pollIntervalMs` the head position is read, and if it moved past what any notice said,
 *    the store's remote-write listeners are called as if a notice had come.
 * 3. Polling stops when the log closes; it never keeps a closed connection busy.
 * 4. Each poll also reads the log's rewrites (src/storage/rewrites.ts): one made since the last
 *    poll (after the first) is told as a notice naming the smallest cursor it touched, so a tab
 *    that missed another's notice of a discard or a re-stamp still folds again.
 */
import type { ClosedReason } from '../src/client/protocol.ts';
import type {
  EventLog,
  OpenOptions,
  RemoteWriteListener,
  StorageAdapter,
} from '../src/storage/adapter.ts';
import { REWRITES_META_KEY, rewritesAfter } from '../src/storage/rewrites.ts';

export interface WatchedStorageOptions {
  onExternalClose: (reason: ClosedReason) => void;
  /** 0 disables polling. */
  pollIntervalMs: number;
}

function watchLog(log: EventLog, pollIntervalMs: number): EventLog {
  const listeners = new Set<RemoteWriteListener>();
  let known = -1;
  /** The last rewrite seen (src/storage/rewrites.ts); -1 until the first poll. */
  let rewritesSeen = -1;
  let timer: ReturnType<typeof setInterval> | undefined;
  let polling = false;

  const poll = async () => {
    if (polling || listeners.size === 0) return;
    polling = true;
    try {
      const [head, rewrites] = await Promise.all([log.headPos(), log.getMeta(REWRITES_META_KEY)]);
      // Invariant 4: events another handle took out or moved, its notice lost.
      const rewritten = rewritesAfter(rewrites, Math.max(0, rewritesSeen));
      if (rewritten !== undefined) {
        if (rewritesSeen >= 0)
          for (const listener of [...listeners]) listener(head, rewritten.from);
        rewritesSeen = rewritten.n;
      } else if (rewritesSeen < 0) rewritesSeen = 0;
      if (known >= 0 && head > known) for (const listener of [...listeners]) listener(head);
      known = Math.max(known, head);
    } catch {
      // Closed or failing: the store reports that through its own calls (invariant 3).
      clearInterval(timer);
    } finally {
      polling = false;
    }
  };
  if (pollIntervalMs > 0) timer = setInterval(() => void poll(), pollIntervalMs);

  // The log's methods live on its prototype: a Proxy keeps them (and `this`) intact.
  return new Proxy(log, {
    get(target, property, receiver) {
      if (property === 'onRemoteWrite') {
        return (listener: RemoteWriteListener) => {
          listeners.add(listener);
          const inner = target.onRemoteWrite((head, rewrittenFrom) => {
            known = Math.max(known, head);
            listener(head, rewrittenFrom);
          });
          void poll();
          return () => {
            listeners.delete(listener);
            inner();
          };
        };
      }
      if (property === 'close') {
        return () => {
          clearInterval(timer);
          return target.close();
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The adapter the worker's store opens: `inner` with external-close reports and polling. */
export function watchedStorage(
  inner: StorageAdapter,
  options: WatchedStorageOptions,
): StorageAdapter {
  return {
    name: inner.name,
    async open(openOptions: OpenOptions = {}): Promise<EventLog> {
      const log = await inner.open({
        ...openOptions,
        onExternalClose: (reason) => {
          openOptions.onExternalClose?.(reason);
          options.onExternalClose(reason);
        },
      });
      return watchLog(log, options.pollIntervalMs);
    },
  };
}
