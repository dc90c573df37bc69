/**
 * What the history-on-demand tests share (history-sync.test.ts on SQLite,
 * postgres-history-sync.test.ts on a PostgreSQL-backed server process): a seeded history with
 * late events, a server over a storage holding it, a store whose sync controller the test holds,
 * and paging by cursor to the end.
 */
import WebSocket from 'ws';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { memoryStorage, openStore, type Transport, webSocketTransport } from '../../src/index.ts';
import { createSyncServer } from '../../src/server/server.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import type { SyncController } from '../../src/store/internal.ts';
import { createSyncController } from '../../src/sync/controller.ts';
import { makeEvent } from './events.ts';
import { SECRET, spaceToken, waitFor } from './helpers.ts';

/** 300 events of three replicas, the last 40 late (cursors among the first). */
export function history(): StoredEventRecord[] {
  const events: StoredEventRecord[] = [];
  for (let i = 0; i < 260; i++) {
    const replica = ['histaaaaaaaaaaaa', 'histbbbbbbbbbbbb', 'histcccccccccccc'][i % 3]!;
    events.push(
      makeEvent({
        replica,
        seq: Math.floor(i / 3) + 1,
        wall: 1_700_000_000_000 + i * 1000,
        stream: `card-${i % 5}`,
        id: `h-${i}`,
      }),
    );
  }
  for (let i = 0; i < 40; i++) {
    events.push(
      makeEvent({
        replica: 'histlateeeeeeeee',
        seq: i + 1,
        wall: 1_700_000_000_500 + i * 1000,
        stream: 'card-1',
        id: `late-${i}`,
      }),
    );
  }
  return events;
}

/** Every page of `q` (its `limit` the page size) through `read`, following `after`. */
export async function pageAll(
  read: (q: CursorQuery) => Promise<StoredEventRecord[]>,
  q: CursorQuery,
): Promise<string[]> {
  const ids: string[] = [];
  let after = q.after;
  for (;;) {
    const page = await read(after === undefined ? q : { ...q, after });
    ids.push(...page.map((e) => e.id));
    if (page.length < q.limit) return ids;
    after = page[page.length - 1]!.cursor;
  }
}

/** Servers and stores that `cleanups` closes after each test. */
export function historyHarness(cleanups: (() => Promise<void> | void)[]) {
  /** A server on 127.0.0.1 over `storage`, its space seeded with `events` and sealed. */
  async function serve(storage: ServerStorage, events: StoredEventRecord[]) {
    const space = await storage.openSpace('space-a');
    await space.ingest(events);
    await storage.compact?.();
    const server = await createSyncServer({
      storage,
      auth: { secret: SECRET },
      requireSignatures: false,
      limits: { maxBatchEvents: 64 },
      log: () => {},
    });
    cleanups.push(() => server.close());
    return server;
  }

  /**
   * A store whose sync controller the test holds, connected to `url` unless it is undefined.
   * Signing off unless asked: the seeded history is unsigned, and a signing store requires
   * signatures of everything it receives, history pages included.
   */
  async function storeWith(
    url: string | undefined,
    {
      signing = false,
      watch,
      ...options
    }: { historyTimeoutMs?: number; signing?: boolean; watch?: (t: Transport) => void } = {},
  ) {
    let controller: SyncController | undefined;
    const store = await openStore({
      name: 'client',
      storage: memoryStorage(),
      signing,
      syncFactory: (internals) => {
        controller = createSyncController(internals, {
          WebSocket: WebSocket as never,
          backoff: { initialMs: 50, maxMs: 200 },
          ...options,
        });
        return controller;
      },
    });
    cleanups.push(() => store.close());
    if (url !== undefined) {
      const transport = webSocketTransport(url, {
        token: spaceToken('space-a'),
        WebSocket: WebSocket as never,
      });
      watch?.(transport);
      store.sync.connect(transport);
      await waitFor(() => store.sync.status().connections?.[0]?.server === true);
    }
    return { store, history: controller!.history! };
  }

  return { serve, storeWith };
}
