/**
 * The cost of end-to-end encryption and of signing (issue 16), in Node. Every figure is given for
 * four variants side by side in the same run (medians of RUNS runs), each as a ratio to plain:
 * - plain: `signing: false`, no encryption (the baseline);
 * - encrypted: `signing: false`, every event sealed with AES-256-GCM through WebCrypto;
 * - signed: signing on (the default), no encryption;
 * - encrypted and signed: both.
 * An untimed pass of the appends and the replay for every variant comes first (the first appends
 * of a process run at half speed or less), and each run starts with another variant.
 * A signed store signs its own events (Ed25519 through WebCrypto, chained) right before they
 * leave it, when sync reads them (store/signing.ts), not when they are appended: its append figures
 * hold no signing. "Append + push" gives it honestly, for all four variants alike: the appends,
 * then a first connection to a sync server until the server holds every event, timed from the
 * first append (the server already listening). For the signed variants that includes the signing
 * pass (and writing the signed copies back) and the server verifying every event.
 * The figures:
 * (a) appends: 20,000 events in calls of 100, and 1,000 awaited single appends, on memory and on
 *     fake-indexeddb storage; beside them the encrypted appends with stream names and types
 *     hidden (signing off; encrypted with names in clear is that one's baseline);
 * (b) append + push: the 20,000 appends in calls of 100 on memory and on fake-indexeddb, then
 *     pushed to a real sync server on 127.0.0.1 (SQLite file);
 * (c) replay: a projection folded from the start over 20,000 stored events after a reopen (every
 *     event opened when encrypted). Signing does not change the fold; the signed variants'
 *     events are pushed to a server once before the reopen (untimed), so that they are stored
 *     signed, signatures in meta, as a replica's shared events are;
 * (d) catch-up: two stores holding 50,000 events each connect through a real sync server on
 *     127.0.0.1 (SQLite file), in a process of its own as deployed (as sync-node.ts runs it;
 *     BENCH_SECURITY_SERVER=inprocess runs it on the stores' thread, as this file did before),
 *     until both hold all 100,000: time, and the bytes on the wire each
 *     way (UTF-8 length of every message text). The signed variants run against a server with
 *     its default (requireSignatures: it verifies every event; so does each store the other's);
 *     plain and encrypted ones against one started with requireSignatures false, which takes
 *     their unsigned events. The signed variants connect right after their last append, before
 *     the background signer (store/signing.ts invariant 5) had a quiet moment: they sign on
 *     the reconnect, the worst case;
 * (e) the same catch-up for the signed variants once their background signer went idle before
 *     the reconnect (a device that appended offline and paused): the events leave signed; and
 *     the CPU time each side spent on it, the server's process and this one (the two stores),
 *     which says where its time goes on a machine whose two cores they share;
 * (f) appends, then signed: the batched appends on memory until the background signer is idle,
 *     what signing costs a device in all (plain: the appends alone).
 */
import 'fake-indexeddb/auto';
import { fileURLToPath } from 'node:url';
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
import type { Signer } from '../../src/store/signing.ts';
import { syncFactory } from '../../src/sync/controller.ts';
import { type Card, sampleEvent } from './browser-shared.ts';
import { type BenchResult, median, result } from './results.ts';
import {
  type BenchServer,
  type ByteCount,
  counting,
  headReader,
  SPACE,
  serveAsServerChild,
  startServer as startBenchServer,
  startChildServer,
  waitUntil,
  wsTransport,
} from './sync-server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCHED = 20_000;
const SINGLE = 1_000;
const REPLAY = 20_000;
const CATCHUP = Number(process.env.BENCH_SYNC_EVENTS ?? 50_000);
/** BENCH_SECURITY_SERVER=inprocess: (d) and (e) with the server on the stores' thread (before). */
const IN_PROCESS_SERVER = process.env.BENCH_SECURITY_SERVER === 'inprocess';
/** The figures to run: BENCH_SECURITY_PARTS=catchup runs (d) and (e) alone (all by default; (f) is in appends). */
const PARTS = process.env.BENCH_SECURITY_PARTS ?? 'appends,push,replay,catchup';
const part = (name: 'appends' | 'push' | 'replay' | 'catchup') => PARTS.split(',').includes(name);
const KEY = generateEncryptionKey();

