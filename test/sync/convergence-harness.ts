/**
 * The world of the public-API convergence properties: replicas opened with openStore (memory or
 * fake-indexeddb storage) with snapshotting projections, joined by links (memory transport pairs
 * or WebSocket connections to a sync server) that can be killed, closed, and partitioned. It
 * performs a scenario's actions, records every append attempt and its outcome, and keeps a
 * history of the run for the failure message. The checks are in convergence-checks.ts.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import {
  ConcurrencyError,
  type EventStore,
  type ExpectedVersion,
  HistoryUnavailableError,
  indexedDbStorage,
  memoryStorage,
  openStore,
  type StorageAdapter,
  type StoredEvent,
  type SyncConnection,
  type SyncControllerOptions,
  type Transport,
} from '../../src/index.ts';
import { makeProjections, type TestEvent } from './convergence-checks.ts';
import type { AppendMode, StorageKind } from './convergence-scenario.ts';

export interface Attempt {
  op: number;
  node: number;
  stream: string;
  mode: AppendMode | 'retry' | 'collide';
  expected: ExpectedVersion;
  /** The stream's version and the id of the log's last event on the node before the append. */
  versionBefore: number;
  cursorBefore: string;
  idBefore?: string;
  tags: string[];
  ids?: string[];
  result?: StoredEvent<TestEvent>[];
  error?: unknown;
  /** Another attempt this one repeated (retry). */
  of?: number;
}

export interface Link {
  a: number;
  /** The other end: a node, or the sync server. */
  b: number | 'server';
  cut: boolean;
  /** A network failure: the current connection dies, both ends reconnect. */
  kill(): void;
}

interface Endpoint {
  link: Link;
  transport: Transport;
  conn: SyncConnection | undefined;
  /** Whether this end wants its sync connection (toggle). */
  wanted: boolean;
}

export interface HarnessNode {
  index: number;
  kind: StorageKind;
  storage: StorageAdapter;
  store: EventStore<TestEvent> | undefined;
  skew: number;
  endpoints: Endpoint[];
  syncOptions: SyncControllerOptions;
}

export interface WorldOptions {
  runId: string;
  kinds: StorageKind[];
  skews: number[];
  /** The shared clock (virtual or real) each node's skew is added to. */
  now: () => number;
  maxClockDriftMs: number;
  snapshotEvery: { order: number; digest: number };
  syncOptions: (node: number) => SyncControllerOptions;
  /** Every replica encrypts with this key (StoreOptions.encryption). */
  encryptionKey?: Uint8Array;
  /** …and hides stream names and types with this secret (EncryptionOptions.names). */
  names?: Uint8Array;
}

/** Rejects open() while its link is cut, so that both ends keep retrying until heal. */
function cuttable(inner: Transport, link: Link): Transport {
  return {
    kind: inner.kind,
    open: () => (link.cut ? Promise.reject(new Error('partitioned (test harness)')) : inner.open()),
    send: (text) => inner.send(text),
    onMessage: (listener) => inner.onMessage(listener),
    onClose: (listener) => inner.onClose(listener),
    close: (code, reason) => inner.close(code, reason),
  };
}

export class World {
  readonly nodes: HarnessNode[];
  readonly links: Link[] = [];
  readonly attempts: Attempt[] = [];
  readonly history: string[] = [];
  private op = 0;

  private readonly options: WorldOptions;

  constructor(options: WorldOptions) {
    this.options = options;
    this.nodes = options.kinds.map((kind, index) => ({
      index,
      kind,
      storage:
        kind === 'memory'
          ? memoryStorage()
          : indexedDbStorage(`${options.runId}-n${index}`, { indexedDB: new IDBFactory() }),
      store: undefined,
      skew: options.skews[index] ?? 0,
      endpoints: [],
      syncOptions: options.syncOptions(index),
    }));
  }

  log(line: string): void {
    this.history.push(line);
  }

  /** Adds a link; `transports` holds one transport per node end (two, or one to the server). */
  addLink(a: number, b: number | 'server', transports: Transport[], kill: () => void): Link {
    const link: Link = { a, b, cut: false, kill };
    this.links.push(link);
    const ends = b === 'server' ? [a] : [a, b];
    ends.forEach((n, i) => {
      this.nodes[n]!.endpoints.push({
        link,
        transport: cuttable(transports[i]!, link),
        conn: undefined,
        wanted: true,
      });
    });
    return link;
  }

