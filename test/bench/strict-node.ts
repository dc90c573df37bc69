/**
 * Strict streams (issue 19) in Node, against a real sync server on 127.0.0.1 (SQLite file):
 * (a) local cost: 1,000 awaited appends to one strict stream beside the same appends to a
 *     plain stream, no sync, on memory storage and on fake-indexeddb (the strict append reads the
 *     stream's version and last events first);
 * (b) acceptance round trip: one store connected to the server appends one event at a time and
 *     waits until nothing is pending (plain) or nothing is tentative either (strict): the
 *     median over ROUND_TRIPS appends, strict beside plain in the same run;
 * (c) contention: two stores on line execute deposits on one strict account at once, each
 *     awaiting its own, until all are accepted: commands/s, and how many of them the server
 *     rejected first and the store rebased (the rebase rate).
 * Medians of RUNS runs. Every wait has a deadline.
 */
// idb needs the IDB classes as globals; in Node they come from fake-indexeddb.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import WebSocket from 'ws';
import {
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import { account } from '../store/fixtures/account.ts';
import { type BenchResult, median, result } from './results.ts';
import { type BenchServer, startServer, waitUntil } from './sync-server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LOCAL_APPENDS = 1000;
const ROUND_TRIPS = Number(process.env.BENCH_STRICT_ROUND_TRIPS ?? 200);
const CONTENDED = Number(process.env.BENCH_STRICT_COMMANDS ?? 200);

async function openStrict(
  name: string,
  storage: StorageAdapter = memoryStorage(),
): Promise<EventStore> {
  return openStore({
    name,
    storage,
    aggregates: [account],
    strictStreams: ['strict-*', 'account-*'],
    syncOptions: { WebSocket: WebSocket as never },
  });
}

let databases = 0;

async function localRate(stream: string, idb: boolean): Promise<number> {
  const storage = idb
    ? indexedDbStorage(`strict-bench-${++databases}`, { indexedDB: new IDBFactory() })
    : memoryStorage();
  const store = await openStrict(`local-${stream}`, storage);
  const start = performance.now();
  for (let i = 0; i < LOCAL_APPENDS; i++) {
    await store.append(stream, { type: 'Added', data: { i } });
  }
  const rate = LOCAL_APPENDS / ((performance.now() - start) / 1000);
  await store.close();
  return rate;
}

async function roundTrip(t: BenchServer, stream: string, sub: string): Promise<number> {
  const store = await openStrict(`rt-${sub}`);
  const link = store.sync.connect({ url: t.server.url, token: t.token(sub) });
  await waitUntil(() => store.sync.status().state === 'idle', 'idle', 10_000);
  const times: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const start = performance.now();
    await store.append(stream, { type: 'Added', data: { i } });
    await waitUntil(
      () => {
        const s = store.sync.status();
        return s.pending === 0 && s.tentative === undefined;
      },
      'acknowledged',
      10_000,
      0,
    );
    times.push(performance.now() - start);
  }
  await link.close();
  await store.close();
  return median(times);
}

async function contention(t: BenchServer, run: number): Promise<{ rate: number; rebased: number }> {
  const stores = await Promise.all([openStrict(`c-a-${run}`), openStrict(`c-b-${run}`)]);
  const links = stores.map((s, i) =>
    s.sync.connect({ url: t.server.url, token: t.token(`c${i}`) }),
  );
  const stream = `account-${run}`;
  const start = performance.now();
  await Promise.all(
    stores.map(async (store) => {
      for (let i = 0; i < CONTENDED; i++) {
        await store.execute(account, stream, 'deposit', { cents: 1 });
      }
    }),
  );
  await waitUntil(
    async () =>
      stores.every((s) => {
        const status = s.sync.status();
        return (
          status.pending === 0 &&
          status.tentative === undefined &&
          !(status.rejected ?? []).some((r) => r.command?.outcome === 'pending')
        );
      }) &&
      (await stores[0]!.read({ stream })).length === 2 * CONTENDED &&
      (await stores[1]!.read({ stream })).length === 2 * CONTENDED,
    'every deposit accepted',
    120_000,
    5,
  );
  const seconds = (performance.now() - start) / 1000;
  const rebased = stores.reduce((n, s) => n + (s.sync.status().rejected?.length ?? 0), 0);
  for (const link of links) await link.close();
  for (const store of stores) await store.close();
  return { rate: (2 * CONTENDED) / seconds, rebased };
}

export async function runStrictNodeBenches(): Promise<BenchResult[]> {
  const local = { plain: [] as number[], strict: [] as number[] };
  const localIdb = { plain: [] as number[], strict: [] as number[] };
  const trip = { plain: [] as number[], strict: [] as number[] };
  const contended = { rate: [] as number[], rebased: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    local.plain.push(await localRate(`plain-${run}`, false));
    local.strict.push(await localRate(`strict-${run}`, false));
    localIdb.plain.push(await localRate(`plain-${run}`, true));
    localIdb.strict.push(await localRate(`strict-${run}`, true));
    const t = await startServer(`strict-bench-${run}`);
    try {
      trip.plain.push(await roundTrip(t, `plain-${run}`, `p${run}`));
      trip.strict.push(await roundTrip(t, `strict-${run}`, `s${run}`));
      const c = await contention(t, run);
      contended.rate.push(c.rate);
      contended.rebased.push(c.rebased);
    } finally {
      await t.stop();
    }
  }
  const rebasedShare = median(contended.rebased) / (2 * CONTENDED);
  return [
    result(
      `${LOCAL_APPENDS} awaited appends, strict stream (plain = baseline), memory`,
      'appends/s',
      median(local.strict),
      median(local.plain),
    ),
    result(
      `${LOCAL_APPENDS} awaited appends, strict stream (plain = baseline), fake-indexeddb`,
      'appends/s',
      median(localIdb.strict),
      median(localIdb.plain),
    ),
    result(
      'append until the server acknowledged it, strict (plain = baseline)',
      'ms (median)',
      median(trip.strict),
      median(trip.plain),
      `${ROUND_TRIPS} appends one at a time, SQLite server on 127.0.0.1`,
    ),
    result(
      `two devices, ${CONTENDED} deposits each on one strict account at once`,
      'commands/s',
      median(contended.rate),
      undefined,
      `${(100 * rebasedShare).toFixed(0)}% rejected first and rebased (median ${median(contended.rebased)} of ${2 * CONTENDED})`,
    ),
  ];
}
