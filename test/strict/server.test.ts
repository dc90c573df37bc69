/**
 * Strict streams end to end (issue 19): stores opened with openStore sync through a real sync
 * server (SQLite, WebSocket on 127.0.0.1); the server is the authority of strict streams.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  defineProjection,
  type EventStore,
  memoryStorage,
  type Projection,
  type StoredEvent,
} from '../../src/index.ts';
import { startTestServer, type TestServer, waitFor } from '../server/helpers.ts';
import { type AccountEvents, account, balanceNeverNegative } from '../store/fixtures/account.ts';
import { openAccountStore } from './helpers.ts';

let t: TestServer | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  await t?.stop();
  t = undefined;
});

type Store = EventStore<AccountEvents>;

/** Every account's deposits less withdrawals: a projection that shows a lost event. */
const balance = defineProjection<number, AccountEvents>({
  name: 'balance',
  version: 1,
  initial: () => 0,
  apply: (sum, e) => (e.type === 'Deposited' ? sum + e.data.cents : sum - e.data.cents),
});

async function device(
  name: string,
  sub = name,
): Promise<{ store: Store; online(): void; offline(): Promise<void> }> {
  const store = await openAccountStore(name);
  closers.push(() => store.close());
  let connection: ReturnType<Store['sync']['connect']> | undefined;
  return {
    store,
    online() {
      connection = store.sync.connect({ url: t!.server.url, token: t!.token({ sub }) });
    },
    async offline() {
      await connection?.close();
      connection = undefined;
    },
  };
}

const accountEvents = async (store: Store, stream = 'account-1') =>
  (await store.read({ stream })) as StoredEvent<AccountEvents>[];

/** Two devices on line, an account holding 100 cents on both. */
async function twoDevicesWith100() {
  t = await startTestServer();
  const a = await device('a');
  const b = await device('b');
  a.online();
  b.online();
  await a.store.execute(account, 'account-1', 'deposit', { cents: 100 });
  await waitFor(async () => (await accountEvents(b.store)).length === 1, 10_000);
  return { a, b };
}

