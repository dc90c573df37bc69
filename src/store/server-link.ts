/**
 * The store's view of its sync server, for a partial replica (docs/storage-growth.md): where it
 * reads the history it trimmed, and how far the server holds its log. The sync controller
 * provides one through StoreInternals.attachServer once a server session is up; the store trims
 * nothing and reads no history without one.
 */
import type { HistorySource } from './history-source.ts';

export interface ServerLink {
  history: HistorySource;
  /**
   * The server's checkpoint of this replica's log: it holds every event at a local position
   * <= this (sync.acked of the server's replica). 0 while unknown. Only a server counts, never a
   * peer (core/retention.ts invariant 1).
   */
  ackedPos(): number;
  /**
   * Calls `listener` when the checkpoint moved or history may answer again (a session to the
   * server opened): stale projections rebase and retention runs then. Returns unsubscribe.
   */
  onChange(listener: () => void): () => void;
}
