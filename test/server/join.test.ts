/**
 * A new device joins from a server snapshot (protocol.ts invariant 10, store/join.ts,
 * docs/storage-growth.md): over a real WebSocket and a SQLite space, a store that joins converges
 * with one that replayed the whole log (projection states, reads, stream versions), skips the
 * events the snapshot covers when a peer sends them again, rebases a late event below its
 * horizon through history, and replays when the versions differ or the server has no snapshots.
 */

import { IDBFactory } from 'fake-indexeddb';
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import {
  defineProjection,
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  memoryTransportPair,
} from '../../src/index.ts';
import { createSyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { StorageAdapter } from '../../src/storage/adapter.ts';
import { sqliteReplicaStorage } from '../../src/storage/sqlite.ts';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { bindYDoc } from '../../src/yjs/index.ts';
import { makeEvent } from './events.ts';
import { RawClient, tempDir, waitFor } from './helpers.ts';
import { foldingSource, type JoinServer, startJoinServer, storeOn } from './join-helpers.ts';

type Board = Record<string, { n: number; last: string }>;
const board = defineProjection<Board>({
  name: 'board',
  version: 1,
  snapshotEvery: 20,
  initial: () => ({}),
  apply: (state, e) => {
    const title = (e.data as { title?: string } | null)?.title ?? '';
    const card = state[e.stream] ?? { n: 0, last: '' };
    return { ...state, [e.stream]: { n: card.n + 1, last: title } };
  },
});
const total = defineProjection<number>({
  name: 'total',
  version: 3,
  initial: () => 0,
  apply: (n) => n + 1,
});
const projections = [board, total];

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function server(options: Parameters<typeof startJoinServer>[0] = {}): Promise<JoinServer> {
  const s = await startJoinServer(options);
  cleanups.push(() => s.close());
  return s;
}

async function store(url: string, options: Parameters<typeof storeOn>[1]): Promise<EventStore> {
  const s = await storeOn(url, { projections, ...options });
  cleanups.push(() => s.close());
  return s;
}

/** A writer's `n` events over five cards, all acknowledged by the server. */
async function write(url: string, n: number, name = 'writer'): Promise<EventStore> {
  const writer = await store(url, { name });
  for (let i = 0; i < n; i++) {
    await writer.append(`card-${i % 5}`, { type: 'renamed', data: { title: `${name} ${i}` } });
  }
  await waitFor(() => writer.sync.status().pending === 0);
  return writer;
}

const headOf = (s: EventStore) => s.read({ reverse: true, limit: 1 });

async function converged(a: EventStore, b: EventStore): Promise<void> {
  expect(await a.state('board')).toEqual(await b.state('board'));
  expect(await a.state('total')).toEqual(await b.state('total'));
  const ids = (events: { id: string }[]) => events.map((e) => e.id);
  expect(ids(await a.read({ reverse: true, limit: 7 }))).toEqual(
    ids(await b.read({ reverse: true, limit: 7 })),
  );
  expect(ids(await a.read())).toEqual(ids(await b.read()));
}

const adapters: [string, () => StorageAdapter][] = [
  ['memory', () => memoryStorage()],
  [
    'indexeddb (fake-indexeddb)',
    () => indexedDbStorage(`join-${Math.random()}`, { indexedDB: new IDBFactory() }),
  ],
  [
    'sqlite replica',
    () => {
      const tmp = tempDir();
      cleanups.push(() => tmp.cleanup());
      return sqliteReplicaStorage(`${tmp.dir}/replica.db`);
    },
  ],
];

describe.each(adapters)('joining from a snapshot on %s', (_name, storage) => {
  it('converges with a device that replayed everything, holding only the tail after the snapshot', async () => {
    // The snapshot folds the first 60 positions; 15 more follow it.
    const s = await server({ snapshots: (st) => foldingSource(st, projections, () => 60) });
    const writer = await write(s.url, 75);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot', storage: storage() });
    const replayed = await store(s.url, { name: 'replayed' });
    await waitFor(async () => (await headOf(joined))[0]?.id === (await headOf(writer))[0]?.id);
    await waitFor(async () => (await replayed.read()).length === 75);
    await converged(joined, replayed);
    expect(await joined.state('total')).toBe(75);
    // Only the 15 events after the snapshot's position were received and stored.
    expect(joined.sync.status().state).not.toBe('offline');
    const stored = await (
      joined as unknown as { log: { headPos(): Promise<number> } }
    ).log.headPos();
    expect(stored).toBe(15);

    // Stream versions: the next append on a card the snapshot covers gets the next version,
    // checked against the same expectedVersion a replayed device would use.
    const [last] = await replayed.read({ stream: 'card-2', reverse: true, limit: 1 });
    const [appended] = await joined.append(
      'card-2',
      { type: 'renamed', data: { title: 'after join' } },
      { expectedVersion: last!.version },
    );
    expect(appended!.version).toBe(last!.version + 1);
    await expect(
      joined.append('card-3', { type: 'renamed', data: {} }, { expectedVersion: 2 }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY' });
    await waitFor(async () => (await replayed.read()).length === 76);
    await converged(joined, replayed);
  });

  it('recognises an old event a peer sends again, and stores nothing twice', async () => {
    const s = await server({ snapshots: (st) => foldingSource(st, projections) });
    await write(s.url, 30);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot', storage: storage() });
    const replayed = await store(s.url, { name: 'replayed' });
    await waitFor(async () => (await replayed.read()).length === 30);
    await waitFor(() => joined.sync.status().state === 'idle');
    const head = () => (joined as unknown as { log: { headPos(): Promise<number> } }).log.headPos();
    expect(await head()).toBe(0);
    // A peer that holds the whole log sends it all: every event is one the snapshot covers.
    const [a, b] = memoryTransportPair();
    joined.sync.connect(a);
    replayed.sync.connect(b);
    await waitFor(
      () => joined.sync.status().connections?.every((c) => c.state === 'idle') ?? false,
    );
    expect(await head()).toBe(0);
    await converged(joined, replayed);
  });

  it('rebases a late event below its horizon through history, as a trimmed replica does', async () => {
    const s = await server({ snapshots: (st) => foldingSource(st, projections) });
    await write(s.url, 40);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot', storage: storage() });
    const replayed = await store(s.url, { name: 'replayed' });
    await waitFor(async () => (await replayed.read()).length === 40);
    await waitFor(() => joined.sync.status().state === 'idle');
    const log = (joined as unknown as { log: { horizon(): Promise<string | undefined> } }).log;
    expect(await log.horizon()).toBeDefined();
    const [first] = await replayed.read({ limit: 1 });
    const late: StoredEventRecord = makeEvent({
      replica: 'joinlateeeeeeeee',
      seq: 1,
      wall: first!.time + 1,
      stream: 'card-1',
      type: 'renamed',
      data: { title: 'late' },
    });
    await s.space.ingest([late]);
    await waitFor(async () =>
      (await joined.read({ stream: 'card-1' })).some((e) => e.id === late.id),
    );
    await waitFor(async () => (await replayed.read()).length === 41);
    await converged(joined, replayed);
    expect(await joined.state('total')).toBe(41);
  });
});

describe('when a device replays instead', () => {
  it('replays the whole log when the server holds other versions of its projections', async () => {
    const older = defineProjection<number>({
      name: 'total',
      version: 2,
      initial: () => 0,
      apply: (n) => n + 1,
    });
    const s = await server({ snapshots: (st) => foldingSource(st, [board, older]) });
    await write(s.url, 20);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot' });
    await waitFor(async () => (await joined.read()).length === 20);
    const log = (
      joined as unknown as {
        log: { headPos(): Promise<number>; horizon(): Promise<string | undefined> };
      }
    ).log;
    expect(await log.headPos()).toBe(20);
    expect(await log.horizon()).toBeUndefined();
    expect(await joined.state('total')).toBe(20);
  });

  it('replays the whole log from a server without snapshots (an older server)', async () => {
    const s = await server();
    await write(s.url, 20);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot' });
    await waitFor(async () => (await joined.read()).length === 20);
    const log = (joined as unknown as { log: { headPos(): Promise<number> } }).log;
    expect(await log.headPos()).toBe(20);
    expect(await joined.state('total')).toBe(20);
  });

  it('replays when the store has an encryption key (a server cannot fold sealed data)', async () => {
    const source = (st: Parameters<typeof foldingSource>[0]) => foldingSource(st, projections);
    let asked = 0;
    const s = await server({
      snapshots: (st) => {
        const inner = source(st);
        return {
          latest: (space, wanted) => {
            asked += 1;
            return inner.latest(space, wanted);
          },
        };
      },
    });
    const key = new Uint8Array(32).fill(7);
    const writer = await store(s.url, { name: 'writer', encryption: { key } });
    await writer.append('card-1', { type: 'renamed', data: { title: 'secret' } });
    await waitFor(() => writer.sync.status().pending === 0);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot', encryption: { key } });
    await waitFor(async () => (await joined.read()).length === 1);
    expect(asked).toBe(0);
  });
});

describe('a Yjs document on a device that joined', () => {
  it('loads its whole history from the server: the document is not a projection', async () => {
    const s = await server({ snapshots: (st) => foldingSource(st, projections) });
    const writer = await store(s.url, { name: 'writer' });
    const mine = bindYDoc(writer, 'card-1/notes', { snapshotEvery: 1000 });
    cleanups.push(() => mine.destroy());
    await mine.ready;
    for (const word of ['alpha ', 'beta ', 'gamma']) {
      mine.doc.getText('t').insert(mine.doc.getText('t').length, word);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(async () => (await writer.read({ stream: 'card-1/notes' })).length >= 3);
    await waitFor(() => writer.sync.status().pending === 0);
    const joined = await store(s.url, { name: 'joined', join: 'snapshot' });
    await waitFor(() => joined.sync.status().state === 'idle');
    const log = (joined as unknown as { log: { horizon(): Promise<string | undefined> } }).log;
    expect(await log.horizon()).toBeDefined();
    const theirs = bindYDoc(joined, 'card-1/notes');
    cleanups.push(() => theirs.destroy());
    await theirs.ready;
    expect(theirs.doc.getText('t').toString()).toBe('alpha beta gamma');
  });
});

describe('the join exchange on the wire (protocol invariant 10)', () => {
  const hello = (join?: unknown) => ({
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    replica: 'joinrawclient001',
    epoch: 'e-raw',
    head: 0,
    seq: 0,
    time: Date.now(),
    ...(join === undefined ? {} : { join }),
  });

  it('answers join once, before its pull, and a hello without join with no snapshot at all', async () => {
    const s = await server({ snapshots: (st) => foldingSource(st, projections) });
    await s.space.ingest([makeEvent({ replica: 'joinwriter000001', seq: 1, stream: 'card-1' })]);
    const raw = await RawClient.connect(s.url);
    cleanups.push(() => raw.close());
    expect((await raw.nextOfType('hello')).snapshots).toBe(true);
    raw.send(hello({ projections: [{ name: 'total', version: 3 }], maxBytes: 1 << 20 }));
    const answer = await raw.next((m) => m.type === 'snapshot' || m.type === 'pull');
    expect(answer.type).toBe('snapshot');
    expect(answer.snapshot).toMatchObject({ pos: 1, count: 1, projections: [{ state: 1 }] });
    await raw.nextOfType('pull');

    const other = await RawClient.connect(s.url);
    cleanups.push(() => other.close());
    await other.nextOfType('hello');
    other.send(hello());
    await other.nextOfType('pull');
    expect(other.messages.some((m) => m.type === 'snapshot')).toBe(false);
  });

  it('answers with none when a version differs or the snapshot is larger than maxBytes', async () => {
    const s = await server({ snapshots: (st) => foldingSource(st, projections) });
    // Sixty replicas: the vector alone is larger than the least maxBytes.
    await s.space.ingest(
      Array.from({ length: 60 }, (_, i) =>
        makeEvent({ replica: `joinwriter${String(i).padStart(6, '0')}`, seq: 1, stream: 'card-1' }),
      ),
    );
    for (const join of [
      { projections: [{ name: 'total', version: 2 }], maxBytes: 1 << 20 },
      { projections: [{ name: 'board', version: 1 }], maxBytes: 1024 },
    ]) {
      const raw = await RawClient.connect(s.url);
      cleanups.push(() => raw.close());
      await raw.nextOfType('hello');
      raw.send({ ...hello(join), replica: `joinrawclient00${join.projections[0]!.version}` });
      const answer = await raw.nextOfType('snapshot');
      expect(answer.snapshot).toBeUndefined();
    }
  });

  it('refuses a snapshot it did not ask for with a fatal PROTOCOL error', async () => {
    const s = await server({ snapshots: (st) => foldingSource(st, projections) });
    const raw = await RawClient.connect(s.url);
    cleanups.push(() => raw.close());
    await raw.nextOfType('hello');
    raw.send(hello());
    await raw.nextOfType('pull');
    raw.send({ type: 'snapshot' });
    expect(await raw.nextOfType('error')).toMatchObject({ code: 'PROTOCOL', fatal: true });
  });
});

describe("joining from createSyncServer's snapshotter", () => {
  it('joins from the snapshot the server built, and converges with a device that replayed', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const storage = sqliteStorage(`${tmp.dir}/server.sqlite`);
    const sync = await createSyncServer({
      storage,
      auth: false,
      requireSignatures: false,
      snapshots: { projections, every: 20, rescanMs: 50, lateDelayMs: 50 },
      log: () => {},
    });
    cleanups.push(() => sync.close());
    await write(sync.url, 45);
    // The snapshotter builds beside the sessions: join once it stored one (at 40).
    await waitFor(async () =>
      ((await storage.snapshots?.list('default')) ?? []).some((m) => m.pos >= 40),
    );
    const joined = await store(sync.url, { name: 'joined', join: 'snapshot' });
    const replayed = await store(sync.url, { name: 'replayed' });
    await waitFor(async () => (await replayed.read()).length === 45);
    await waitFor(() => joined.sync.status().state === 'idle');
    await converged(joined, replayed);
    const log = (
      joined as unknown as {
        log: { headPos(): Promise<number>; horizon(): Promise<string | undefined> };
      }
    ).log;
    // The server snapshots every 20 positions: the device received fewer than the 45 events.
    expect(await log.horizon()).toBeDefined();
    expect(await log.headPos()).toBeLessThan(45);
  }, 20_000);
});
