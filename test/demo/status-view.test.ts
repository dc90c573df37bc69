/** demo/src/status-view.ts: the sync status in words a person understands, never a bare code. */
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../demo/src/status-view.ts';
import type { SyncView } from '../../demo/src/sync.ts';
import type { SyncStatus } from '../../src/index.ts';

function words(status: SyncStatus, view: Partial<SyncView> = {}): string {
  const element = { textContent: '', title: '', dataset: {} } as unknown as HTMLElement;
  renderStatus(
    element,
    { status, forcedOffline: false, browserOffline: false, trusted: true, ...view },
    status.pending,
  );
  return element.textContent ?? '';
}

describe('the sync status line', () => {
  it('tells no network, the server unreachable and signed out apart', () => {
    expect(words({ state: 'offline', pending: 0 }, { browserOffline: true })).toMatch(
      /^Offline \(no network\)/,
    );
    const transport = { code: 'TRANSPORT', message: 'connect ECONNREFUSED' };
    expect(words({ state: 'connecting', pending: 1, lastError: transport })).toMatch(
      /^Sync server unreachable · 1 event waiting to be sent/,
    );
    const refused = { code: 'UNAUTHORIZED', message: 'token expired' };
    const signedOut = words({ state: 'connecting', pending: 0, lastError: refused });
    expect(signedOut).toMatch(/^Signed out · /);
    expect(signedOut).toContain('the sync server refused the sign-in');
    expect(signedOut).not.toContain('UNAUTHORIZED');
    expect(words({ state: 'idle', pending: 0, lastSyncedAt: 1 })).toMatch(/^Online, up to date/);
  });

  it('tells events refused or flagged as tampered, even when up to date', () => {
    const tampered = [
      { eventId: 'e1', replica: 'r', seq: 3, reason: 'bad-signature' as const, at: 1 },
      { eventId: 'e2', replica: 'r', seq: 4, reason: 'missing-link' as const, at: 1 },
    ];
    const line = words({ state: 'idle', pending: 0, lastSyncedAt: 1, tampered });
    expect(line).toMatch(/^Online, up to date/);
    expect(line).toContain('2 events altered, forged or dropped on the way: refused or flagged');
    expect(words({ state: 'idle', pending: 0 })).not.toContain('altered');
  });

  it('tells moves into Doing that wait for the server to accept them', () => {
    expect(words({ state: 'syncing', pending: 2, tentative: 1 })).toContain(
      '1 move into Doing waiting for the server to accept',
    );
  });
});
