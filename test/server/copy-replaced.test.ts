/**
 * A copy of one id from another subject that sorts first replaces the held one everywhere
 * (core/copies.ts): the rule trusts every writer of a space, so the server logs who replaced
 * whose event, and the replica that held the loser reports it (README, When replicas disagree).
 * Binding an id to its author, so that no other writer can win it, needs signed events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type EventStore, memoryStorage, openStore } from '../../src/index.ts';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';

let t: TestServer | undefined;
const stores: EventStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  await t?.stop();
  t = undefined;
});

async function open(name: string, now: () => number): Promise<EventStore> {
  const store = await openStore({
    name,
    storage: memoryStorage(),
    now,
    syncOptions: { WebSocket: WebSocket as never },
  });
  stores.push(store);
  return store;
}

describe('a copy from another subject that wins an id', () => {
  it('is logged by the server with its sender, and reported where the loser was held', async () => {
    t = await startTestServer();
    const server = t;
    const alice = await open('alice', Date.now);
    const [original] = await alice.append('doc', { id: 'doc-title', type: 'title', data: 'A' });
    alice.sync.connect({ url: server.server.url, token: server.token({ sub: 'alice' }) });
    await waitFor(() => alice.sync.status().pending === 0, 15_000);

    // Stamped a minute earlier than alice's copy: first in the total order.
    const mallory = await open('mallory', () => Date.now() - 60_000);
    await mallory.append('doc', { id: 'doc-title', type: 'title', data: 'M' });
    mallory.sync.connect({ url: server.server.url, token: server.token({ sub: 'mallory' }) });

    await waitFor(async () => (await alice.read())[0]?.data === 'M', 15_000);
    expect(alice.sync.status().lastError).toMatchObject({
      code: 'ID_CONFLICT',
      eventId: 'doc-title',
    });
    const entry = server.logs.find((l) => l.event === 'copy_replaced');
    expect(entry).toMatchObject({
      level: 'warn',
      space: 'space-a',
      sub: 'mallory',
      code: 'ID_CONFLICT',
      eventId: 'doc-title',
      replica: original!.replica,
      seq: original!.seq,
      keptReplica: mallory.replicaId,
    });
  });
});
