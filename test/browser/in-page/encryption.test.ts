/**
 * End-to-end encryption in a real browser (Chromium and Firefox): WebCrypto in the store's
 * worker, sealed events and snapshots in real IndexedDB, open ones through connectStore.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ConnectedStore,
  connectStore,
  encodeEncryptionKey,
  generateEncryptionKey,
  openStore,
} from '../../../src/index.ts';
import { startTestWorker } from '../fixtures/workers.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let databases = 0;

describe.each(['dedicated', 'shared'] as const)('an encrypted store in a %s worker', (mode) => {
  const opened: { store: ConnectedStore; worker: Worker | SharedWorker }[] = [];

  async function open(db: string, key: Uint8Array) {
    const worker = startTestWorker({ db, encryptionKey: encodeEncryptionKey(key) }, mode);
    const store = await connectStore(worker);
    opened.push({ store, worker });
    return store;
  }

  afterEach(async () => {
    for (const { store, worker } of opened.splice(0)) {
      await store.close();
      if (worker instanceof Worker) worker.terminate();
    }
  });

  it('stores sealed events in IndexedDB, and serves them open', async () => {
    const db = `encryption-${mode}-${run}-${++databases}`;
    const key = generateEncryptionKey();
    const store = await open(db, key);
    const marker = `marker-${run}`;
    for (let i = 0; i < 12; i++) {
      await store.append(`todo-${i}`, {
        type: 'TodoAdded',
        data: { title: `${marker} ${i}` },
        meta: { by: marker },
      });
    }
    expect(await store.state('count')).toBe(12);
    const [first] = await store.read({ limit: 1 });
    expect(first).toMatchObject({ data: { title: `${marker} 0` }, meta: { by: marker } });

    // The same database read without the key, in the page: sealed through and through.
    const raw = await openStore({ name: db });
    const stored = await raw.read();
    expect(stored).toHaveLength(12);
    expect(JSON.stringify(stored)).not.toContain(marker);
    expect(
      stored.every((e) => typeof e.data === 'string' && typeof e.meta?.$sealed === 'string'),
    ).toBe(true);
    await raw.close();
  });
});
