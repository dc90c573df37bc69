/** bindYDoc over the real sync module: two stores joined by a memory transport. */
import { describe, expect, it } from 'vitest';
import { memoryStorage, openStore } from '../../src/index.ts';
import { syncFactory } from '../../src/sync/controller.ts';
import { memoryTransportPair } from '../../src/sync/transports/memory.ts';
import { bindYDoc } from '../../src/yjs/index.ts';

async function until(predicate: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('bindYDoc with store sync', () => {
  it('two replicas editing one text converge through startPeerSession over a memory transport', async () => {
    const [ta, tb] = memoryTransportPair();
    const a = await openStore({ name: 'a', storage: memoryStorage(), syncFactory: syncFactory() });
    const b = await openStore({ name: 'b', storage: memoryStorage(), syncFactory: syncFactory() });
    const da = bindYDoc(a, 'notes', { snapshotEvery: 5 });
    const db = bindYDoc(b, 'notes', { snapshotEvery: 5 });
    await Promise.all([da.ready, db.ready]);
    da.doc.getText('t').insert(0, 'offline a. ');
    db.doc.getText('t').insert(0, 'offline b. ');
    await Promise.all([da.flush(), db.flush()]);
    const ca = a.sync.connect(ta);
    const cb = b.sync.connect(tb);
    for (let i = 0; i < 12; i++) {
      (i % 2 ? da : db).doc.getText('t').insert(0, String(i));
      await (i % 2 ? da : db).flush();
    }
    const text = () => da.doc.getText('t').toString();
    await until(() => text().length === 22 + 12 + 2 && text() === db.doc.getText('t').toString());
    expect(text()).toContain('offline a. ');
    await ca.close();
    await cb.close();
    da.destroy();
    db.destroy();
    await a.close();
    await b.close();
  });
});
