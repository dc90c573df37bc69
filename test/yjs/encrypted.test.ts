/**
 * Yjs documents in encrypted stores (issue 16): updates are sealed like any event, the local
 * open cache is sealed too, and shredding the document's stream clears that cache.
 */
import { describe, expect, it } from 'vitest';
import {
  generateEncryptionKey,
  memoryStorage,
  memoryTransportPair,
  openStore,
} from '../../src/index.ts';
import { bindYDoc } from '../../src/yjs/index.ts';
import { until } from '../sync/helpers.ts';

describe('bindYDoc on an encrypted store', () => {
  it('syncs sealed updates, seals its cache, and loses the cache with a shred', async () => {
    const key = generateEncryptionKey();
    const storage = memoryStorage();
    const a = await openStore({ name: 'a', storage, encryption: { key } });
    const b = await openStore({ name: 'b', storage: memoryStorage(), encryption: { key } });
    const [ta, tb] = memoryTransportPair();
    a.sync.connect(ta);
    b.sync.connect(tb);
    const docA = bindYDoc(a, 'card-1/notes');
    const docB = bindYDoc(b, 'card-1/notes');
    await Promise.all([docA.ready, docB.ready]);
    docA.doc.getText('t').insert(0, 'secret notes');
    await until(() => docB.doc.getText('t').toString() === 'secret notes');
    docA.destroy(); // writes the open cache
    const raw = await storage.open();
    const cached = await raw.getMeta('local:chronicle.yjs:card-1/notes');
    expect(cached).toMatchObject({ $sealed: expect.any(String), sealed: expect.any(String) });
    const stored = await raw.readByCursor({ stream: 'card-1/notes', limit: 10 });
    expect(JSON.stringify(stored)).not.toContain('secret');

    await a.shred('card-1/notes');
    expect(await raw.getMeta('local:chronicle.yjs:card-1/notes')).toBeNull();
    const again = bindYDoc(a, 'card-1/notes');
    await again.ready;
    expect(again.doc.getText('t').toString()).toBe('');
    again.destroy();
    docB.destroy();
    await raw.close();
    await Promise.all([a.close(), b.close()]);
  });
});
