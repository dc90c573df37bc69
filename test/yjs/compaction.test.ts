/** Snapshots (src/yjs/events.ts, load.ts) and docAt (src/yjs/doc-at.ts). */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { decodeBase64 } from '../../src/core/base64.ts';
import type { EventStore } from '../../src/store/types.ts';
import {
  bindYDoc,
  docAt,
  SNAPSHOT_TYPE,
  UPDATE_TYPE,
  type YDocBinding,
  type YSnapshotData,
} from '../../src/yjs/index.ts';
import { loadDoc } from '../../src/yjs/load.ts';
import { pull, type Replica, replicasPerFile, settle, typeChars } from './helpers.ts';

const STREAM = 'card-1/notes';
const T0 = Date.UTC(2026, 0, 1);
const { replica, track } = replicasPerFile();

function bind(r: Replica, snapshotEvery?: number): YDocBinding {
  return track(bindYDoc(r.store, STREAM, snapshotEvery === undefined ? {} : { snapshotEvery }));
}

/** The document from every update event, ignoring snapshots: the reference replay. */
async function fullReplay(store: EventStore, cut = Number.POSITIVE_INFINITY): Promise<string> {
  const doc = new Y.Doc();
  const events = await store.read({ stream: STREAM, types: [UPDATE_TYPE] });
  for (const e of events.slice(0, cut)) {
    Y.applyUpdate(doc, decodeBase64((e.data as { update: string }).update));
  }
  return doc.getText('notes').toString();
}

const noError = (error: unknown) => {
  throw error;
};

describe('snapshots', () => {
  it('appends a snapshot after a local update once snapshotEvery updates arrived', async () => {
    const a = await replica('a');
    const b = bind(a, 10);
    await b.ready;
    await typeChars(a, b, 'abcdefghijklmnopqrstuvwxy'); // 25 updates
    const events = await a.store.read({ stream: STREAM });
    const snapshots = events.filter((e) => e.type === SNAPSHOT_TYPE);
    expect(snapshots).toHaveLength(2);
    const last = snapshots[1]!.data as YSnapshotData;
    expect(last.covers).toEqual({ [a.store.replicaId]: 21 }); // 20 updates + the first snapshot
    expect(last.updates).toBe(10);
  });

  it('opens from the latest snapshot plus the updates after it, equal to the full replay', async () => {
    const a = await replica('a');
    const b = bind(a, 10);
    await b.ready;
    await typeChars(a, b, 'abcdefghijklmnopqrstuvwxy');
    const loaded = await loadDoc(a.store, STREAM, undefined, noError);
    expect(loaded.snapshot?.type).toBe(SNAPSHOT_TYPE);
    expect(loaded.applied.size).toBe(5); // not 25
    const fresh = bind(a);
    await fresh.ready;
    expect(fresh.doc.getText('notes').toString()).toBe(await fullReplay(a.store));
    expect(fresh.doc.getText('notes').toString()).toBe('abcdefghijklmnopqrstuvwxy');
  });

  it('applies a late update that is ordered before the snapshot but not covered by it', async () => {
    const c = await replica('c', T0); // offline, earlier clock
    const a = await replica('a', T0 + 60_000);
    const dc = bind(c);
    await dc.ready;
    dc.doc.getText('notes').insert(0, 'late ');
    await dc.flush();
    const da = bind(a, 5);
    await da.ready;
    await typeChars(a, da, 'abcdef'); // a snapshot after the 5th update
    await pull(a, c); // c comes online
    await settle();

    const events = await a.store.read({ stream: STREAM });
    const lateIndex = events.findIndex((e) => e.replica === c.store.replicaId);
    const snapshotIndex = events.findIndex((e) => e.type === SNAPSHOT_TYPE);
    expect(lateIndex).toBeGreaterThanOrEqual(0);
    expect(lateIndex).toBeLessThan(snapshotIndex); // ordered before the snapshot in the total order

    const loaded = await loadDoc(a.store, STREAM, undefined, noError);
    expect(loaded.applied.has(events[lateIndex]!.id)).toBe(true);
    expect(loaded.applied.size).toBe(2); // the late update and the update after the snapshot
    const expected = await fullReplay(a.store);
    expect(expected).toContain('late ');
    const fresh = bind(a);
    await fresh.ready;
    expect(fresh.doc.getText('notes').toString()).toBe(expected);
    expect(da.doc.getText('notes').toString()).toBe(expected); // applied live too
  });

  it("applies another replica's snapshot that arrives live, and a later snapshot covers both replicas", async () => {
    const [a, b] = [await replica('a'), await replica('b')];
    const da = bind(a, 3);
    const db = bind(b, 3);
    await Promise.all([da.ready, db.ready]);
    await typeChars(a, da, 'xyzw');
    await pull(b, a);
    await settle();
    expect(db.doc.getText('notes').toString()).toBe('xyzw');
    await typeChars(b, db, '12'); // 1 update after a's snapshot + 2: b snapshots
    const snapshots = (await b.store.read({ stream: STREAM, types: [SNAPSHOT_TYPE] })).map(
      (e) => e.data as YSnapshotData,
    );
    const latest = snapshots[snapshots.length - 1]!;
    expect(Object.keys(latest.covers).sort()).toEqual(
      [a.store.replicaId, b.store.replicaId].sort(),
    );
  });

  it('writes no snapshot when snapshotEvery is 0', async () => {
    const a = await replica('a');
    const b = bind(a, 0);
    await b.ready;
    await typeChars(a, b, 'abcdefghij');
    expect(await a.store.read({ stream: STREAM, types: [SNAPSHOT_TYPE] })).toHaveLength(0);
  });
});

