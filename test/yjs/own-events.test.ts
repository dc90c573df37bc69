/**
 * bindYDoc's own events (src/yjs/bind.ts invariant 3): appended without ids, so they get the
 * canonical id, and recognised by their payload when the store delivers them back, whatever the
 * timing, and never confused with another binding's events on the same store (same replica).
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeBase64 } from '../../src/core/base64.ts';
import type { StoredEvent } from '../../src/core/events.ts';
import { EventId } from '../../src/core/ids.ts';
import type { EventStore } from '../../src/store/types.ts';
import { encodeEventBatch } from '../../src/sync/event-codec.ts';
import { bindYDoc, SNAPSHOT_TYPE, UPDATE_TYPE, type YDocBinding } from '../../src/yjs/index.ts';
import { pull, replicasPerFile, settle } from './helpers.ts';

const STREAM = 'card-1/notes';
const { replica, track } = replicasPerFile();

function bind(store: EventStore, options: Parameters<typeof bindYDoc>[2] = {}): YDocBinding {
  return track(bindYDoc(store, STREAM, { cache: false, ...options }));
}

/**
 * The transactions the binding runs to apply delivered events (their origin is the binding):
 * `noop` counts those that changed nothing, i.e. applied only what the doc held already.
 */
function applied(binding: YDocBinding) {
  const counts = { changed: 0, noop: 0, updates: 0 };
  binding.doc.on('afterTransaction', (tr: Y.Transaction) => {
    if (tr.origin !== binding) return;
    if (tr.changed.size > 0) counts.changed += 1;
    else counts.noop += 1;
  });
  binding.doc.on('update', (_update: Uint8Array, origin: unknown) => {
    if (origin === binding) counts.updates += 1;
  });
  return counts;
}

/** Delivers subscribed events `ms` later: the append resolves before its echo arrives. */
function lateEcho(store: EventStore, ms: number): EventStore {
  return Object.create(store, {
    subscribe: {
      value: (listener: (events: StoredEvent[]) => void, query?: object) =>
        store.subscribe((events) => setTimeout(() => listener(events), ms), query),
    },
  });
}

/** Resolves appends `ms` after they were written: the echo arrives first. */
function slowAppend(store: EventStore, ms: number): EventStore {
  return Object.create(store, {
    append: {
      value: async (...args: Parameters<EventStore['append']>) => {
        const stored = await store.append(...args);
        await new Promise((resolve) => setTimeout(resolve, ms));
        return stored;
      },
    },
  });
}

async function typeEach(b: YDocBinding, chars: string): Promise<void> {
  for (const c of chars) {
    const text = b.doc.getText('notes');
    text.insert(text.length, c);
    await Promise.resolve(); // its own event each, without waiting for the append
  }
}

const text = (b: YDocBinding) => b.doc.getText('notes').toString();

