/**
 * Two stores over memory transports, peer to peer (protocol invariant 11): binary frames where
 * both ends offer them, text where one end does not, and the same log either way.
 */
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  generateEncryptionKey,
  type LooseEvents,
  memoryStorage,
  memoryTransportPair,
  openStore,
} from '../../src/index.ts';
import { until } from './helpers.ts';

type Events = LooseEvents<{ title: string }>;

async function pair(binary: boolean | [boolean, boolean]) {
  const key = generateEncryptionKey();
  const stores: EventStore<Events>[] = [];
  for (const name of ['a', 'b']) {
    const store = await openStore<Events>({ name, storage: memoryStorage(), encryption: { key } });
    for (let i = 0; i < 25; i++) {
      await store.append(`card-${i % 4}`, { type: 'added', data: { title: `${name} ${i}` } });
    }
    stores.push(store);
  }
  const [ta, tb] = memoryTransportPair({ binary });
  const seen = { a: 0, b: 0 };
  ta.onBinary?.(() => {
    seen.a += 1;
  });
  tb.onBinary?.(() => {
    seen.b += 1;
  });
  const [a, b] = stores as [EventStore<Events>, EventStore<Events>];
  a.sync.connect(ta);
  b.sync.connect(tb);
  // Both hold every event.
  await until(async () => (await a.read()).length === 50 && (await b.read()).length === 50);
  expect(await a.read()).toEqual(await b.read());
  for (const s of stores) {
    expect(s.sync.status().tampered).toBeUndefined();
    await s.close();
  }
  return seen;
}

describe('binary frames peer to peer (memory transports)', () => {
  it('sends signed, sealed batches as binary frames both ways where both ends offer them', async () => {
    const seen = await pair(true);
    expect(seen.a).toBeGreaterThan(0);
    expect(seen.b).toBeGreaterThan(0);
  });

  it('keeps to text where one end does not offer them, and converges the same', async () => {
    const seen = await pair([true, false]);
    expect(seen).toEqual({ a: 0, b: 0 });
  });
});
