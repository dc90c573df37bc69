/**
 * Tamper evidence (issue 16, part 3; core/integrity.ts) against a server that lies: two honest
 * stores sync through a real sync server on a SQLite file; the server is stopped, its file edited
 * (an event's data changed, a row deleted, two rows swapped, a replica's events replayed under a
 * new key), and started again on it. Every client that then catches up (one on memory, one on
 * fake-indexeddb, each fresh) refuses what was altered or forged, reports the rest in its sync
 * status (code TAMPERED), and holds every honest event the server still serves.
 * A lying client is tried too: the server refuses its forged events and stores none.
 */
import 'fake-indexeddb/auto';
import Database from 'better-sqlite3';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { signEvents, withoutIntegrity } from '../../src/core/integrity.ts';
import {
  generateSigningKey,
  importSigningKey,
  newReplicaIdentity,
} from '../../src/core/replica-identity.ts';
import type { TamperedEvent } from '../../src/core/sync-types.ts';
import {
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  openStore,
  type StorageAdapter,
  webSocketTransport,
} from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { eventOfRow, type StoredRow, storedBody } from '../../src/server/sqlite-rows.ts';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { SECRET, tempDir, waitFor } from './helpers.ts';

const SPACE = 'space-t';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const token = (sub: string) =>
  createToken(SECRET, { space: SPACE, sub, scope: ['read', 'write'], expiresInSeconds: 600 });

async function server(path: string): Promise<SyncServer> {
  const s = await createSyncServer({
    storage: sqliteStorage(path),
    auth: { secret: SECRET },
    log: () => {},
  });
  cleanups.push(() => s.close());
  return s;
}

async function client(url: string, sub: string, storage: StorageAdapter): Promise<EventStore> {
  const store = await openStore({ name: `tamper-${sub}`, storage });
  cleanups.push(() => store.close());
  store.sync.connect(webSocketTransport(url, { token: token(sub), WebSocket: WebSocket as never }));
  return store;
}

/** A: 5 events, B: 3, synced to a server on `path`, which is then stopped. */
async function honestHistory(path: string) {
  const s = await server(path);
  const a = await client(s.url, 'alice', memoryStorage());
  const b = await client(s.url, 'bob', memoryStorage());
  for (let i = 1; i <= 5; i++) await a.append('cards', { type: 'added', data: { title: `a${i}` } });
  for (let i = 1; i <= 3; i++) await b.append('notes', { type: 'noted', data: { text: `b${i}` } });
  await waitFor(
    async () =>
      (await a.read()).length === 8 &&
      (await b.read()).length === 8 &&
      a.sync.status().pending === 0 &&
      b.sync.status().pending === 0,
    20_000,
  );
  const honest = await a.read();
  await Promise.all([a.close(), b.close()]);
  await s.close();
  return { honest, a: a.replicaId, b: b.replicaId };
}

interface Row extends StoredRow {
  space: string;
}

/** Edits the server's file while it is down. */
function editFile(path: string, edit: (db: Database.Database, rows: Row[]) => void): void {
  const db = new Database(path);
  try {
    const rows = db
      .prepare<[string], Row>(
        'SELECT space, pos, id, replica, seq, stream, cursor, body FROM events WHERE space = ? ORDER BY pos',
      )
      .all(SPACE);
    db.transaction(() => edit(db, rows))();
  } finally {
    db.close();
  }
}

function rewrite(db: Database.Database, row: Row, event: StoredEventRecord): void {
  db.prepare('UPDATE events SET body = ? WHERE space = ? AND pos = ?').run(
    storedBody(event),
    SPACE,
    row.pos,
  );
}

/** Two fresh clients (memory, fake-indexeddb) catch up from the tampered server. */
async function catchUp(path: string, expected: number) {
  const s = await server(path);
  const stores = [
    await client(s.url, 'carol', memoryStorage()),
    await client(s.url, 'dave', indexedDbStorage('tamper-dave', { indexedDB: new IDBFactory() })),
  ];
  await waitFor(async () => {
    const counts = await Promise.all(stores.map(async (c) => (await c.read()).length));
    return (
      counts.every((n) => n === expected) && stores.every((c) => c.sync.status().state === 'idle')
    );
  }, 20_000);
  return stores;
}

