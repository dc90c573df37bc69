/**
 * Where a store reads history it does not keep (docs/storage-growth.md): the server's log, in the
 * total order, through the sync connection. The sync controller provides one; the store's reads,
 * time travel and projection rebases below the device's horizon use it.
 */
import type { StoredEventRecord } from '../core/events.ts';
import type { CursorQuery } from '../storage/adapter.ts';

export interface HistorySource {
  /**
   * The server's events matching `query`, with the meaning of EventLog.readByCursor (at most
   * `limit`, in the total order, or reversed). Validated like received events; not stored.
   * Rejects with HistoryUnavailableError (HISTORY_OFFLINE) when no server can answer now.
   */
  read(query: CursorQuery): Promise<StoredEventRecord[]>;
}
