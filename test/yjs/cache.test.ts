/** The local open cache of bindYDoc (src/yjs/cache.ts, bind.ts invariants 8-9). */
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/store/types.ts';
import { cacheKey, decodeCache } from '../../src/yjs/cache.ts';
import { bindYDoc, type YDocBinding } from '../../src/yjs/index.ts';
import { pull, type Replica, replicasPerFile, settle, typeChars } from './helpers.ts';

const STREAM = 'card-1/notes';
const KEY = cacheKey(STREAM)!;
const { replica, track } = replicasPerFile();

/** A store that counts what an open reads: total-order reads, and events read by position. */
function counting(store: EventStore) {
  const counts = { read: 0, since: 0 };
  const wrapped: EventStore = Object.create(store, {
    read: {
      value: (...args: Parameters<EventStore['read']>) => {
        counts.read += 1;
        return store.read(...args);
      },
    },
    readSince: {
      value: async (...args: Parameters<EventStore['readSince']>) => {
        const result = await store.readSince(...args);
        counts.since += result.events.length;
        return result;
      },
    },
  });
  return { store: wrapped, counts };
}

async function open(r: Replica, options: Parameters<typeof bindYDoc>[2] = {}) {
  const { store, counts } = counting(r.store);
  const binding = bindYDoc(store, STREAM, {
    onError: (e) => {
      throw e;
    },
    ...options,
  });
  track(binding);
  await binding.ready;
  return { binding, counts, text: () => binding.doc.getText('notes').toString() };
}

async function close(b: YDocBinding): Promise<void> {
  b.destroy(); // writes the cache in the background
  await settle();
}

async function cached(r: Replica) {
  return decodeCache(await r.store.local.get(KEY), r.store.replicaId);
}

describe('bindYDoc open cache', () => {
  it('reopens from the cache, reading only the events received after its position', async () => {
    const a = await replica('a');
    const first = await open(a, { snapshotEvery: 0 });
    expect(first.counts.read).toBeGreaterThan(0); // no cache yet: loaded from the events
    await typeChars(a, first.binding, 'hello world');
    await close(first.binding);
    expect((await cached(a))?.position).toBe(11);

    const second = await open(a);
    expect(second.text()).toBe('hello world');
    expect(second.counts).toEqual({ read: 0, since: 0 });
    await typeChars(a, second.binding, '!!');
    await close(second.binding);
    expect((await cached(a))?.position).toBe(13);

    // Another binding (another tab) writes without touching the cache: only its event is read.
    const other = await open(a, { cache: false });
    await typeChars(a, other.binding, 'Z');
    other.binding.destroy();
    const third = await open(a);
    expect(third.text()).toBe('hello world!!Z');
    expect(third.counts).toEqual({ read: 0, since: 1 });
  });

  it('applies a late update that sorts before everything but arrives after the cache was written', async () => {
    const early = await replica('early', Date.UTC(2020, 0, 1));
    const late = await replica('late', Date.UTC(2026, 0, 1));
    const edited = await open(early);
    await typeChars(early, edited.binding, 'X');
    const mine = await open(late, { snapshotEvery: 2 });
    await typeChars(late, mine.binding, 'abcde'); // with snapshots covering only `late`
    await close(mine.binding);
    const before = (await cached(late))!.position;

    await pull(late, early); // X is first in the total order, last in receive order
    const all = await late.store.read({ stream: STREAM });
    expect(all[0]!.replica).toBe(early.store.replicaId);

    const reopened = await open(late);
    expect(reopened.counts).toEqual({ read: 0, since: 1 });
    expect(reopened.text().split('').sort().join('')).toBe('Xabcde');
    expect(reopened.text()).toBe(
      edited.binding.doc.getText('notes').toString() === 'X' ? reopened.text() : '',
    );
    await settle();
    expect((await cached(late))!.position).toBeGreaterThan(before);
  });

  it('falls back to the events when the cache is missing, damaged, foreign or ahead of the log', async () => {
    const a = await replica('a');
    const first = await open(a, { snapshotEvery: 3 });
    await typeChars(a, first.binding, 'abcdefg');
    await close(first.binding);
    const good = (await a.store.local.get(KEY)) as Record<string, unknown>;
    const bad: unknown[] = [
      null,
      'garbage',
      { ...good, state: `${good.state as string}AAAA` },
      { ...good, hash: 1 },
      { ...good, replica: 'someone-else' },
      { ...good, position: 10_000 },
      { ...good, covers: { x: -1 } },
    ];
    for (const value of bad) {
      await a.store.local.set(KEY, value as never);
      const reopened = await open(a, { cache: true });
      expect(reopened.counts.read).toBeGreaterThan(0);
      expect(reopened.text()).toBe('abcdefg');
      reopened.binding.destroy();
    }
  });

  it('rewrites the cache every cacheEvery updates while the document stays open', async () => {
    const a = await replica('a');
    const b = await open(a, { cacheEvery: 4, snapshotEvery: 0 });
    await typeChars(a, b.binding, 'abcdefghij');
    await settle();
    const cache = await cached(a);
    expect(cache?.position).toBeGreaterThanOrEqual(8);
    const reopened = await open(a);
    expect(reopened.text()).toBe('abcdefghij');
    expect(reopened.counts.read).toBe(0);
    expect(reopened.counts.since).toBeLessThanOrEqual(2);
  });

  it('writes and reads no cache with cache: false', async () => {
    const a = await replica('a');
    const b = await open(a, { cache: false });
    await typeChars(a, b.binding, 'ab');
    await close(b.binding);
    expect(await a.store.local.get(KEY)).toBeUndefined();
  });
});
