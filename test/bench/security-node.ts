/**
 * The cost of end-to-end encryption (issue 16), in Node, each figure beside the same workload
 * without it in the same run (medians of RUNS runs):
 * (a) appends: 20,000 events in calls of 100, and 1,000 awaited single appends, on memory and on
 *     fake-indexeddb storage (every append sealed with AES-256-GCM through WebCrypto);
 * (b) replay: a projection folded from the start over 20,000 stored events after a reopen (every
 *     event opened);
 * (c) catch-up: two stores holding 50,000 events each connect through a real sync server on
 *     127.0.0.1 (SQLite file) until both hold all 100,000: time, and the bytes on the wire each
 *     way (UTF-8 length of every message text).
 * Signing (part 3 of the issue) is not built yet: no figure is given for it.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import {
  defineProjection,
  type EventStore,
  generateEncryptionKey,
  indexedDbStorage,
  type LooseEvents,
  memoryStorage,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import { type Card, sampleEvent } from './browser-shared.ts';
import { type BenchResult, median, result } from './results.ts';
import {
  type ByteCount,
  counting,
  headReader,
  SPACE,
  startServer,
  waitUntil,
  wsTransport,
} from './sync-server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCHED = 20_000;
const SINGLE = 1_000;
const REPLAY = 20_000;
const CATCHUP = Number(process.env.BENCH_SYNC_EVENTS ?? 50_000);
const KEY = generateEncryptionKey();

type Events = LooseEvents<Card>;
const columns = defineProjection<Record<string, number>, Events>({
  name: 'columns',
  version: 1,
  snapshotEvery: 0,
  initial: () => ({}),
  apply: (s, e) => {
    s[e.data.column] = (s[e.data.column] ?? 0) + 1;
    return s;
  },
});

let databases = 0;
const storageOf = (idb: boolean): StorageAdapter =>
  idb
    ? indexedDbStorage(`security-bench-${++databases}`, { indexedDB: new IDBFactory() })
    : memoryStorage();

const NAMES = generateEncryptionKey();

function open(name: string, storage: StorageAdapter, sealed: boolean, hidden = false) {
  return openStore<Events>({
    name,
    storage,
    projections: [columns],
    ...(sealed && { encryption: { key: KEY, ...(hidden && { names: NAMES }) } }),
  });
}

async function appendRate(
  sealed: boolean,
  idb: boolean,
  batch: number,
  hidden = false,
): Promise<number> {
  const count = batch === 1 ? SINGLE : BATCHED;
  const store = await open('appends', storageOf(idb), sealed, hidden);
  const start = performance.now();
  for (let i = 0; i < count; i += batch) {
    const events = [];
    for (let j = i; j < Math.min(count, i + batch); j++) events.push(sampleEvent(j));
    await store.append(`stream-${(i / batch) % 50}`, events);
  }
  const rate = (count * 1000) / (performance.now() - start);
  await store.close();
  return rate;
}

async function fill(store: EventStore<Events>, offset: number, count: number, name: string) {
  for (let i = 0; i < count; i += 1000) {
    const events = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) events.push(sampleEvent(offset + j));
    await store.append(`stream-${name}-${i / 1000}`, events);
  }
}

async function replayMs(sealed: boolean): Promise<number> {
  const storage = memoryStorage();
  const filling = await open('replay', storage, sealed);
  await fill(filling, 0, REPLAY, 'r');
  await filling.close();
  const store = await open('replay', storage, sealed);
  const start = performance.now();
  await store.state(columns);
  const ms = performance.now() - start;
  await store.close();
  return ms;
}

async function catchUp(sealed: boolean): Promise<{ ms: number; a: ByteCount; b: ByteCount }> {
  const storages = [memoryStorage(), memoryStorage()];
  const stores = await Promise.all(storages.map((s, i) => open(`c${i}`, s, sealed)));
  await fill(stores[0]!, 0, CATCHUP, 'a');
  await fill(stores[1]!, CATCHUP, CATCHUP, 'b');
  const heads = await Promise.all(storages.map((s) => headReader(s)));
  const t = await startServer();
  const bytes = [
    { sent: 0, received: 0 },
    { sent: 0, received: 0 },
  ];
  try {
    // The StreamKey events of an encrypted store count: one a stream (100 streams a side).
    const total = (await heads[0]!.head()) + (await heads[1]!.head());
    const start = performance.now();
    const links = stores.map((s, i) =>
      s.sync.connect(counting(wsTransport(t, `user-${i}`), bytes[i]!)),
    );
    await waitUntil(
      async () => (await heads[0]!.head()) >= total && (await heads[1]!.head()) >= total,
      'the catch-up',
      180_000,
    );
    const ms = performance.now() - start;
    for (const link of links) await link.close();
    return { ms, a: bytes[0]!, b: bytes[1]! };
  } finally {
    for (const h of heads) await h.close();
    for (const s of stores) await s.close();
    await t.stop();
    void SPACE;
  }
}

export async function runSecurityNodeBenches(): Promise<BenchResult[]> {
  const runs = {
    batched: { plain: [] as number[], sealed: [] as number[] },
    hidden: { plain: [] as number[], sealed: [] as number[] },
    batchedIdb: { plain: [] as number[], sealed: [] as number[] },
    single: { plain: [] as number[], sealed: [] as number[] },
    singleIdb: { plain: [] as number[], sealed: [] as number[] },
    replay: { plain: [] as number[], sealed: [] as number[] },
    catchUp: { plain: [] as number[], sealed: [] as number[] },
    bytes: { plain: [] as number[], sealed: [] as number[] },
  };
  for (let run = 0; run < RUNS; run++) {
    for (const sealed of [false, true]) {
      const side = sealed ? 'sealed' : 'plain';
      runs.batched[side].push(await appendRate(sealed, false, 100));
      // Names hidden beside names in clear, both encrypted.
      runs.hidden[side].push(await appendRate(true, false, 100, sealed));
      runs.batchedIdb[side].push(await appendRate(sealed, true, 100));
      runs.single[side].push(await appendRate(sealed, false, 1));
      runs.singleIdb[side].push(await appendRate(sealed, true, 1));
      runs.replay[side].push(await replayMs(sealed));
      const c = await catchUp(sealed);
      runs.catchUp[side].push(c.ms);
      runs.bytes[side].push(c.a.sent + c.a.received + c.b.sent + c.b.received);
      console.error(
        `  security run ${run + 1} ${side}: catch-up ${Math.round(c.ms)} ms, ${Math.round(runs.bytes[side].at(-1)! / 1e6)} MB`,
      );
    }
  }
  const pair = (
    name: string,
    unit: string,
    r: { plain: number[]; sealed: number[] },
    note?: string,
  ) => result(name, unit, median(r.sealed), median(r.plain), note);
  return [
    pair(
      `security/encrypted appends ${BATCHED}, 100 per call, memory (plain = baseline)`,
      'events/s',
      runs.batched,
    ),
    pair(
      `security/encrypted appends ${BATCHED}, 100 per call, memory, names and types hidden (encrypted, names in clear = baseline)`,
      'events/s',
      runs.hidden,
    ),
    pair(
      `security/encrypted appends ${BATCHED}, 100 per call, fake-indexeddb (plain = baseline)`,
      'events/s',
      runs.batchedIdb,
    ),
    pair(
      `security/encrypted single appends (${SINGLE}), memory (plain = baseline)`,
      'events/s',
      runs.single,
    ),
    pair(
      `security/encrypted single appends (${SINGLE}), fake-indexeddb (plain = baseline)`,
      'events/s',
      runs.singleIdb,
    ),
    pair(
      `security/encrypted replay of ${REPLAY} events (plain = baseline)`,
      'ms',
      runs.replay,
      'reopen, then one projection folded from the start',
    ),
    pair(
      `security/encrypted catch-up 2 × ${CATCHUP} events through the server (plain = baseline)`,
      'ms',
      runs.catchUp,
      'SQLite server on 127.0.0.1; until both stores hold every event',
    ),
    pair(
      `security/encrypted catch-up bytes on the wire, both clients both ways (plain = baseline)`,
      'bytes',
      runs.bytes,
    ),
  ];
}