const VARIANTS = ['plain', 'encrypted', 'signed', 'both'] as const;
type Variant = (typeof VARIANTS)[number];
/** Each variant but plain, as named in the results. */
const LABELS = { encrypted: 'encrypted', signed: 'signed', both: 'encrypted and signed' } as const;
const sealedIn = (v: Variant) => v === 'encrypted' || v === 'both';
const signedIn = (v: Variant) => v === 'signed' || v === 'both';

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

/** Each open store's signer, to wait for its background passes (signed variants). */
const signers = new WeakMap<EventStore<Events>, Signer>();

async function open(name: string, storage: StorageAdapter, variant: Variant, hidden = false) {
  let signer: Signer | undefined;
  const store = await openStore<Events>({
    name,
    storage,
    syncFactory: (internals) => {
      signer = internals.signer;
      return syncFactory()(internals);
    },
    projections: [columns],
    ...(sealedIn(variant) && { encryption: { key: KEY, ...(hidden && { names: NAMES }) } }),
    ...(!signedIn(variant) && { signing: false }),
  });
  if (signer !== undefined) signers.set(store, signer);
  return store;
}

/** Until the store's background signer has nothing left to sign (signed variants). */
async function signed(store: EventStore<Events>): Promise<void> {
  await signers.get(store)?.idle();
}

/** startServer (sync-server.ts), verifying signatures when `signed`, else taking unsigned events. */
function startServer(signed: boolean): Promise<BenchServer> {
  return startBenchServer(SPACE, { requireSignatures: signed });
}

/**
 * The same server in a child process (this file, run with BENCH_SECURITY_SERVER_CHILD set), as
 * it is deployed and as the sync benchmark's catch-up runs it (sync-node.ts).
 */
function startServerChild(signed: boolean): Promise<BenchServer> {
  return startChildServer(
    fileURLToPath(import.meta.url),
    { BENCH_SECURITY_SERVER_CHILD: signed ? 'signed' : 'unsigned' },
    'the security server child',
  );
}

const childRole = process.env.BENCH_SECURITY_SERVER_CHILD;
if (childRole !== undefined) await serveAsServerChild(await startServer(childRole === 'signed'));

async function appendAll(store: EventStore<Events>, count: number, batch: number) {
  for (let i = 0; i < count; i += batch) {
    const events = [];
    for (let j = i; j < Math.min(count, i + batch); j++) events.push(sampleEvent(j));
    await store.append(`stream-${(i / batch) % 50}`, events);
  }
}

async function appendRate(
  variant: Variant,
  idb: boolean,
  batch: number,
  hidden = false,
  untilSigned = false,
): Promise<number> {
  const count = batch === 1 ? SINGLE : BATCHED;
  const store = await open('appends', storageOf(idb), variant, hidden);
  const start = performance.now();
  await appendAll(store, count, batch);
  if (untilSigned) await signed(store);
  const rate = (count * 1000) / (performance.now() - start);
  await store.close();
  return rate;
}

/**
 * Connects `store` to `t` and waits until the server holds every event of it (with the sync
 * statuses in the error when it never does), then closes the connection.
 */
async function push(store: EventStore<Events>, t: BenchServer, what: string): Promise<void> {
  const space = await t.storage.openSpace(SPACE);
  const { head } = await store.readSince(0, { limit: 0 });
  const link = store.sync.connect(wsTransport(t, 'pusher'));
  try {
    await waitUntil(async () => (await space.headPos()) >= head, what, 180_000);
  } catch (error) {
    console.error(
      `  ${what}: server head ${await space.headPos()} of ${head}; client status`,
      JSON.stringify(store.sync.status()),
    );
    throw error;
  } finally {
    await link.close();
  }
}

/** BATCHED appends in calls of 100, then pushed to a server until it holds them all. */
async function appendPushRate(variant: Variant, idb: boolean): Promise<number> {
  const store = await open('push', storageOf(idb), variant);
  const t = await startServer(signedIn(variant));
  try {
    const start = performance.now();
    await appendAll(store, BATCHED, 100);
    await push(store, t, `the push (${variant})`);
    return (BATCHED * 1000) / (performance.now() - start);
  } finally {
    await store.close();
    await t.stop();
  }
}