const reasons = (store: EventStore): string[] =>
  (store.sync.status().tampered ?? []).map((t: TamperedEvent) => `${t.reason}@${t.seq}`).sort();

describe('a server whose SQLite file was edited', () => {
  it('an event whose data was changed is refused by every client; the rest of its replica arrives, the gap reported', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = `${tmp.dir}/server.sqlite`;
    const { a } = await honestHistory(path);
    editFile(path, (db, rows) => {
      const row = rows.find((r) => r.replica === a && r.seq === 3)!;
      const event = eventOfRow(row);
      rewrite(db, row, { ...event, data: { title: 'changed on the server' } });
    });
    for (const c of await catchUp(path, 7)) {
      const titles = (await c.read({ stream: 'cards' })).map((e) => e.data);
      expect(titles).toEqual([{ title: 'a1' }, { title: 'a2' }, { title: 'a4' }, { title: 'a5' }]);
      expect(JSON.stringify(await c.read())).not.toContain('changed on the server');
      expect(reasons(c)).toEqual(['bad-signature@3', 'missing-link@4']);
      expect(c.sync.status().tampered?.find((t) => t.reason === 'missing-link')?.missing).toEqual({
        seq: 3,
        id: `${a}.3`,
      });
    }
  });

  it('an event whose signature was changed, its data intact, is refused by every client: no one could prove it after', async () => {
    // The digest leaves `$sig` out, so the link after it still holds; taken on that link alone,
    // it was held with a signature that fails, and refused by every peer it was sent on to.
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = `${tmp.dir}/server.sqlite`;
    const { a, b } = await honestHistory(path);
    editFile(path, (db, rows) => {
      const row = rows.find((r) => r.replica === a && r.seq === 3)!;
      // A signature of the right form, Bob's: Alice's own events may share one (a tree).
      const other = eventOfRow(rows.find((r) => r.replica === b)!);
      const event = eventOfRow(row);
      rewrite(db, row, { ...event, meta: { ...event.meta, $sig: other.meta!.$sig! } });
    });
    for (const c of await catchUp(path, 7)) {
      const titles = (await c.read({ stream: 'cards' })).map((e) => e.data);
      expect(titles).toEqual([{ title: 'a1' }, { title: 'a2' }, { title: 'a4' }, { title: 'a5' }]);
      expect(reasons(c)).toEqual(['bad-signature@3', 'missing-link@4']);
    }
  });

  it('a deleted row is reported by every client as a gap in its replica chain', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = `${tmp.dir}/server.sqlite`;
    const { a } = await honestHistory(path);
    editFile(path, (db, rows) => {
      const row = rows.find((r) => r.replica === a && r.seq === 2)!;
      db.prepare('DELETE FROM events WHERE space = ? AND pos = ?').run(SPACE, row.pos);
    });
    for (const c of await catchUp(path, 7)) {
      expect(reasons(c)).toEqual(['missing-link@3']);
      expect((await c.read()).some((e) => e.id === `${a}.2`)).toBe(false);
    }
  });

  it('two swapped rows are reported by every client: the later event came first', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = `${tmp.dir}/server.sqlite`;
    const { a } = await honestHistory(path);
    editFile(path, (db, rows) => {
      const four = rows.find((r) => r.replica === a && r.seq === 4)!;
      const five = rows.find((r) => r.replica === a && r.seq === 5)!;
      const move = db.prepare('UPDATE events SET pos = ? WHERE space = ? AND pos = ?');
      move.run(-1, SPACE, four.pos);
      move.run(four.pos, SPACE, five.pos);
      move.run(five.pos, SPACE, -1);
    });
    for (const c of await catchUp(path, 8)) {
      expect(reasons(c)).toEqual(['reordered@4']);
    }
  });

  it("a replica's events replayed under a new key are refused by every client; the other replica's arrive", async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = `${tmp.dir}/server.sqlite`;
    const { a, b } = await honestHistory(path);
    // The server signs A's events again with a key of its own, keeping A's replica id.
    const stored = await generateSigningKey();
    const forger = {
      replicaId: a,
      privateKey: await importSigningKey(stored),
      keyText: `${stored.publicKey}.${newReplicaIdentity(stored.publicKey).nonce}`,
    };
    const rowsOfA: Row[] = [];
    editFile(path, (_db, rows) => {
      rowsOfA.push(...rows.filter((r) => r.replica === a));
    });
    const originals = rowsOfA.map((r) => eventOfRow(r));
    const { signed } = await signEvents(
      originals.map((e) => ({
        ...e,
        data: { title: 'forged' },
        ...(withoutIntegrity(e.meta) === undefined ? {} : { meta: withoutIntegrity(e.meta)! }),
      })),
      forger,
      undefined,
    );
    editFile(path, (db) => {
      for (const [i, row] of rowsOfA.entries()) rewrite(db, row, signed[i]!);
    });
    for (const c of await catchUp(path, 3)) {
      const held = await c.read();
      expect(held.every((e) => e.replica === b)).toBe(true);
      expect(JSON.stringify(held)).not.toContain('forged');
      // Its first event names a key that does not derive A; the others do not verify under A's.
      expect(reasons(c)).toEqual([
        'bad-signature@2',
        'bad-signature@3',
        'bad-signature@4',
        'bad-signature@5',
        'wrong-key@1',
      ]);
    }
  });
});

