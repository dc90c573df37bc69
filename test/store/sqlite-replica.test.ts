/**
 * A back-end service's store on the SQLite replica adapter (src/storage/sqlite.ts), through the
 * public API and a real sync server: what it appended, synced and folded is still there after
 * close and reopen from the same file, under the same signing identity, and syncing again sends
 * the server nothing twice.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  defineProjection,
  type EventStore,
  openStore,
  webSocketTransport,
} from '../../src/index.ts';
import { sqliteReplicaStorage } from '../../src/storage/sqlite.ts';
import { startTestServer, type TestServer, tempDir, waitFor } from '../server/helpers.ts';

type Events = { CardAdded: { title: string } };

const titles = defineProjection<string[], Events>({
  name: 'titles',
  version: 1,
  snapshotEvery: 5,
  initial: () => [],
  apply: (list, e) => (e.type === 'CardAdded' ? [...list, e.data.title] : list),
});

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function service(server: TestServer, path: string): Promise<EventStore<Events>> {
  const store = await openStore<Events>({
    name: 'service',
    storage: sqliteReplicaStorage(path),
    projections: [titles],
  });
  cleanups.push(() => store.close().catch(() => {}));
  store.sync.connect(
    webSocketTransport(server.server.url, {
      token: server.token({ sub: 'service' }),
      WebSocket: WebSocket as never,
    }),
  );
  return store;
}

const synced = (store: EventStore<Events>) =>
  waitFor(() => {
    const s = store.sync.status();
    return s.state === 'idle' && s.pending === 0;
  }, 15_000);

function serverIds(path: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT id FROM events WHERE space = 'space-a' ORDER BY pos").all();
    return (rows as { id: string }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

describe('a store on sqliteReplicaStorage', () => {
  it('keeps events, stream versions, snapshots, sync checkpoints and its signing identity across close and reopen', async () => {
    const server = await startTestServer({ requireSignatures: true });
    cleanups.push(() => server.stop());
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'service', 'log.db');

    const first = await service(server, path);
    for (let i = 0; i < 12; i++) {
      await first.append(
        'board',
        { type: 'CardAdded', data: { title: `card ${i}` } },
        {
          expectedVersion: i === 0 ? 'none' : i,
        },
      );
    }
    await synced(first);
    const replicaId = first.replicaId;
    const events = await first.read();
    const state = await first.state(titles);
    expect((await first.inspect(titles)).snapshots.length).toBeGreaterThan(0);
    await first.close();

    const db = new Database(path, { readonly: true });
    const checkpoints = db
      .prepare("SELECT key FROM log_meta WHERE key LIKE 'sync.checkpoint.%'")
      .all();
    const identity = db.prepare('SELECT identity FROM log_state').get() as { identity: string };
    db.close();
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(Object.keys(JSON.parse(identity.identity).nonces)).toContain(replicaId);

    const again = await service(server, path);
    expect(again.replicaId).toBe(replicaId);
    expect(await again.read()).toEqual(events);
    expect(await again.state(titles)).toEqual(state);
    expect((await again.inspect(titles)).snapshots.length).toBeGreaterThan(0);
    // The stream's version survived: the next append expects 12.
    await again.append(
      'board',
      { type: 'CardAdded', data: { title: 'card 12' } },
      {
        expectedVersion: 12,
      },
    );
    await synced(again);
    // Signed with the same identity (the server requires signatures), each event once.
    const ids = serverIds(server.path);
    expect(ids).toEqual([...events.map((e) => e.id), (await again.read()).at(-1)!.id]);
    expect(again.sync.status().lastError).toBeUndefined();
  }, 30_000);
});
