/** The sync status line: online/offline/syncing, events waiting to be sent, last sync. */
import { clock } from './dom.ts';
import type { SyncView } from './sync.ts';

/** `pending`: this replica's events the server has not acknowledged (see main.ts, ackedUpTo). */
export function renderStatus(element: HTMLElement, view: SyncView, pending: number): void {
  const status = { ...view.status, pending };
  const state = view.forcedOffline ? 'paused' : view.browserOffline ? 'offline' : status.state;
  const words: Record<typeof state, string> = {
    paused: 'Offline (by choice)',
    offline: view.browserOffline ? 'Offline (no network)' : 'Offline',
    connecting: 'Connecting…',
    syncing: 'Syncing…',
    idle: 'Online, up to date',
  };
  const parts = [words[state]];
  parts.push(
    status.pending === 0
      ? 'nothing waiting to be sent'
      : `${status.pending} event${status.pending === 1 ? '' : 's'} waiting to be sent`,
  );
  parts.push(
    status.lastSyncedAt === undefined
      ? 'not synced yet'
      : `last synced ${clock(status.lastSyncedAt)}`,
  );
  if (status.lastError !== undefined && state !== 'idle') parts.push(`(${status.lastError.code})`);
  element.textContent = parts.join(' · ');
  element.dataset.state = state;
  element.dataset.pending = String(status.pending);
}