describe('docAt', () => {
  it('returns the document as of a time, with or without a snapshot inside the prefix', async () => {
    const a = await replica('a');
    const b = bind(a, 4);
    await b.ready;
    await typeChars(a, b, 'abcdefghij'); // edit i at T0 + (i + 1) s
    for (let i = 0; i < 10; i++) {
      const at = T0 + (i + 1) * 1000;
      const doc = await docAt(a.store, STREAM, at);
      expect(doc.getText('notes').toString()).toBe('abcdefghij'.slice(0, i + 1));
    }
    expect((await docAt(a.store, STREAM, new Date(T0 + 3500))).getText('notes').toString()).toBe(
      'abc',
    );
    expect((await docAt(a.store, STREAM, T0)).getText('notes').toString()).toBe('');
  });

  it('returns the document up to and including an event, of this stream or another', async () => {
    const a = await replica('a');
    const b = bind(a, 3);
    await b.ready;
    await typeChars(a, b, 'abc');
    const [other] = await a.store.append('elsewhere', { type: 'Noted', data: {} });
    await typeChars(a, b, 'defg');
    const updates = await a.store.read({ stream: STREAM, types: [UPDATE_TYPE] });
    for (const [i, e] of updates.entries()) {
      const doc = await docAt(a.store, STREAM, { eventId: e.id });
      expect(doc.getText('notes').toString()).toBe(await fullReplay(a.store, i + 1));
    }
    const atOther = await docAt(a.store, STREAM, { eventId: other!.id });
    expect(atOther.getText('notes').toString()).toBe('abc');
    const snapshot = (await a.store.read({ stream: STREAM, types: [SNAPSHOT_TYPE] }))[0]!;
    const atSnapshot = await docAt(a.store, STREAM, { eventId: snapshot.id });
    expect(atSnapshot.getText('notes').toString()).toBe('abc');
  });

  it('returns a detached document: editing it appends nothing', async () => {
    const a = await replica('a');
    const b = bind(a);
    await b.ready;
    await typeChars(a, b, 'ab');
    const doc = await docAt(a.store, STREAM, T0 + 60_000);
    doc.getText('notes').insert(0, 'zz');
    await settle();
    expect(await a.store.read({ stream: STREAM })).toHaveLength(2);
  });

  it('rejects an unknown event id and an invalid time', async () => {
    const a = await replica('a');
    await expect(docAt(a.store, STREAM, { eventId: 'nope' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(docAt(a.store, STREAM, Number.NaN)).rejects.toMatchObject({
      code: 'VALIDATION',
    });
  });
});
