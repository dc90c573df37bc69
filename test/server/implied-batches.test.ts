/**
 * Batches that leave out what the receiver works out (implied links and tree paths, sync/
 * protocol.ts invariant 13) through real sync servers on SQLite files, when they do not verify.
 * An event altered in the server's file makes the server's implied batch unproven: it comes again
 * with every hash and path, and the altered event is named as before (test/server/tamper.test.ts
 * has the other edits). The other way, an upload a relay altered is unproven, then comes again
 * whole, and the altered event alone is refused.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Transport } from '../../src/core/sync-types.ts';
import {
  type EventStore,
  memoryStorage,
  openStore,
  type StorageAdapter,
  webSocketTransport,
} from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import type { ServerLimits } from '../../src/server/limits.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { eventOfRow, type StoredRow, storedBody } from '../../src/server/sqlite-rows.ts';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS, type EventsMessage } from '../../src/sync/protocol.ts';
import { SECRET, tempDir, waitFor } from './helpers.ts';

const SPACE = 'space-c';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const token = (sub: string) =>
  createToken(SECRET, { space: SPACE, sub, scope: ['read', 'write'], expiresInSeconds: 600 });

async function server(path: string, limits: Partial<ServerLimits> = {}): Promise<SyncServer> {
  const s = await createSyncServer({
    storage: sqliteStorage(path),
    auth: { secret: SECRET },
    log: () => {},
    limits,
  });
  cleanups.push(() => s.close());
  return s;
}

async function store(name: string, storage: StorageAdapter = memoryStorage()) {
  const s = await openStore({ name, storage });
  cleanups.push(() => s.close());
  return s;
}

function connect(s: EventStore, url: string, sub: string) {
  return s.sync.connect(
    webSocketTransport(url, { token: token(sub), WebSocket: WebSocket as never }),
  );
}

const settled = (stores: EventStore[], count: number) =>
  waitFor(async () => {
    for (const s of stores) {
      if ((await s.read()).length !== count || s.sync.status().pending !== 0) return false;
    }
    return true;
  }, 20_000);

/** Alice writes 40 events (runs of 10), synced to a server on a fresh file. */
async function history() {
  const tmp = tempDir();
  cleanups.push(() => tmp.cleanup());
  const path = `${tmp.dir}/first.sqlite`;
  const first = await server(path);
  const alice = await store('alice');
  connect(alice, first.url, 'alice');
  for (let run = 0; run < 4; run++) {
    await alice.append(
      'cards',
      Array.from({ length: 10 }, (_, i) => ({
        type: 'added',
        data: { title: `card ${run * 10 + i}` },
      })),
    );
  }
  await settled([alice], 40);
  return { tmp, path, first, alice };
}

describe('implied batches through a real server', () => {
  it("an event altered in the server's file is asked for again with every hash, and named", async () => {
    const { path, first, alice } = await history();
    const a = alice.replicaId;
    await first.close();
    const db = new Database(path);
    try {
      const row = db
        .prepare<[string, string], StoredRow>(
          'SELECT pos, id, replica, seq, stream, cursor, body FROM events WHERE space = ? AND replica = ? AND seq = 5',
        )
        .get(SPACE, a)!;
      const event = eventOfRow(row);
      db.prepare('UPDATE events SET body = ? WHERE space = ? AND pos = ?').run(
        storedBody({ ...event, data: { title: 'changed on the server' } }),
        SPACE,
        row.pos,
      );
    } finally {
      db.close();
    }
    const again = await server(path);
    const dave = await store('dave');
    connect(dave, again.url, 'dave');
    await settled([dave], 39);
    const reasons = (dave.sync.status().tampered ?? []).map((t) => `${t.reason}@${t.seq}`).sort();
    expect(reasons).toEqual(['bad-signature@5', 'missing-link@6']);
    expect(JSON.stringify(await dave.read())).not.toContain('changed on the server');
  });

  it('an upload with implied links that a relay altered is asked for again whole, and the altered event alone is refused', async () => {
    // A lying relay on the store's side: it changes the data of Alice's 5th event in every
    // batch it passes (text frames: the wrapper offers no binary). With implied links the
    // server cannot tell which event was altered, so it refuses the batch as unproven; the
    // whole batch that follows names the altered event alone, and the rest is kept.
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const first = await server(`${tmp.dir}/upload.sqlite`);
    const alice = await store('alice');
    await alice.append(
      'cards',
      Array.from({ length: 10 }, (_, i) => ({ type: 'added', data: { title: `card ${i}` } })),
    );
    const batches: { implied: boolean; seqs: number[] }[] = [];
    const inner = webSocketTransport(first.url, {
      token: token('alice'),
      WebSocket: WebSocket as never,
    });
    const lying: Transport = {
      kind: inner.kind,
      open: () => inner.open(),
      send(text) {
        const parsed = parseMessage(text, DEFAULT_SYNC_LIMITS);
        if (!parsed.ok || parsed.message.type !== 'events' || parsed.message.events.length === 0) {
          inner.send(text);
          return;
        }
        const m = parsed.message as EventsMessage;
        batches.push({ implied: m.impliedLinks === true, seqs: m.events.map((e) => e.seq) });
        const events = m.events.map((e) =>
          e.replica === alice.replicaId && e.seq === 5 ? { ...e, data: { title: 'relayed' } } : e,
        );
        inner.send(encodeMessage({ ...m, events }));
      },
      onMessage: (listener) => inner.onMessage(listener),
      onClose: (listener) => inner.onClose(listener),
      close: (code, reason) => inner.close(code, reason),
    };
    alice.sync.connect(lying);
    const bob = await store('bob');
    connect(bob, first.url, 'bob');
    await settled([bob], 9);
    // First the batch with implied links, refused as unproven; then the same positions whole.
    expect(batches[0]?.implied).toBe(true);
    expect(batches.some((b) => !b.implied && b.seqs.includes(5))).toBe(true);
    // Alice hears of it: her 5th event is refused (the relay's copy is what the server saw).
    await waitFor(async () => (alice.sync.status().refused ?? []).length > 0, 10_000);
    const mine = await alice.read();
    expect(alice.sync.status().refused?.map((r) => [r.eventId, r.code])).toEqual([
      [mine[4]!.id, 'TAMPERED'],
    ]);
    const onServer = (await bob.read()).map((e) => (e.data as { title: string }).title);
    expect(onServer).not.toContain('relayed');
    expect(onServer).toHaveLength(9);
    expect(onServer).not.toContain('card 4');
  });
});