describe('bindYDoc own events (bind.ts invariant 3)', () => {
  it('appends updates and snapshots with canonical ids, which stay off the wire', async () => {
    const a = await replica('a');
    const b = bind(a.store, { snapshotEvery: 3 });
    await b.ready;
    for (const c of 'abcdefg') {
      b.doc.getText('notes').insert(0, c);
      await b.flush();
    }
    const events = await a.store.read({ stream: STREAM });
    expect(new Set(events.map((e) => e.type))).toEqual(new Set([UPDATE_TYPE, SNAPSHOT_TYPE]));
    for (const e of events) expect(EventId.isCanonical(e.id, e.replica, e.seq)).toBe(true);
    expect(JSON.parse(encodeEventBatch(events)).ids).toBeUndefined();
  });

  it('never applies its own event when the echo arrives before the append resolves', async () => {
    const a = await replica('a');
    const b = bind(slowAppend(a.store, 5), { snapshotEvery: 4 });
    await b.ready;
    const counts = applied(b);
    await typeEach(b, 'abcdefghij');
    await b.flush();
    await settle();
    expect(counts).toEqual({ changed: 0, noop: 0, updates: 0 });
    expect(text(b)).toBe('abcdefghij');
    expect((await a.store.read({ stream: STREAM, types: [SNAPSHOT_TYPE] })).length).toBe(2);
  });

  it('never applies its own event when the echo arrives after the append resolved, with several appends in flight', async () => {
    const a = await replica('a');
    const b = bind(lateEcho(a.store, 20), { snapshotEvery: 4 });
    await b.ready;
    const counts = applied(b);
    await typeEach(b, 'abcdefghij');
    await b.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(counts).toEqual({ changed: 0, noop: 0, updates: 0 });
    expect(text(b)).toBe('abcdefghij');
  });

  it('two bindings on one store and stream (one replica id) converge, each applying only the other', async () => {
    const a = await replica('a');
    const first = bind(slowAppend(a.store, 2));
    const second = bind(lateEcho(a.store, 3));
    await Promise.all([first.ready, second.ready]);
    const [c1, c2] = [applied(first), applied(second)];
    first.doc.getMap('m').set('who', 'first');
    await Promise.all([typeEach(first, 'abcd'), typeEach(second, 'wxyz')]);
    await Promise.all([first.flush(), second.flush()]);
    await new Promise((resolve) => setTimeout(resolve, 30));

    expect(text(first)).toBe(text(second));
    expect(text(first).split('').sort().join('')).toBe('abcdwxyz');
    expect(second.doc.getMap('m').get('who')).toBe('first');
    const events = await a.store.read({ stream: STREAM });
    expect(new Set(events.map((e) => e.replica))).toEqual(new Set([a.store.replicaId]));
    // Each applied the other's events, each a change, and none of its own (no no-op applies).
    expect(c1.noop).toBe(0);
    expect(c2.noop).toBe(0);
    expect(c1.changed).toBeGreaterThan(0);
    expect(c2.changed).toBeGreaterThan(0);
    expect(c1.updates).toBe(c1.changed);
    expect(c2.updates).toBe(c2.changed);
  });

  it('an undo in one of two bindings on one store reaches the other, and neither undo stack takes the other', async () => {
    const a = await replica('a');
    const first = bind(a.store);
    const second = bind(a.store);
    await Promise.all([first.ready, second.ready]);
    const undo1 = new Y.UndoManager(first.doc.getText('notes'), { captureTimeout: 0 });
    const undo2 = new Y.UndoManager(second.doc.getText('notes'), { captureTimeout: 0 });
    first.doc.getText('notes').insert(0, 'one ');
    await first.flush();
    await settle();
    second.doc.getText('notes').insert(4, 'two');
    await second.flush();
    await settle();
    expect(text(first)).toBe('one two');
    expect([undo1.undoStack.length, undo2.undoStack.length]).toEqual([1, 1]);

    undo1.undo();
    await first.flush();
    await settle();
    expect(text(second)).toBe('two');
    expect(text(first)).toBe('two');
    expect([undo1.undoStack.length, undo1.redoStack.length]).toEqual([0, 1]);
    expect(undo2.undoStack.length).toBe(1);
    undo1.redo();
    await first.flush();
    await settle();
    expect(text(second)).toBe('one two');
  });

  it('applies a remote event that arrives while its own echo is still on the way', async () => {
    const [a, b] = [await replica('a'), await replica('b')];
    const remote = bind(b.store);
    await remote.ready;
    remote.doc.getText('notes').insert(0, 'remote ');
    await remote.flush();
    const local = bind(lateEcho(a.store, 10));
    await local.ready;
    const counts = applied(local);
    local.doc.getText('notes').insert(0, 'local');
    await local.flush();
    await pull(a, b); // delivered while the local echo waits its 10 ms
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(text(local).split('').sort().join('')).toBe('localremote '.split('').sort().join(''));
    expect(counts).toEqual({ changed: 1, noop: 0, updates: 1 });
  });

  it('reads and applies events with random ids (appended before canonical ids)', async () => {
    const a = await replica('a');
    const source = new Y.Doc();
    const updates: Uint8Array[] = [];
    source.on('update', (u: Uint8Array) => updates.push(u));
    source.getText('notes').insert(0, 'old ');
    source.getText('notes').insert(4, 'ids');
    const legacy = (u: Uint8Array) => ({
      id: EventId.make(Date.now()),
      type: UPDATE_TYPE,
      data: { update: encodeBase64(u) },
    });
    await a.store.append(STREAM, legacy(updates[0]!));
    const b = bind(a.store);
    await b.ready;
    expect(text(b)).toBe('old ');
    await a.store.append(STREAM, legacy(updates[1]!)); // live
    await settle();
    expect(text(b)).toBe('old ids');
    const reopened = bind(a.store);
    await reopened.ready;
    expect(text(reopened)).toBe('old ids');
  });
});
