/** What the strict-stream tests share: a device's store on an account, and "all settled". */
import WebSocket from 'ws';
import {
  type EventStore,
  memoryStorage,
  openStore,
  type Projection,
  type StorageAdapter,
  type SyncStatus,
} from '../../src/index.ts';
import { type AccountEvents, account } from '../store/fixtures/account.ts';

/** A store whose `account-*` streams are strict, with a short reconnect backoff. */
export function openAccountStore(
  name: string,
  options: { storage?: StorageAdapter; projections?: Projection<unknown, AccountEvents>[] } = {},
): Promise<EventStore<AccountEvents>> {
  return openStore<AccountEvents>({
    name,
    storage: options.storage ?? memoryStorage(),
    aggregates: [account],
    strictStreams: ['account-*'],
    ...(options.projections ? { projections: options.projections } : {}),
    // Short backoff: the tests take devices and servers off and on line.
    syncOptions: { WebSocket: WebSocket as never, backoff: { initialMs: 20, maxMs: 200 } },
  });
}

/** Nothing left to do: idle, nothing pending or tentative, no command waiting to run again. */
export function strictSettled(status: SyncStatus): boolean {
  return (
    status.state === 'idle' &&
    status.pending === 0 &&
    status.tentative === undefined &&
    !(status.rejected ?? []).some((r) => r.command?.outcome === 'pending')
  );
}
