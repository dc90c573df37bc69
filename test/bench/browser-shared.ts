/** What the Chromium benchmarks share between the bench worker, the bench page and Node. */
import { defineProjection, type EventStore, type LooseEvents } from '../../src/index.ts';
import type { ReceiveOutcome } from './size-worker.ts';
import type { StreamReadProbe } from './stream-read-worker.ts';

/** ~300 bytes of JSON, the same shape as store-node.ts. */
export function sampleEvent(i: number) {
  return {
    type: i % 3 === 0 ? 'CardAdded' : 'CardMoved',
    data: {
      board: 'board-1',
      card: `card-${i % 500}`,
      title: `Card number ${i} with a reasonably descriptive title`,
      column: ['todo', 'doing', 'done'][i % 3]!,
      position: i,
      tags: ['alpha', 'beta', 'gamma'].slice(0, i % 4),
      note: 'lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod',
    },
  };
}

export type Card = ReturnType<typeof sampleEvent>['data'];
export type Board = { count: number; columns: Record<string, number> };

export function fold(s: Board, data: Card): Board {
  s.count += 1;
  s.columns[data.column] = (s.columns[data.column] ?? 0) + 1;
  return s;
}

/** With snapshots every 1000 events (cold start "with snapshot"). */
export const board = defineProjection<Board, LooseEvents<Card>>({
  name: 'board',
  version: 1,
  snapshotEvery: 1000,
  initial: () => ({ count: 0, columns: {} }),
  apply: (s, e) => fold(s, e.data),
});

/** Never snapshotted: every open folds the whole log (replay, cold start "without"). */
export const boardNoSnapshot = defineProjection<Board, LooseEvents<Card>>({
  name: 'board-nosnap',
  version: 1,
  snapshotEvery: 0,
  initial: () => ({ count: 0, columns: {} }),
  apply: (s, e) => fold(s, e.data),
});

/** `count` events, each in a stream of its own, `width` at a time, as `mode` says. */
export async function appendToStreams(
  store: Pick<EventStore, 'append' | 'appendMany'>,
  count: number,
  width: number,
  mode: StreamsMode,
): Promise<void> {
  for (let i = 0; i < count; i += width) {
    const ids = Array.from({ length: width }, (_, k) => i + k);
    if (mode === 'appendMany') {
      await store.appendMany(ids.map((n) => ({ stream: `item-${n}`, events: sampleEvent(n) })));
    } else {
      await Promise.all(ids.map((n) => store.append(`item-${n}`, sampleEvent(n))));
    }
  }
}

/** 'default' leaves durability to the browser, as most IndexedDB code does. */
export type BenchDurability = 'strict' | 'relaxed' | 'default';

/** How 100 events for 100 streams reach the store: 100 concurrent appends, or one appendMany. */
export type StreamsMode = 'concurrent' | 'appendMany';

export interface BenchWorkerConfig {
  db: string;
  durability: BenchDurability;
  /** StoreOptions.encryption's key as encodeEncryptionKey text: the store seals every event. */
  key?: string;
}

/** The `db` of the worker that runs the in-worker benchmarks and serves no store. */
export const IN_WORKER_DB = 'none';

export const workerName = (c: BenchWorkerConfig) => `chronicle-bench:${JSON.stringify(c)}`;
export const parseWorkerName = (name: string) =>
  JSON.parse(name.slice('chronicle-bench:'.length)) as BenchWorkerConfig;