describe('a client that lies', () => {
  it("is refused when it pushes another replica's events under its own key; the server stores none", async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = `${tmp.dir}/server.sqlite`;
    const { a, honest } = await honestHistory(path);
    const s = await server(path);
    const before = (await catchUp(path, 8))[0]!;
    expect((await before.read()).length).toBe(8);
    // Mallory signs A's events again under her key, altered, and pushes them as A's.
    const stored = await generateSigningKey();
    const forger = {
      replicaId: a,
      privateKey: await importSigningKey(stored),
      keyText: `${stored.publicKey}.${newReplicaIdentity(stored.publicKey).nonce}`,
    };
    const mine = honest.filter((e) => e.replica === a);
    const forged = await signEvents(
      mine.map((e) => ({ ...e, id: `${e.id}-forged`, data: { title: 'forged' } }) as never),
      forger,
      undefined,
    );
    const socket = new WebSocket(`${s.url}?token=${token('mallory')}`);
    cleanups.push(() => socket.close());
    const messages: { type: string; code?: string }[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve) => socket.once('open', resolve));
    await waitFor(() => messages.some((m) => m.type === 'hello'), 5_000);
    const { encodeMessage } = await import('../../src/sync/messages.ts');
    socket.send(
      encodeMessage({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        replica: 'mallory000000001',
        epoch: 'e',
        head: forged.signed.length,
        seq: 0,
        time: Date.now(),
        limits: {
          maxBatchEvents: 100,
          maxMessageBytes: 1 << 20,
          maxEventBytes: 1 << 19,
          maxInFlightBatches: 4,
          maxInFlightBytes: 1 << 22,
        },
      }),
    );
    await waitFor(() => messages.some((m) => m.type === 'pull'), 5_000);
    socket.send(
      encodeMessage({
        type: 'events',
        from: 0,
        to: forged.signed.length,
        toId: forged.signed.at(-1)!.id,
        events: forged.signed,
      }),
    );
    await waitFor(() => messages.some((m) => m.type === 'error'), 5_000);
    expect(messages.find((m) => m.type === 'error')).toMatchObject({ code: 'TAMPERED' });
    const db = new Database(path, { readonly: true });
    cleanups.push(() => db.close());
    const count = db
      .prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM events WHERE space = ?')
      .get(SPACE)!.n;
    expect(count).toBe(8);
  });
});
