/**
 * What the join-from-snapshot tests share (join.test.ts, join.property.test.ts): a server
 * connection (src/server/connection.ts) over a real WebSocket on 127.0.0.1 and a SQLite space,
 * with a SnapshotSource that folds the space's own events the way a server snapshot must
 * (core/space-snapshot.ts invariants 1–3), and stores that join or replay. Independent of the
 * server's snapshotter: any SnapshotSource will do.
 */
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { StoredEventRecord } from '../../src/core/events.ts';
import type { Projection } from '../../src/core/projection.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../../src/core/space-snapshot.ts';
import {
  type EventStore,
  memoryStorage,
  openStore,
  type StoreOptions,
  webSocketTransport,
} from '../../src/index.ts';
import { Connection } from '../../src/server/connection.ts';
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from '../../src/server/limits.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import type { SnapshotSource } from '../../src/server/snapshot-source.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { tempDir } from './helpers.ts';

export const SPACE = 'join-space';

/** Every event of `space` at positions <= `pos`, in the total order. */
export async function eventsUpTo(space: SpaceLog, pos: number): Promise<StoredEventRecord[]> {
  const out: StoredEventRecord[] = [];
  let after = 0;
  for (;;) {
    const page = await space.readByPos(after, 500);
    for (const r of page) if (r.pos <= pos) out.push(r.event);
    if (page.length < 500 || page[page.length - 1]!.pos >= pos) break;
    after = page[page.length - 1]!.pos;
  }
  return out.sort((a, b) => (a.cursor < b.cursor ? -1 : a.cursor > b.cursor ? 1 : 0));
}

/** The snapshot of `events` (in the total order) at `pos` for `projections`. */
export function foldSnapshot(
  events: readonly StoredEventRecord[],
  pos: number,
  projections: readonly Projection[],
): SpaceSnapshot {
  const vector: Record<string, number> = {};
  const heads = new Map<string, { version: number; replicas: Map<number, Set<string>> }>();
  for (const e of events) {
    vector[e.replica] = Math.max(vector[e.replica] ?? 0, e.seq);
    let head = heads.get(e.stream);
    if (head === undefined) {
      head = { version: 0, replicas: new Map() };
      heads.set(e.stream, head);
    }
    head.version = Math.max(head.version, e.version);
    const at = head.replicas.get(e.version) ?? new Set<string>();
    at.add(e.replica);
    head.replicas.set(e.version, at);
  }
  return {
    pos,
    cursor: events.length === 0 ? '' : events[events.length - 1]!.cursor,
    count: events.length,
    projections: projections.map((p) => {
      let state = p.initial();
      for (const e of events) state = p.apply(state, e as never);
      return { name: p.name, version: p.version, state: JSON.parse(JSON.stringify(state)) };
    }),
    streams: [...heads].map(([stream, h]) => ({
      stream,
      version: h.version,
      conflict: [...h.replicas.values()].some((r) => r.size > 1),
    })),
    vector,
  };
}

/**
 * A SnapshotSource over the space's own log, folding `projections` (the server's registered
 * ones) up to `upTo(head)` (default: the head), as a snapshotter would have stored it.
 */
export function foldingSource(
  storage: ServerStorage,
  projections: readonly Projection[],
  upTo: (head: number) => number = (head) => head,
): SnapshotSource & { served: SpaceSnapshot[] } {
  const served: SpaceSnapshot[] = [];
  return {
    served,
    async latest(space: string, wanted: readonly ProjectionVersion[]) {
      const registered = wanted.map((w) =>
        projections.find((p) => p.name === w.name && p.version === w.version),
      );
      if (registered.some((p) => p === undefined)) return undefined;
      const log = await storage.openSpace(space);
      const pos = upTo(await log.headPos());
      const snapshot = foldSnapshot(await eventsUpTo(log, pos), pos, registered as Projection[]);
      served.push(snapshot);
      return snapshot;
    },
  };
}

export interface JoinServer {
  url: string;
  storage: ServerStorage;
  space: SpaceLog;
  close(): Promise<void>;
}

/** A server connection per socket over a SQLite space; `snapshots` as its ConnectionContext's. */
export async function startJoinServer(
  options: {
    snapshots?: (storage: ServerStorage) => SnapshotSource;
    requireSignatures?: boolean;
    /** Over the defaults (and maxBatchEvents 50). */
    limits?: Partial<ServerLimits>;
  } = {},
): Promise<JoinServer> {
  const tmp = tempDir();
  const storage = sqliteStorage(`${tmp.dir}/server.sqlite`);
  const space = await storage.openSpace(SPACE);
  const snapshots = options.snapshots?.(storage);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const connections = new Set<Connection>();
  const inflight = new Set<Promise<unknown>>();
  wss.on('connection', (ws) => {
    const connection = new Connection({
      ws,
      claims: { space: SPACE, sub: 'tester', scope: ['read', 'write'] },
      space,
      limits: { ...DEFAULT_SERVER_LIMITS, maxBatchEvents: 50, ...options.limits },
      metrics: new ServerMetrics(),
      log: (entry) => {
        if (process.env.DEBUG_JOIN) console.log(JSON.stringify(entry));
      },
      now: Date.now,
      inflight,
      remote: undefined,
      onClosed: (c) => connections.delete(c),
      requireSignatures: options.requireSignatures ?? false,
      ...(snapshots === undefined ? {} : { snapshots }),
    });
    connections.add(connection);
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    storage,
    space,
    async close() {
      for (const c of connections) c.end(1001, 'test over');
      await Promise.all([...connections].map((c) => c.closed()));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await Promise.all(inflight);
      await storage.close();
      tmp.cleanup();
    },
  };
}

/** A store connected to `url`; `join: 'snapshot'` to join. */
export async function storeOn<E>(
  url: string,
  options: Partial<StoreOptions<E>> & { name: string },
): Promise<EventStore<E>> {
  const store = await openStore<E>({ storage: memoryStorage(), signing: false, ...options });
  store.sync.connect(webSocketTransport(url, { WebSocket: WebSocket as never }));
  return store;
}