/** The in-worker benchmarks (raw IndexedDB baseline and the store in-process), in ms. */
export interface InWorkerBench {
  /** One record per event, `batch` records per transaction (what idb and Dexie users get). */
  rawBatched(
    db: string,
    count: number,
    batch: number,
    durability: BenchDurability,
  ): Promise<number>;
  /** One record per transaction holding its `batch` events (the limit of a batch-record layout). */
  rawBatchRecords(
    db: string,
    count: number,
    batch: number,
    durability: BenchDurability,
  ): Promise<number>;
  rawSingle(db: string, count: number, durability: BenchDurability): Promise<number>;
  /** Single writes laid out as Chronicle's, with an append's requests (browser-worker.ts). */
  rawSingleShaped(db: string, count: number, durability: BenchDurability): Promise<number>;
  rawSeed(db: string, count: number): Promise<void>;
  rawReplay(db: string): Promise<{ ms: number; count: number }>;
  storeBatched(
    db: string,
    count: number,
    batch: number,
    durability: BenchDurability,
  ): Promise<number>;
  /** `count` events, each in its own stream, `width` at a time (StreamsMode). */
  storeStreams(
    db: string,
    count: number,
    width: number,
    durability: BenchDurability,
    mode: StreamsMode,
  ): Promise<number>;
  storeSingle(db: string, count: number, durability: BenchDurability): Promise<number>;
  /**
   * Issue 14 (scale): appends `total` events, 100 per call, strict, timing each block of
   * `block` events: the ms of every block, in order.
   */
  storeScaleSeed(db: string, total: number, block: number): Promise<number[]>;
  storeSeed(db: string, count: number): Promise<void>;
  /** Opens the store and folds `projection` from its nearest snapshot: ms and the count. */
  storeOpenAndFold(db: string, projection: string): Promise<{ ms: number; count: number }>;
  storeWatchLatency(db: string, samples: number): Promise<number[]>;
  /** A new device: the same events as plain JSON arrays from `url`, put one transaction a message. */
  rawCatchUp(db: string, url: string, count: number): Promise<number>;
  /**
   * A new device: a store syncing from the server at `url` until `count` events reached it;
   * `localFirst`: after one local append, so that every event it receives sorts before that one.
   */
  storeCatchUp(db: string, url: string, count: number, localFirst: boolean): Promise<number>;
  /**
   * Issue 18: events `from`..`to` of the demo's mix (size-events.ts, `seed`) appended to `db`
   * and synced to `url` until none is pending; ms and estimate()'s usage before, once the store
   * opened, and after it closed.
   */
  storageSeed(
    db: string,
    url: string,
    from: number,
    to: number,
    seed: number,
  ): Promise<{ ms: number; usageBefore: number; usageOpened: number; usageAfter: number }>;
  /**
   * Issue 18: a store holding `from` events received before syncs from `url` until `to` reached
   * it (the events another store wrote); estimate()'s usage as storageSeed's, and how many of the
   * records it holds have no `$sig` (size-worker.ts).
   */
  storageReceive(db: string, url: string, from: number, to: number): Promise<ReceiveOutcome>;
  /** `count` events of the demo's mix appended to a new `db`, signed; each stream and its length. */
  streamReadSeed(db: string, count: number, seed: number): Promise<[string, number][]>;
  /** Each of `streams` read each way stream-read-worker.ts lists, `rounds` times: ms per read. */
  streamReadProbe(db: string, streams: string[], rounds: number): Promise<StreamReadProbe>;
  /**
   * Issue 18, compact against plain (compact-worker.ts): `count` events of the demo's mix
   * appended to a fresh `db`, 100 an appendMany, signed; ms of the appends, then of the signing.
   */
  compactAppends(
    db: string,
    plain: boolean,
    count: number,
    seed: number,
  ): Promise<{ appendMs: number; signMs: number }>;
  /** A fresh open of `db` folding its whole log into a projection without snapshots. */
  compactReplay(db: string, plain: boolean): Promise<{ ms: number; count: number }>;
  /** A fresh `db` catching up `count` events from the sync server at `url`: ms. */
  compactCatchUp(db: string, plain: boolean, url: string, count: number): Promise<number>;
  compactDrop(db: string): Promise<void>;
  /** Issue 16 (security-worker.ts): a fresh `db`, signing or not, catching up `count`: ms. */
  securityCatchUp(db: string, signing: boolean, url: string, count: number): Promise<number>;
  /**
   * Issue 16, signed against plain (security-worker.ts): `count` events of the demo's mix in a
   * fresh `db`, signed unless `signing` is false, then pushed to the server at `url`: ms of the
   * push.
   */
  securityUpload(
    db: string,
    signing: boolean,
    url: string,
    count: number,
    seed: number,
  ): Promise<number>;
  /** Issue 6: a stream of `edits` one-character Yjs updates, one event each. */
  yjsSeed(db: string, edits: number): Promise<void>;
  /** Appends a snapshot through bindYDoc's own path (one more edit after a full replay). */
  yjsSnapshot(db: string): Promise<void>;
  /** Opens the store and binds the document: ms to `ready`, and the text length. */
  yjsOpen(db: string): Promise<{ ms: number; length: number }>;
  /** JSON bytes of the stream's stored events. */
  yjsBytes(db: string): Promise<number>;
  /** y-indexeddb writing the same edits through its own persistence. */
  yIndexedDbSeed(db: string, edits: number): Promise<void>;
  yIndexedDbOpen(db: string): Promise<{ ms: number; length: number }>;
  /** Bytes of y-indexeddb's stored update records. */
  yIndexedDbBytes(db: string): Promise<number>;
}

export const YJS_STREAM = 'doc';
const TEXT = 'The quick brown fox jumps over the lazy dog. ';

/** The character typed by edit `i` (the same text for Chronicle and y-indexeddb). */
export const typed = (i: number): string => TEXT[i % TEXT.length]!;
