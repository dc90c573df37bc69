/** The store's sealed view of a log (store/sealed-log.ts), over memory storage. */
import { describe, expect, it } from 'vitest';
import { generateEncryptionKey, Keyring, spaceKey } from '../../src/core/keyring.ts';
import { sealEvents } from '../../src/core/sealing.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { SealedLog, type UnreadableEvent } from '../../src/store/sealed-log.ts';

describe('SealedLog', () => {
  it('reads back what it sealed without its key, and only the very text (invariant 4)', async () => {
    const key = await spaceKey(generateEncryptionKey());
    const keyring = new Keyring(key);
    const unreadable: UnreadableEvent[] = [];
    const view = new SealedLog(await memoryStorage().open(), keyring, {
      prepare: async () => {},
      isShredded: () => false,
      onUnreadable: (e) => unreadable.push(e),
    });
    const inputs = [1, 2, 3].map((n) => ({ stream: 's', type: 't', data: { n } }));
    const sealed = await sealEvents(key, inputs);
    const [kept, changed] = [sealed[0]!, sealed[1]!];
    view.remember(kept.data, 's', { data: { n: 1 } });
    // The same IV with another text after it: found by its IV, refused by its text.
    const forged = `${kept.data.slice(0, 16)}${changed.data.slice(16)}`;
    view.remember(changed.data, 's', { data: { n: 2 } });
    const written = await view.appendLocal({
      stream: 's',
      expectedVersion: 'any',
      now: 1,
      events: [
        { type: 't', data: kept.data, meta: kept.meta, schema: 1 },
        { type: 't', data: forged, meta: kept.meta, schema: 1 },
        { type: 't', data: sealed[2]!.data, meta: sealed[2]!.meta, schema: 1 },
      ],
    });
    // Without the key, only what was remembered opens: it was not decrypted.
    keyring.remove(key.kid);
    const read = await view.readByCursor({ stream: 's', limit: 10 });
    expect(written.kind).toBe('written');
    expect(read.map((r) => r.event.data)).toEqual([{ n: 1 }, forged, sealed[2]!.data]);
    // The forged text was opened at the append (the key was there) and failed: not recalled.
    expect(unreadable.map((u) => u.reason)).toEqual(['corrupt', 'key-unknown', 'key-unknown']);
  });
});
