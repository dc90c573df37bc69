/**
 * readSince (receive order, src/store/store.ts invariant 5) and the local cache of EventStore
 * (src/store/local-cache.ts, invariant 6).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import type { EventStore } from '../../src/store/types.ts';
import { openReplica, pull } from '../yjs/helpers.ts';

const opened: EventStore[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

async function open(storage = memoryStorage()): Promise<EventStore> {
  const store = await openStore({ name: 'since', storage });
  opened.push(store);
  return store;
}

describe('readSince', () => {
  it('pages through receive order, filters by stream and type, and reports where it stopped', async () => {
    const store = await open();
    for (let i = 0; i < 1200; i++) {
      await store.append(i % 3 === 0 ? 'a' : 'b', { type: i % 2 ? 'odd' : 'even', data: i });
    }
    const all = await store.readSince(0);
    expect(all.events).toHaveLength(1200);
    expect(all.events.map((e) => e.data)).toEqual([...Array(1200).keys()]);
    expect(all).toMatchObject({ position: 1200, head: 1200 });

    const a = await store.readSince(0, { stream: 'a' });
    expect(a.events.map((e) => e.data)).toEqual([...Array(400).keys()].map((i) => i * 3));
    expect(a.position).toBe(1200);

    // A limit stops at the last matching event; continuing from there gives the rest.
    const first = await store.readSince(0, { stream: 'a', types: ['odd'], limit: 2 });
    expect(first.events.map((e) => e.data)).toEqual([3, 9]);
    expect(first.position).toBe(10);
    const rest = await store.readSince(first.position, { stream: 'a', types: ['odd'] });
    expect(rest.events[0]?.data).toBe(15);
    expect(rest.events).toHaveLength(198);

    expect(await store.readSince(1200)).toEqual({ events: [], position: 1200, head: 1200 });
    expect(await store.readSince(0, { limit: 0 })).toEqual({ events: [], position: 0, head: 1200 });
    // Beyond the head (a position from another database): it says where the head is.
    expect(await store.readSince(5000)).toEqual({ events: [], position: 1200, head: 1200 });
  });

  it('finds a synced event that sorts before everything else, after the position it was read to', async () => {
    const early = await openReplica('early', Date.UTC(2020, 0, 1));
    const late = await openReplica('late', Date.UTC(2026, 0, 1));
    opened.push(early.store, late.store);
    await late.store.append('doc', { type: 'x', data: 1 });
    const { position } = await late.store.readSince(0);
    await early.store.append('doc', { type: 'x', data: 0 });
    await pull(late, early);
    const read = await late.store.read({ stream: 'doc' });
    expect(read.map((e) => e.data)).toEqual([0, 1]); // first in the total order
    const since = await late.store.readSince(position, { stream: 'doc' });
    expect(since.events.map((e) => e.data)).toEqual([0]);
  });

  it('rejects a bad position or query', async () => {
    const store = await open();
    await expect(store.readSince(-1)).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(store.readSince(1.5)).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(store.readSince(0, { stream: '' })).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});

describe('local cache', () => {
  it('keeps values across reopen, clears with null, and never shows them as events', async () => {
    const storage = memoryStorage();
    const store = await open(storage);
    await store.append('s', { type: 't', data: 1 });
    expect(await store.local.get('k')).toBeUndefined();
    await store.local.set('k', { state: 'AAEC', position: 1 });
    await store.local.set('other', 'text');
    const again = await open(storage);
    expect(await again.local.get('k')).toEqual({ state: 'AAEC', position: 1 });
    expect(await again.local.get('other')).toBe('text');
    await again.local.set('other', null);
    expect(await again.local.get('other')).toBeUndefined();
    // Not an event: nothing to read, subscribe to or sync (sync sends the log by position).
    expect(await again.read()).toHaveLength(1);
    expect((await again.readSince(0)).head).toBe(1);
  });

  it('never reaches another replica through sync', async () => {
    const a = await openReplica('a');
    const b = await openReplica('b');
    opened.push(a.store, b.store);
    await a.store.append('s', { type: 't', data: 1 });
    await a.store.local.set('k', 'a only');
    await pull(b, a);
    expect(await b.store.read()).toHaveLength(1);
    expect(await b.store.local.get('k')).toBeUndefined();
  });

  it('rejects bad keys, non-JSON values and values over the size limit', async () => {
    const store = await open();
    await expect(store.local.set('', 1)).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(store.local.set('x'.repeat(201), 1)).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(store.local.set('k', { d: new Date() } as never)).rejects.toMatchObject({
      code: 'VALIDATION',
    });
    await expect(store.local.set('k', 'x'.repeat(16 * 1024 * 1024 + 1))).rejects.toMatchObject({
      code: 'VALIDATION',
    });
  });
});
