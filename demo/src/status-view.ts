/** The sync status line: online/offline/syncing, events waiting to be sent, last sync. */
import { clock } from './dom.ts';
import type { SyncView } from './sync.ts';

/** What a sync error means for the person looking at the board (never a bare code). */
const ERROR_WORDS: Record<string, string> = {
  TRANSPORT: 'the sync server cannot be reached; retrying',
  UNAUTHORIZED: 'the sync server refused the sign-in; getting a new one',
  FORBIDDEN: 'this device may not sync this board',
  LIMIT_EXCEEDED: 'the sync server is busy or an event is too large; retrying',
  CLOCK_SKEW: "this device's clock is off; fix the date and time",
  PROTOCOL_VERSION: 'the sync server runs another version; reload the page',
};

/** `pending`: this replica's events the server has not acknowledged (see main.ts, ackedUpTo). */
export function renderStatus(element: HTMLElement, view: SyncView, pending: number): void {
  const status = { ...view.status, pending };
  const state = view.forcedOffline ? 'paused' : view.browserOffline ? 'offline' : status.state;
  // The network is up but the connection keeps failing: the server is down, not the network.
  const serverDown =
    !view.browserOffline &&
    (state === 'offline' || state === 'connecting') &&
    status.lastError?.code === 'TRANSPORT';
  const words: Record<typeof state, string> = {
    paused: 'Offline (by choice)',
    offline: view.browserOffline ? 'Offline (no network)' : 'Not connected',
    connecting: 'Connecting…',
    syncing: 'Syncing…',
    idle: 'Online, up to date',
  };
  // The server is up and refuses this device's sign-in: neither offline nor unreachable.
  const signedOut =
    !serverDown &&
    state !== 'idle' &&
    state !== 'paused' &&
    (status.lastError?.code === 'UNAUTHORIZED' || status.lastError?.code === 'FORBIDDEN');
  const parts = [serverDown ? 'Sync server unreachable' : signedOut ? 'Signed out' : words[state]];
  parts.push(
    status.pending === 0
      ? 'nothing waiting to be sent'
      : `${status.pending} event${status.pending === 1 ? '' : 's'} waiting to be sent`,
  );
  const tentative = view.status.tentative ?? 0;
  if (tentative > 0) {
    parts.push(
      `${tentative} move${tentative === 1 ? '' : 's'} into Doing waiting for the server to accept`,
    );
  }
  parts.push(
    status.lastSyncedAt === undefined
      ? 'not synced yet'
      : `last synced ${clock(status.lastSyncedAt)}`,
  );
  // Tamper evidence (core/integrity.ts): shown whatever the state, it is about what arrived.
  const tampered = view.status.tampered?.length ?? 0;
  if (tampered > 0) {
    parts.push(
      `${tampered} event${tampered === 1 ? '' : 's'} altered, forged or dropped on the way: refused or flagged`,
    );
  }
  const error = status.lastError;
  if (error !== undefined && state !== 'idle' && state !== 'paused' && !serverDown) {
    parts.push(ERROR_WORDS[error.code] ?? error.message);
  }
  element.textContent = parts.join(' · ');
  // The pill may cut its text to fit the header: the tooltip has all of it, and the error's code.
  element.title =
    error === undefined
      ? element.textContent
      : `${element.textContent} (${error.code}: ${error.message})`;
  element.dataset.state = state;
  element.dataset.pending = String(status.pending);
}
