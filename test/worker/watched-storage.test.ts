/**
 * worker/watched-storage.ts invariants 2 and 4: IndexedDB is the truth, a BroadcastChannel
 * notice only a hint. With every notice lost, a handle still hears of another handle's appends
 * (the head moved) and of its discards (the log's rewrites), on the next poll.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventLog } from '../../src/storage/adapter.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { watchedStorage } from '../../worker/watched-storage.ts';

const post = BroadcastChannel.prototype.postMessage;
const opened: EventLog[] = [];
afterEach(async () => {
  BroadcastChannel.prototype.postMessage = post;
  for (const log of opened.splice(0)) await log.close();
});

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('watchedStorage', () => {
  it('hears of another handle’s appends and discards when every notice is lost', async () => {
    BroadcastChannel.prototype.postMessage = () => {};
    const adapter = indexedDbStorage('watched', { indexedDB: new IDBFactory() });
    const writer = await adapter.open();
    const watched = await watchedStorage(adapter, {
      pollIntervalMs: 20,
      onExternalClose: () => {},
    }).open();
    opened.push(writer, watched);
    const heard: [number, string | undefined][] = [];
    watched.onRemoteWrite((head, rewrittenFrom) => heard.push([head, rewrittenFrom]));
    const append = async (n: number) => {
      const result = await writer.appendLocal({
        stream: 's',
        events: Array.from({ length: n }, (_, i) => ({ type: 'A', data: i, schema: 1 })),
        expectedVersion: 'any',
        now: Date.now(),
      });
      if (result.kind !== 'written') throw new Error('expected a write');
      return result.records;
    };
    await append(1);
    await until(() => heard.some(([head]) => head === 1), 'the append');
    const records = await append(2);
    await until(() => heard.some(([head]) => head === 3), 'the second append');
    expect(heard.every(([, from]) => from === undefined)).toBe(true);
    await writer.discard(records.map((r) => ({ id: r.event.id, seq: r.event.seq })));
    await until(() => heard.some(([, from]) => from !== undefined), 'the discard');
    expect(heard.filter(([, from]) => from !== undefined)).toEqual([[3, records[0]!.event.cursor]]);
  });
});