async function fill(store: EventStore<Events>, offset: number, count: number, name: string) {
  for (let i = 0; i < count; i += 1000) {
    const events = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) events.push(sampleEvent(offset + j));
    await store.append(`stream-${name}-${i / 1000}`, events);
  }
}

async function replayMs(variant: Variant): Promise<number> {
  const storage = memoryStorage();
  const filling = await open('replay', storage, variant);
  await fill(filling, 0, REPLAY, 'r');
  if (signedIn(variant)) {
    // Stored signed, as shared events are: signing happens as they leave.
    const t = await startServer(true);
    try {
      await push(filling, t, `the push before the replay (${variant})`);
    } finally {
      await t.stop();
    }
  }
  await filling.close();
  const store = await open('replay', storage, variant);
  const start = performance.now();
  await store.state(columns);
  const ms = performance.now() - start;
  await store.close();
  return ms;
}

/** A catch-up's time, bytes, and the CPU each side spent on it (none: server in process). */
interface CatchUpRun {
  ms: number;
  a: ByteCount;
  b: ByteCount;
  cpuMs?: { server: number; stores: number };
}

async function catchUp(variant: Variant, signedBefore = false): Promise<CatchUpRun> {
  const storages = [memoryStorage(), memoryStorage()];
  const stores = await Promise.all(storages.map((s, i) => open(`c${i}`, s, variant)));
  await fill(stores[0]!, 0, CATCHUP, 'a');
  await fill(stores[1]!, CATCHUP, CATCHUP, 'b');
  if (signedBefore) for (const store of stores) await signed(store);
  const heads = await Promise.all(storages.map((s) => headReader(s)));
  const t = await (IN_PROCESS_SERVER ? startServer : startServerChild)(signedIn(variant));
  const bytes = [
    { sent: 0, received: 0 },
    { sent: 0, received: 0 },
  ];
  try {
    // The StreamKey events of an encrypted store count: one a stream (100 streams a side).
    const total = (await heads[0]!.head()) + (await heads[1]!.head());
    const serverCpu = await t.cpuMs?.();
    const storesCpu = process.cpuUsage();
    const start = performance.now();
    const links = stores.map((s, i) =>
      s.sync.connect(counting(wsTransport(t, `user-${i}`), bytes[i]!)),
    );
    try {
      await waitUntil(
        async () => (await heads[0]!.head()) >= total && (await heads[1]!.head()) >= total,
        `the catch-up (${variant})`,
        180_000,
      );
    } catch (error) {
      const space = await t.storage.openSpace(SPACE);
      console.error(
        `  the catch-up (${variant}): server head ${await space.headPos()}, client heads ${await heads[0]!.head()} and ${await heads[1]!.head()} of ${total}; client statuses`,
        JSON.stringify(stores.map((s) => s.sync.status())),
      );
      throw error;
    }
    const ms = performance.now() - start;
    const spent = process.cpuUsage(storesCpu);
    // With the server in this process, its CPU is in the stores' figure too: none given.
    const cpuMs =
      serverCpu === undefined
        ? undefined
        : { server: (await t.cpuMs!()) - serverCpu, stores: (spent.user + spent.system) / 1000 };
    for (const link of links) await link.close();
    return { ms, a: bytes[0]!, b: bytes[1]!, ...(cpuMs && { cpuMs }) };
  } finally {
    for (const h of heads) await h.close();
    for (const s of stores) await s.close();
    await t.stop();
  }
}

type Runs = Record<Variant, number[]>;
const runsOf = (): Runs => ({ plain: [], encrypted: [], signed: [], both: [] });

/**
 * BENCH_SECURITY_ONLY=appends: only (a)'s batched appends, plain and encrypted, on memory and
 * fake-indexeddb (BENCH_RUNS pairs, alternating which goes first): a minute where the whole
 * suite takes a quarter of an hour, for work on the sealing path (core/sealing.ts).
 */
