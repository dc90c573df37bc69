/** bindYDoc: round trips, origins, undo, destroy (invariants of src/yjs/bind.ts). */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { decodeBase64, encodeBase64 } from '../../src/core/base64.ts';
import { bindYDoc, SNAPSHOT_TYPE, UPDATE_TYPE, type YDocBinding } from '../../src/yjs/index.ts';
import { pull, type Replica, replicasPerFile, settle, syncAll } from './helpers.ts';

const STREAM = 'card-1/notes';
const { replica, track } = replicasPerFile();

function bind(r: Replica, options: Parameters<typeof bindYDoc>[2] = {}): YDocBinding {
  return track(bindYDoc(r.store, STREAM, options));
}

const text = (b: YDocBinding) => b.doc.getText('notes').toString();

describe('bindYDoc', () => {
  it('appends local text edits as update events that a new binding replays', async () => {
    const a = await replica('a');
    const first = bind(a);
    await first.ready;
    first.doc.getText('notes').insert(0, 'Hello');
    await first.flush();
    first.doc.getText('notes').insert(5, ', world');
    await first.flush();

    const events = await a.store.read({ stream: STREAM });
    expect(events.map((e) => e.type)).toEqual([UPDATE_TYPE, UPDATE_TYPE]);
    const data = events[0]!.data as { update: string };
    expect(typeof data.update).toBe('string');
    expect(encodeBase64(decodeBase64(data.update))).toBe(data.update);

    const second = bind(a);
    await second.ready;
    expect(text(second)).toBe('Hello, world');
  });

  it('merges the updates of one tick into one event (invariant 2)', async () => {
    const a = await replica('a');
    const b = bind(a);
    await b.ready;
    const t = b.doc.getText('notes');
    t.insert(0, 'a');
    t.insert(1, 'b');
    b.doc.getMap('meta').set('title', 'x');
    await b.flush();
    expect(await a.store.read({ stream: STREAM })).toHaveLength(1);
  });

  it('applies live events from another binding and never appends them again (invariant 1)', async () => {
    const a = await replica('a');
    const writer = bind(a);
    const reader = bind(a);
    await Promise.all([writer.ready, reader.ready]);
    writer.doc.getText('notes').insert(0, 'shared');
    await writer.flush();
    await settle();
    expect(text(reader)).toBe('shared');
    await reader.flush();
    expect(await a.store.read({ stream: STREAM })).toHaveLength(1);
  });

  it('applies synced events from another replica without appending them', async () => {
    const [a, b] = [await replica('a'), await replica('b')];
    const da = bind(a);
    const db = bind(b);
    await Promise.all([da.ready, db.ready]);
    da.doc.getText('notes').insert(0, 'from a');
    await da.flush();
    await pull(b, a);
    await settle();
    await db.flush();
    expect(text(db)).toBe('from a');
    const events = await b.store.read({ stream: STREAM });
    expect(events).toHaveLength(1);
    expect(events[0]!.replica).toBe(a.store.replicaId);
  });

  it('buffers events that arrive during the replay and applies each once (invariant 5)', async () => {
    const [a, b] = [await replica('a'), await replica('b')];
    const da = bind(a);
    await da.ready;
    da.doc.getText('notes').insert(0, 'abc');
    await da.flush();
    const db = bind(b);
    await pull(b, a); // arrives while db replays
    await db.ready;
    await settle();
    expect(text(db)).toBe('abc');
  });

  it('keeps edits made before ready and replays the stream under them', async () => {
    const a = await replica('a');
    const first = bind(a);
    await first.ready;
    first.doc.getText('notes').insert(0, 'old');
    await first.flush();
    const second = bind(a);
    second.doc.getMap('m').set('k', 1); // before ready
    await second.ready;
    await second.flush();
    expect(text(second)).toBe('old');
    const third = bind(a);
    await third.ready;
    expect(third.doc.getMap('m').get('k')).toBe(1);
  });

  it('undoes a local edit with Y.UndoManager, leaves remote edits alone, and syncs the undo', async () => {
    const [a, b] = [await replica('a'), await replica('b')];
    const da = bind(a);
    const db = bind(b);
    await Promise.all([da.ready, db.ready]);
    const undo = new Y.UndoManager(da.doc.getText('notes'), { captureTimeout: 0 });
    db.doc.getText('notes').insert(0, 'remote ');
    await db.flush();
    await syncAll([a, b]);
    await settle();
    da.doc.getText('notes').insert(7, 'local');
    await da.flush();
    expect(text(da)).toBe('remote local');
    expect(undo.undoStack).toHaveLength(1); // the remote insert was not captured

    undo.undo();
    await da.flush();
    expect(text(da)).toBe('remote ');
    await syncAll([a, b]);
    await settle();
    expect(text(db)).toBe('remote ');

    undo.redo();
    await da.flush();
    await syncAll([a, b]);
    await settle();
    expect(text(db)).toBe('remote local');
  });

  it('stops appending and applying after destroy (invariant 6)', async () => {
    const [a, b] = [await replica('a'), await replica('b')];
    const da = bind(a);
    await da.ready;
    da.doc.getText('notes').insert(0, 'kept');
    da.destroy(); // the edit before destroy is still appended
    await da.flush();
    da.doc.getText('notes').insert(4, ' dropped');
    await settle();
    expect(await a.store.read({ stream: STREAM })).toHaveLength(1);

    const db = bind(b);
    await db.ready;
    db.doc.getText('notes').insert(0, 'later');
    await db.flush();
    await pull(a, b);
    await settle();
    expect(text(da)).toBe('kept dropped'); // remote events are no longer applied
    const fresh = bind(a);
    await fresh.ready;
    expect(text(fresh).split('').sort().join('')).toBe('keptlater'.split('').sort().join(''));
  });

  it('reports and skips a malformed event (events.ts invariant 4)', async () => {
    const a = await replica('a');
    await a.store.append(STREAM, { type: UPDATE_TYPE, data: { update: 42 } });
    await a.store.append(STREAM, { type: SNAPSHOT_TYPE, data: { state: '!!', covers: {} } });
    await a.store.append(STREAM, {
      type: 'CardRenamed',
      data: { title: 'other events are ignored' },
    });
    const errors: unknown[] = [];
    const b = bind(a, { onError: (e) => errors.push(e) });
    await b.ready;
    b.doc.getText('notes').insert(0, 'fine');
    await b.flush();
    await a.store.append(STREAM, { type: UPDATE_TYPE, data: { update: 'not base64 !' } });
    await settle();
    expect(text(b)).toBe('fine');
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual([
      'VALIDATION',
      'VALIDATION',
      'VALIDATION',
    ]);
  });

  it('reports a failed append through onError (invariant 7)', async () => {
    const a = await replica('a');
    const errors: unknown[] = [];
    const b = bind(a, { onError: (e) => errors.push(e) });
    await b.ready;
    await a.store.close();
    b.doc.getText('notes').insert(0, 'x');
    await b.flush();
    expect((errors[0] as { code?: string }).code).toBe('STORE_CLOSED');
    b.destroy();
  });
});

describe('base64', () => {
  it('round-trips every byte value and large arrays', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(decodeBase64(encodeBase64(all))).toEqual(all);
    const big = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) & 0xff);
    expect(decodeBase64(encodeBase64(big))).toEqual(big);
    expect(encodeBase64(new Uint8Array())).toBe('');
  });
});
