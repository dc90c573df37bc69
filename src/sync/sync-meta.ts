/**
 * What the Syncer (controller.ts) keeps in the log's meta, and how it reads it back: a stored
 * value of the wrong shape reads as nothing kept, never as a position or an event.
 * - `sync.acked`: per peer, "it holds my log up to pos, where my highest seq is seq" (pending).
 * - `sync.refused`: the last REFUSED_KEPT events not sent to a peer (SyncStatus.refused).
 * - `sync.lastSyncedAt`: when a peer last had everything (SyncStatus.lastSyncedAt), so that a
 *   reload does not say "never synced".
 */
import type { JsonValue } from '../core/events.ts';
import type { RefusedEvent } from '../core/sync-types.ts';

export const ACKED_META_KEY = 'sync.acked';
export const REFUSED_META_KEY = 'sync.refused';
export const SYNCED_AT_META_KEY = 'sync.lastSyncedAt';
/** The stored lastSyncedAt is written again once it is this much older than the real one. */
export const SYNCED_AT_SAVE_MS = 10_000;
/** Refused events listed in the status at most (the most recent). */
export const REFUSED_KEPT = 100;

export function parseRefused(value: JsonValue | undefined): RefusedEvent[] {
  if (!Array.isArray(value)) return [];
  const out: RefusedEvent[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) continue;
    const { eventId, peer, code, message } = item;
    if (typeof eventId !== 'string' || typeof peer !== 'string' || typeof code !== 'string')
      continue;
    out.push({ eventId, peer, code, message: typeof message === 'string' ? message : '' });
  }
  return out.slice(-REFUSED_KEPT);
}

export interface AckedMark {
  pos: number;
  seq: number;
}

export function parseAcked(value: JsonValue | undefined): Record<string, AckedMark> {
  const out: Record<string, AckedMark> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [peer, mark] of Object.entries(value)) {
    if (typeof mark !== 'object' || mark === null || Array.isArray(mark)) continue;
    const { pos, seq } = mark as { [key: string]: JsonValue };
    if (typeof pos === 'number' && typeof seq === 'number') out[peer] = { pos, seq };
  }
  return out;
}

export function parseSyncedAt(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