describe('strict streams through the sync server', () => {
  it('keeps the balance rule across two devices that withdrew offline: one withdrawal stands, the other is run again and rejected, on both', async () => {
    const { a, b } = await twoDevicesWith100();
    await waitFor(() => a.store.sync.status().pending === 0, 10_000);
    await a.offline();
    await b.offline();
    // Offline, each device sees 100 cents and withdraws 80: each rule holds locally.
    await a.store.execute(account, 'account-1', 'withdraw', { cents: 80 });
    await b.store.execute(account, 'account-1', 'withdraw', { cents: 80 });
    expect(a.store.sync.status().tentative).toBe(1);
    a.online();
    await waitFor(() => a.store.sync.status().pending === 0, 10_000);
    expect(a.store.sync.status().tentative).toBeUndefined();
    b.online();
    await waitFor(
      () => b.store.sync.status().rejected?.[0]?.command?.outcome === 'rejected',
      10_000,
    );
    const [rejected] = b.store.sync.status().rejected!;
    expect(rejected).toMatchObject({
      stream: 'account-1',
      reason: 'stale',
      command: { aggregate: 'account', name: 'withdraw', reason: 'INSUFFICIENT_FUNDS' },
    });
    await waitFor(async () => (await accountEvents(b.store)).length === 2, 10_000);
    const onA = await accountEvents(a.store);
    const onB = await accountEvents(b.store);
    expect(onB.map((e) => e.id)).toEqual(onA.map((e) => e.id));
    expect(balanceNeverNegative(onA)).toBe(true);
    expect(onA.map((e) => e.version)).toEqual([1, 2]);
    expect(b.store.sync.status().tentative).toBeUndefined();
    await waitFor(() => b.store.sync.status().pending === 0, 10_000);
  });

  it('rebases a command that still holds on the new state: it is appended again after the winner', async () => {
    const { a, b } = await twoDevicesWith100();
    await a.offline();
    await b.offline();
    await a.store.execute(account, 'account-1', 'withdraw', { cents: 30 });
    await b.store.execute(account, 'account-1', 'withdraw', { cents: 50 }, { commandId: 'b-w1' });
    a.online();
    await waitFor(() => a.store.sync.status().pending === 0, 10_000);
    b.online();
    await waitFor(
      () => b.store.sync.status().rejected?.[0]?.command?.outcome === 'rebased',
      10_000,
    );
    await waitFor(async () => (await accountEvents(a.store)).length === 3, 10_000);
    await waitFor(() => b.store.sync.status().pending === 0, 10_000);
    const onA = await accountEvents(a.store);
    const onB = await accountEvents(b.store);
    expect(onB.map((e) => e.id)).toEqual(onA.map((e) => e.id));
    expect(onA.map((e) => [e.type, e.version])).toEqual([
      ['Deposited', 1],
      ['Withdrawn', 2],
      ['Withdrawn', 3],
    ]);
    // The rebased event keeps the command's id and says it is a rebase.
    expect(onA[2]!.id).toBe('b-w1:0');
    expect(onA[2]!.meta).toMatchObject({ $commandId: 'b-w1', $rebase: 1 });
    expect(await b.store.conflicts()).toEqual([]);
  });

  it('rebases another tab of the rejected device: its projection no longer folds the event taken out', async () => {
    t = await startTestServer();
    const storage = memoryStorage();
    const open = () =>
      openAccountStore('tabs', {
        storage,
        projections: [balance as Projection<unknown, AccountEvents>],
      });
    // Two tabs of one device: one database, one replica; only the first one syncs.
    const leader = await open();
    const tab = await open();
    closers.push(
      () => leader.close(),
      () => tab.close(),
    );
    // The tabs' device deposits 7 first, off line; the other device deposits 100 later, on line.
    await leader.append('account-1', { type: 'Deposited', data: { cents: 7 } });
    await waitFor(async () => (await tab.state<number>('balance')) === 7, 10_000);
    const other = await device('other');
    other.online();
    await other.store.append('account-1', { type: 'Deposited', data: { cents: 100 } });
    await waitFor(() => other.store.sync.status().pending === 0, 10_000);
    leader.sync.connect({ url: t.server.url, token: t.token({ sub: 'tabs' }) });
    // The 7 lost the first place and left the log; the 100 sorts after it, so nothing arriving
    // makes the other tab fold again: only the leader's notice does.
    await waitFor(() => (leader.sync.status().rejected?.length ?? 0) === 1, 10_000);
    await waitFor(async () => (await leader.read({ stream: 'account-1' })).length === 1, 10_000);
    expect(await leader.state<number>('balance')).toBe(100);
    await waitFor(async () => (await tab.state<number>('balance')) === 100, 10_000);
    expect((await tab.read({ stream: 'account-1' })).map((e) => e.data)).toEqual([{ cents: 100 }]);
  });

  it('takes a plain append that lost out of the log and reports it; non-strict streams still merge', async () => {
    t = await startTestServer();
    const a = await device('a');
    const b = await device('b');
    await a.store.append('account-9', { type: 'Deposited', data: { cents: 1 } });
    await b.store.append('account-9', { type: 'Deposited', data: { cents: 2 } });
    await a.store.append('notes', { type: 'Deposited', data: { cents: 3 } });
    await b.store.append('notes', { type: 'Deposited', data: { cents: 4 } });
    a.online();
    await waitFor(() => a.store.sync.status().pending === 0, 10_000);
    b.online();
    await waitFor(() => (b.store.sync.status().rejected?.length ?? 0) === 1, 10_000);
    expect(b.store.sync.status().rejected![0]).toMatchObject({
      stream: 'account-9',
      reason: 'stale',
    });
    expect(b.store.sync.status().rejected![0]!.command).toBeUndefined();
    await waitFor(
      async () => (await a.store.read()).length === 3 && (await b.store.read()).length === 3,
      10_000,
    );
    expect((await b.store.read()).map((e) => e.id)).toEqual(
      (await a.store.read()).map((e) => e.id),
    );
    expect((await a.store.read({ stream: 'account-9' })).map((e) => e.data)).toEqual([
      { cents: 1 },
    ]);
    expect((await a.store.conflicts()).map((c) => c.stream)).toEqual(['notes']);
  });
});
