/**
 * src/storage/idb-connection.ts invariant 4, in real Chromium and Firefox: close() resolves once the
 * connection is closed, so another tab's upgrade right after it is not `blocked` by a
 * transaction that was still running; and an upgrade asked while close() still waits for them is
 * not `blocked` either (the connection is closed at once, its transactions left to finish).
 */
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../../src/storage/idb-schema.ts';
import { indexedDbStorage } from '../../../src/storage/indexeddb.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** Opens `name` at a newer version; says whether the open was blocked on the way. */
function upgrade(name: string): Promise<{ blocked: boolean }> {
  return new Promise((resolve, reject) => {
    let blocked = false;
    const request = indexedDB.open(name, SCHEMA_VERSION + 1);
    request.onblocked = () => {
      blocked = true;
    };
    request.onsuccess = () => {
      request.result.close();
      resolve({ blocked });
    };
    request.onerror = () => reject(request.error);
  });
}

describe('IndexedDB close()', () => {
  it('leaves no transaction behind: an upgrade right after it is not blocked', async () => {
    const name = `close-${run}`;
    const log = await indexedDbStorage(name).open({ durability: 'relaxed' });
    for (let batch = 0; batch < 20; batch++) {
      await log.appendLocal({
        stream: `s-${batch}`,
        events: Array.from({ length: 100 }, (_, i) => ({
          type: 'filled',
          data: { i, text: 'x'.repeat(200) },
          schema: 1,
        })),
        expectedVersion: 'any',
        now: Date.now(),
      });
    }
    // Reads still running when close() is called.
    const reads = [
      log.readByCursor({ limit: 2000 }),
      log.readByPos(0, 2000),
      log.readByCursor({ limit: 2000, reverse: true }),
    ];
    const settled = Promise.allSettled(reads);
    await log.close();
    expect(await upgrade(name)).toEqual({ blocked: false });
    await settled;
    indexedDB.deleteDatabase(name);
  });

  it('is not blocked by an upgrade asked while close() waits for the transactions in flight', async () => {
    const name = `close-during-${run}`;
    const log = await indexedDbStorage(name).open({ durability: 'relaxed' });
    // A write still running when close() is called, so close() has to wait for it.
    const writing = log.appendLocal({
      stream: 's',
      events: Array.from({ length: 3000 }, (_, i) => ({
        type: 'filled',
        data: { i, text: 'x'.repeat(200) },
        schema: 1,
      })),
      expectedVersion: 'any',
      now: Date.now(),
    });
    const closing = log.close();
    expect(await upgrade(name)).toEqual({ blocked: false });
    await closing;
    await writing;
    indexedDB.deleteDatabase(name);
  });
});