async function batchedAppendsOnly(): Promise<BenchResult[]> {
  const pair = ['plain', 'encrypted'] as const;
  const mem = runsOf();
  const idb = runsOf();
  for (const v of pair) for (const onIdb of [false, true]) await appendRate(v, onIdb, 100);
  for (let run = 0; run < RUNS; run++) {
    for (const v of run % 2 === 0 ? pair : [...pair].reverse()) {
      mem[v].push(await appendRate(v, false, 100));
      idb[v].push(await appendRate(v, true, 100));
    }
  }
  const note = 'signing off; BENCH_SECURITY_ONLY=appends';
  return [
    result(
      `security/encrypted appends ${BATCHED}, 100 per call, memory (plain = baseline)`,
      'events/s',
      median(mem.encrypted),
      median(mem.plain),
      note,
    ),
    result(
      `security/encrypted appends ${BATCHED}, 100 per call, fake-indexeddb (plain = baseline)`,
      'events/s',
      median(idb.encrypted),
      median(idb.plain),
      note,
    ),
  ];
}

export async function runSecurityNodeBenches(): Promise<BenchResult[]> {
  if (process.env.BENCH_SECURITY_ONLY === 'appends') return batchedAppendsOnly();
  const runs = {
    batched: runsOf(),
    batchedIdb: runsOf(),
    single: runsOf(),
    singleIdb: runsOf(),
    push: runsOf(),
    pushIdb: runsOf(),
    replay: runsOf(),
    catchUp: runsOf(),
    catchUpSigned: runsOf(),
    catchUpServerCpu: runsOf(),
    catchUpStoresCpu: runsOf(),
    bytes: runsOf(),
    appendsSigned: runsOf(),
  };
  // Untimed: the first few thousand appends of a process run at half speed or less (JIT), which
  // would count against whichever variant went first.
  for (const v of VARIANTS) {
    if (part('appends')) {
      for (const idb of [false, true])
        for (const batch of [100, 1]) await appendRate(v, idb, batch);
    }
    if (part('replay')) await replayMs(v);
  }
  // Names hidden beside names in clear, both encrypted, signing off.
  const hidden = { clear: [] as number[], hidden: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    if (part('appends')) {
      hidden.clear.push(await appendRate('encrypted', false, 100));
      hidden.hidden.push(await appendRate('encrypted', false, 100, true));
    }
    // Each run starts with another variant, so that none is always measured first.
    for (const v of VARIANTS.map((_, i) => VARIANTS[(i + run) % VARIANTS.length]!)) {
      if (part('appends')) {
        runs.batched[v].push(await appendRate(v, false, 100));
        runs.batchedIdb[v].push(await appendRate(v, true, 100));
        runs.single[v].push(await appendRate(v, false, 1));
        runs.singleIdb[v].push(await appendRate(v, true, 1));
        runs.appendsSigned[v].push(await appendRate(v, false, 100, false, true));
      }
      if (part('push')) {
        runs.push[v].push(await appendPushRate(v, false));
        runs.pushIdb[v].push(await appendPushRate(v, true));
      }
      if (part('replay')) runs.replay[v].push(await replayMs(v));
      if (part('catchup')) {
        const c = await catchUp(v);
        runs.catchUp[v].push(c.ms);
        runs.bytes[v].push(c.a.sent + c.a.received + c.b.sent + c.b.received);
        // Plain and encrypted have nothing to sign: their catch-up is the same one again.
        const after = signedIn(v) ? await catchUp(v, true) : c;
        runs.catchUpSigned[v].push(after.ms);
        if (after.cpuMs !== undefined) {
          runs.catchUpServerCpu[v].push(after.cpuMs.server);
          runs.catchUpStoresCpu[v].push(after.cpuMs.stores);
        }
        console.error(
          `  security run ${run + 1} ${v}: catch-up ${Math.round(c.ms)} ms (signed before: ${Math.round(runs.catchUpSigned[v].at(-1)!)} ms), ${Math.round(runs.bytes[v].at(-1)! / 1e6)} MB`,
        );
      }
      if (part('push')) {
        console.error(
          `  security run ${run + 1} ${v}: append + push ${Math.round(runs.push[v].at(-1)!)} events/s`,
        );
      }
    }
  }
  /**
   * One result a variant but plain, plain the baseline (none for a part not run). `paired`: the
   * note also gives the median of each run's ratio to plain's in the same run, which a noisy
   * machine moves less than the ratio of the medians (both are quoted).
   */
  const vsPlain = (rest: string, unit: string, r: Runs, note?: string, paired = false) =>
    (r.plain.length === 0 ? [] : (['encrypted', 'signed', 'both'] as const)).map((v) => {
      const ratios = r[v].map((x, i) => x / r.plain[i]!);
      const pairs = `median of the per-run ratios ${median(ratios).toFixed(2)}`;
      return result(
        `security/${LABELS[v]} ${rest} (plain = baseline)`,
        unit,
        median(r[v]),
        median(r.plain),
        paired ? (note === undefined ? pairs : `${note}; ${pairs}`) : note,
      );
    });
  const appendsNote = 'signing off for plain; a store signs as events leave: see append + push';
  return [
    ...vsPlain(`appends ${BATCHED}, 100 per call, memory`, 'events/s', runs.batched, appendsNote),
    ...(hidden.clear.length === 0
      ? []
      : [
          result(
            `security/encrypted appends ${BATCHED}, 100 per call, memory, names and types hidden (encrypted, names in clear = baseline)`,
            'events/s',
            median(hidden.hidden),
            median(hidden.clear),
            'signing off',
          ),
        ]),
    ...vsPlain(
      `appends ${BATCHED}, 100 per call, fake-indexeddb`,
      'events/s',
      runs.batchedIdb,
      appendsNote,
    ),
    ...vsPlain(`single appends (${SINGLE}), memory`, 'events/s', runs.single, appendsNote),
    ...vsPlain(
      `single appends (${SINGLE}), fake-indexeddb`,
      'events/s',
      runs.singleIdb,
      appendsNote,
    ),
    ...vsPlain(
      `append + push ${BATCHED}, 100 per call, memory`,
      'events/s',
      runs.push,
      'appends, then pushed until the SQLite server on 127.0.0.1 holds them (signed: signing and the server verifying)',
    ),
    ...vsPlain(
      `append + push ${BATCHED}, 100 per call, fake-indexeddb`,
      'events/s',
      runs.pushIdb,
      'appends, then pushed until the SQLite server on 127.0.0.1 holds them (signed: signing and the server verifying)',
    ),
    ...vsPlain(
      `replay of ${REPLAY} events`,
      'ms',
      runs.replay,
      'reopen, then one projection folded from the start (signed: events stored signed)',
    ),
    ...vsPlain(
      `catch-up 2 × ${CATCHUP} events through the server`,
      'ms',
      runs.catchUp,
      'SQLite server on 127.0.0.1; until both stores hold every event (signed: verified by the server and each store)',
      true,
    ),
    ...vsPlain(`catch-up bytes on the wire, both clients both ways`, 'bytes', runs.bytes),
    ...vsPlain(
      `catch-up 2 × ${CATCHUP} events through the server, signed before the reconnect`,
      'ms',
      runs.catchUpSigned,
      'as the catch-up, once the background signer went idle after the appends (signed variants; the others are their catch-up)',
      true,
    ).filter((r) => !r.name.startsWith('security/encrypted catch-up')),
    // Where that catch-up's time goes: the server (a process of its own) and the two stores
    // (this process) each spend about a core on it, on a machine of two.
    ...vsPlain(
      `catch-up 2 × ${CATCHUP}, signed before the reconnect: the server's CPU`,
      'ms',
      runs.catchUpServerCpu,
      "the server process's CPU time during the catch-up (not given with BENCH_SECURITY_SERVER=inprocess)",
      true,
    ).filter((r) => !r.name.startsWith('security/encrypted catch-up')),
    ...vsPlain(
      `catch-up 2 × ${CATCHUP}, signed before the reconnect: the stores' CPU`,
      'ms',
      runs.catchUpStoresCpu,
      "this process's CPU time during the catch-up: the two stores, and the bench's polling",
      true,
    ).filter((r) => !r.name.startsWith('security/encrypted catch-up')),
    ...vsPlain(
      `appends ${BATCHED}, 100 per call, memory, then signed in the background`,
      'events/s',
      runs.appendsSigned,
      'timed until the background signer is idle (plain and encrypted: the appends alone)',
    ).filter((r) => !r.name.startsWith('security/encrypted appends')),
  ];
}