  async openAll(): Promise<void> {
    for (const node of this.nodes) await this.open(node);
  }

  async open(node: HarnessNode, connect = true): Promise<EventStore<TestEvent>> {
    const store = await openStore<TestEvent>({
      name: `${this.options.runId}-n${node.index}`,
      storage: node.storage,
      projections: makeProjections(this.options.snapshotEvery),
      now: () => this.options.now() + node.skew,
      maxClockDrift: this.options.maxClockDriftMs,
      syncOptions: node.syncOptions,
      ...(this.options.encryptionKey && {
        encryption: {
          key: this.options.encryptionKey,
          ...(this.options.names && { names: this.options.names }),
        },
      }),
    });
    node.store = store;
    if (connect) {
      for (const e of node.endpoints) {
        if (e.wanted) e.conn = store.sync.connect(e.transport);
      }
    }
    return store;
  }

  store(node: number): EventStore<TestEvent> {
    const store = this.nodes[node]!.store;
    if (store === undefined) throw new Error(`node ${node} is not open`);
    return store;
  }

  async close(node: HarnessNode): Promise<void> {
    const store = node.store;
    node.store = undefined;
    for (const e of node.endpoints) e.conn = undefined;
    await store?.close();
  }

  /** Closes a node with `inflight` appends started and not awaited, then opens it again. */
  async restart(index: number, inflight: number, appendable: boolean): Promise<void> {
    const node = this.nodes[index]!;
    const started: Promise<void>[] = [];
    if (appendable) {
      for (let i = 0; i < inflight; i++) {
        started.push(this.append(index, `s${i % 3}`, 1, 'any', i % 2 === 0, true));
      }
    }
    await this.close(node);
    await Promise.all(started);
    await this.open(node);
  }

  /** Closes one end's sync connection, or connects it again. */
  async toggle(link: Link, end: 0 | 1): Promise<void> {
    const index = end === 1 && link.b !== 'server' ? link.b : link.a;
    const node = this.nodes[index]!;
    const endpoint = node.endpoints.find((e) => e.link === link)!;
    endpoint.wanted = !endpoint.wanted;
    if (node.store === undefined) return;
    if (endpoint.wanted) endpoint.conn = node.store.sync.connect(endpoint.transport);
    else {
      const conn = endpoint.conn;
      endpoint.conn = undefined;
      await conn?.close();
    }
  }

  /** Reconnects every end that was toggled off. */
  connectAll(): void {
    for (const node of this.nodes) {
      for (const e of node.endpoints) {
        if (e.wanted) continue;
        e.wanted = true;
        if (node.store !== undefined) e.conn = node.store.sync.connect(e.transport);
      }
    }
  }

  partition(mask: number): void {
    const inside = (n: number | 'server') => n !== 'server' && (mask & (1 << n)) !== 0;
    for (const link of this.links) {
      if (inside(link.a) === inside(link.b) || link.cut) continue;
      link.cut = true;
      link.kill();
    }
  }

  heal(): void {
    for (const link of this.links) link.cut = false;
  }

  /**
   * The replica's newest event and the stream's version before an append. A partial replica
   * (the `retaining` project) reads an event below its horizon through its server only: with
   * no session (a cut or killed link) the stream's newest event, and so its version, may be
   * unknown here (HISTORY_OFFLINE), as an app would find too. Then versionBefore is -1, as for an
   * append in flight.
   */
  private async before(store: EventStore<TestEvent>, stream: string) {
    const offline = <T>(read: Promise<T[]>): Promise<T[] | undefined> =>
      read.catch((error: unknown) => {
        if (error instanceof HistoryUnavailableError) return undefined;
        throw error;
      });
    const [last] = (await offline(store.read({ reverse: true, limit: 1 }))) ?? [];
    const inStream = await offline(store.read({ stream, reverse: true, limit: 1 }));
    return {
      versionBefore: inStream === undefined ? -1 : (inStream[0]?.version ?? 0),
      cursorBefore: last?.cursor ?? '',
      ...(last !== undefined ? { idBefore: last.id } : {}),
    };
  }

