/**
 * Appends racing the signer (store/signing.ts invariant 1): a store keeps appending while sync
 * signs and sends what it read; no own event may leave unsigned (a server that requires
 * signatures would refuse it, and the sender would leave it out for good).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, waitFor } from './helpers.ts';
import { storeClients } from './store-clients.ts';

const clients = storeClients();
let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('appends made while the signer works', () => {
  it('all reach a server that requires signatures, none refused', async () => {
    t = await startTestServer({ requireSignatures: true });
    const store = await clients.open(t.server.url, t.token({ space: 'race' }), {});
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) {
      appends.push(store.append(`s${i % 7}`, { type: 'typed', data: { i } }));
      if (i % 25 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(appends);
    await waitFor(() => store.sync.status().pending === 0, 20_000);
    const status = store.sync.status();
    expect(status.refused ?? []).toEqual([]);
    expect(status.lastError?.code).not.toBe('TAMPERED');
    expect(await (await t.storage.openSpace('race')).headPos()).toBe(400);
  });
});