  /** One append through the public API; its outcome is recorded, never thrown. */
  async append(
    node: number,
    stream: string,
    count: number,
    mode: AppendMode,
    withIds: boolean,
    inflight = false,
  ): Promise<void> {
    const op = ++this.op;
    const store = this.store(node);
    // In flight: store.append is called in this tick, before the caller closes the store; what
    // the log held before is then unknown (version -1).
    const { versionBefore, cursorBefore, idBefore } = inflight
      ? { versionBefore: -1, cursorBefore: '', idBefore: undefined }
      : await this.before(store, stream);
    if (versionBefore < 0 && (mode === 'current' || mode === 'stale')) {
      // No version to expect (see before()): an app would not append with one either.
      this.log(`  #${op} n${node} ${stream} ${mode}: skipped, its version is unknown offline`);
      return;
    }
    const expected: ExpectedVersion =
      mode === 'current'
        ? versionBefore
        : mode === 'stale'
          ? // No stale number exists for an empty stream: one ahead of it is just as wrong.
            versionBefore > 0
            ? versionBefore - 1
            : versionBefore + 1
          : mode;
    const tags = Array.from({ length: count }, (_, k) => `o${op}.${k}`);
    const ids = withIds ? tags.map((t) => `${this.options.runId}-${t}`) : undefined;
    const attempt: Attempt = {
      op,
      node,
      stream,
      mode,
      expected,
      versionBefore,
      cursorBefore,
      tags,
    };
    if (ids !== undefined) attempt.ids = ids;
    if (idBefore !== undefined) attempt.idBefore = idBefore;
    this.attempts.push(attempt);
    const events = tags.map((tag, k) => ({
      type: k === 0 ? 'first' : 'next',
      data: { tag, by: node },
      ...(ids !== undefined ? { id: ids[k]! } : {}),
    }));
    await this.settle(attempt, store.append(stream, events, { expectedVersion: expected }));
  }

  /** Appends again the node's last successful batch with explicit ids, unchanged. */
  async retry(node: number): Promise<void> {
    const original = this.attempts.findLast(
      (a) => a.node === node && a.ids !== undefined && a.result !== undefined,
    );
    if (original === undefined) return;
    const op = ++this.op;
    const store = this.store(node);
    const { versionBefore, cursorBefore } = await this.before(store, original.stream);
    const attempt: Attempt = {
      ...original,
      op,
      mode: 'retry',
      versionBefore,
      cursorBefore,
      of: original.op,
    };
    delete attempt.result;
    this.attempts.push(attempt);
    const events = original.result!.map((e) => ({ type: e.type, data: e.data, id: e.id }));
    await this.settle(
      attempt,
      store.append(original.stream, events, { expectedVersion: original.expected }),
    );
  }

  /** Two replicas append one explicit id with different data (issue 12 defect 2). */
  async collide(a: number, b: number, stream: string): Promise<void> {
    const id = `${this.options.runId}-c${++this.op}`;
    for (const node of [a, b]) {
      const op = ++this.op;
      const store = this.store(node);
      const { versionBefore, cursorBefore } = await this.before(store, stream);
      const tag = `o${op}.0`;
      const attempt: Attempt = {
        op,
        node,
        stream,
        mode: 'collide',
        expected: 'any',
        versionBefore,
        cursorBefore,
        tags: [tag],
        ids: [id],
      };
      this.attempts.push(attempt);
      await this.settle(
        attempt,
        store.append(stream, { type: 'first', data: { tag, by: node }, id }),
      );
    }
  }

  private async settle(attempt: Attempt, run: Promise<StoredEvent<TestEvent>[]>): Promise<void> {
    try {
      attempt.result = await run;
      const versions = attempt.result.map((e) => e.version);
      this.log(
        `  #${attempt.op} n${attempt.node} ${attempt.stream} ${attempt.mode}(${String(attempt.expected)}) -> v${versions.join(',')}`,
      );
    } catch (error) {
      attempt.error = error;
      const detail =
        error instanceof ConcurrencyError
          ? `CONCURRENCY at ${error.actualVersion}`
          : String((error as { code?: string }).code ?? error);
      this.log(
        `  #${attempt.op} n${attempt.node} ${attempt.stream} ${attempt.mode}(${String(attempt.expected)}) -> ${detail}`,
      );
    }
  }

  async closeAll(): Promise<void> {
    for (const node of this.nodes) await this.close(node).catch(() => undefined);
  }
}
