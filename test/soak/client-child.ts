/**
 * One soak client: a store (memoryStorage or IndexedDB on fake-indexeddb) in a child process of
 * its own, syncing through the fault proxy and appending at random from its incarnation's seed.
 * Forked by soak.ts with SOAK_CLIENT set to a JSON ClientConfig.
 *
 * fake-indexeddb keeps its data in this process's memory only, so a SIGKILLed client comes back
 * as a new device with no data ("site data cleared", RELIABILITY 11): a new replica id, and it
 * must get back from the server every event the server acknowledged.
 *
 * It writes a journal (one JSON line per fact, appended with a synchronous write so that a
 * SIGKILL loses nothing already written): `start`, each resolved append (`a`), each batch of
 * appends it saw acknowledged (`k`), each refused append (`r`). It answers the parent:
 * `quiesce` (stop appending), `settled` (1 when idle with nothing pending), `head` (events held),
 * `restart` (close and reopen the store), `dump` (writes its log, projection and fold to the
 * dump file; asked until it answers 1).
 *
 * Invariants:
 * 1. An append counts as acknowledged only once the sync status said pending 0 after it resolved,
 *    and said it again ACK_RECHECK_MS later (status() reads the store's own-seq count, which
 *    catches up with a resolved append asynchronously: the recheck rules out a stale zero), and
 *    never from a store opened less than BLIND_AFTER_OPEN_MS ago (its first status guesses 0).
 *    A wrong claim would show as a loss at the end (a false alarm), never hide one.
 * 2. Every loop is bounded by the quiesce command or the parent's disconnect.
 */
// Installs IndexedDB's globals (in memory) for the indexeddb clients; memory clients ignore them.
import 'fake-indexeddb/auto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  defineProjection,
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  openStore,
} from '../../src/index.ts';
import { seededRandom } from '../../src/sync/transports/memory.ts';
import { type BenchChild, forkBenchChild, serveParent } from '../bench/bench-child.ts';
import { type ChainState, canonicalHash, foldChain, type JournalLine } from './journal.ts';

export interface ClientConfig {
  url: string;
  token: string;
  storage: 'memory' | 'indexeddb';
  name: string;
  seed: number;
  clockOffsetMs: number;
  appendEveryMs: number;
  sharedIds: boolean;
  oversized: boolean;
  backoffMaxMs: number;
  journal: string;
  dump: string;
}

const ACK_RECHECK_MS = 300;
const BLIND_AFTER_OPEN_MS = 1500;

export function forkClient(config: ClientConfig): Promise<BenchChild> {
  return forkBenchChild(
    fileURLToPath(import.meta.url),
    { SOAK_CLIENT: JSON.stringify(config) },
    `soak client ${config.name}`,
  );
}

const chain = defineProjection<ChainState, unknown>({
  name: 'chain',
  version: 1,
  initial: () => ({ count: 0, chain: 0 }),
  apply: (state, event) => foldChain(state, event),
  // Small, so that late events rebase from snapshots during the soak.
  snapshotEvery: 25,
});

async function run(config: ClientConfig): Promise<void> {
  const note = (line: JournalLine) => appendFileSync(config.journal, `${JSON.stringify(line)}\n`);
  // Kept across soft restarts: stores opened on one memoryStorage() share its data.
  const storage = config.storage === 'memory' ? memoryStorage() : indexedDbStorage(config.name);
  const openRaw = async () => {
    const opened: EventStore = await openStore({
      name: config.name,
      storage,
      projections: [chain],
      now: () => Date.now() + config.clockOffsetMs,
      syncOptions: {
        WebSocket: WebSocket as never,
        backoff: { maxMs: config.backoffMaxMs },
      },
    });
    note({ t: 'start', replica: opened.replicaId, seed: config.seed, at: Date.now() });
    return opened;
  };
  // Until a freshly opened store has read its acknowledgement marks, its status guesses pending
  // as 0 (sync/controller.ts): no claim is made from a status that young (invariant 1).
  let blindUntil = 0;
  const open = async () => {
    const opened = await openRaw();
    blindUntil = Date.now() + BLIND_AFTER_OPEN_MS;
    return opened;
  };
  let store = await open();
  const random = seededRandom(config.seed);
  // A device often starts offline: it appends before it first meets the server (and, with a
  // wrong clock, before the server's hello could correct it).
  const connectTimer = setTimeout(
    () => store.sync.connect({ url: config.url, token: config.token }),
    Math.floor(random() * 3000),
  );

  // Invariant 1.
  const appended: string[] = [];
  let acked = 0;
  let recheck: ReturnType<typeof setTimeout> | undefined;
  const considerAck = () => {
    if (Date.now() < blindUntil) return;
    if (recheck !== undefined || store.sync.status().pending !== 0) return;
    const candidate = appended.length;
    recheck = setTimeout(() => {
      recheck = undefined;
      if (store.sync.status().pending !== 0 || candidate <= acked) return;
      note({ t: 'k', ids: appended.slice(acked, candidate) });
      acked = candidate;
    }, ACK_RECHECK_MS);
  };
  let offStatus = store.sync.on('status', considerAck);
  const poll = setInterval(considerAck, 1000);

  let writing = true;
  let oversizedDone = !config.oversized || random() < 0.5;
  const appendOne = async () => {
    const r = random();
    let stream: string;
    let event: { type: string; data: unknown; id?: string };
    let shared = false;
    if (config.sharedIds && r < 0.04) {
      // One id appended on several devices with different payloads (issue 12, defect 2): ids
      // drawn from a few per 5 s of real time, so that devices collide while apart.
      stream = 'shared';
      event = {
        id: `shared-${Math.floor(Date.now() / 5000)}-${Math.floor(random() * 3)}`,
        type: 'claim',
        data: { by: config.name },
      };
      shared = true;
    } else if (!oversizedDone && r < 0.06) {
      // Under the client's 1 MiB event limit, over the server's 512 KiB (defect 7).
      oversizedDone = true;
      stream = 'big';
      event = { type: 'blob', data: { blob: 'x'.repeat(600 * 1024) } };
    } else {
      stream = `s${Math.floor(random() * 6)}`;
      event = { type: 'n', data: { n: Math.floor(random() * 1e6), by: config.name } };
    }
    try {
      const [stored] = await store.append(stream, event as never);
      if (stored === undefined) return;
      appended.push(stored.id);
      note({
        t: 'a',
        id: stored.id,
        seq: stored.seq,
        h: canonicalHash(stored),
        at: Date.now(),
        time: stored.time,
        ...(shared ? { shared: true } : {}),
      });
    } catch (error) {
      const e = error as { code?: string; message?: string };
      note({ t: 'r', code: String(e.code ?? 'ERROR'), message: String(e.message).slice(0, 200) });
    }
  };
  let inFlight: Promise<void> = Promise.resolve();
  let restarting: Promise<void> | undefined;
  const loop = (async () => {
    for (let i = 0; writing && i < 1_000_000; i++) {
      const gap = -Math.log(1 - random()) * config.appendEveryMs;
      await new Promise((resolve) => setTimeout(resolve, Math.min(gap, 10 * config.appendEveryMs)));
      if (restarting !== undefined) await restarting;
      if (!writing) break;
      inFlight = appendOne();
      await inFlight;
    }
  })();
  /** An app restart (a reload): the same storage, the same replica, pending events and all. */
  const restart = async () => {
    clearTimeout(connectTimer);
    await inFlight;
    offStatus();
    await store.close();
    store = await open();
    offStatus = store.sync.on('status', considerAck);
    store.sync.connect({ url: config.url, token: config.token });
  };

  let dumping: Promise<number> | undefined;
  serveParent(
    store.replicaId,
    {
      quiesce: async () => {
        writing = false;
        await loop;
        return appended.length;
      },
      settled: () => {
        const status = store.sync.status();
        considerAck();
        return status.state === 'idle' && status.pending === 0 ? 1 : 0;
      },
      restart: async () => {
        restarting ??= restart().finally(() => {
          restarting = undefined;
        });
        await restarting;
        return 1;
      },
      head: async () => (await store.readSince(0, { limit: 0 })).head,
      // A dump of a large log on fake-indexeddb outlasts one question's deadline: the first
      // `dump` starts it, and each answers 0 while it runs, 1 once written, -1 if it failed.
      dump: () => {
        dumping ??= dump(store, config.dump).then(
          () => 1,
          (error: Error) => {
            note({ t: 'r', code: 'DUMP', message: String(error.message).slice(0, 200) });
            return -1;
          },
        );
        return Promise.race([dumping, new Promise<number>((r) => setTimeout(() => r(0), 100))]);
      },
    },
    async () => {
      clearInterval(poll);
      clearTimeout(connectTimer);
      if (recheck !== undefined) clearTimeout(recheck);
      await store.close();
    },
  );
}

/** Writes the log (in read order), state() and the fold of read(); answers the event count. */
async function dump(store: EventStore, path: string): Promise<number> {
  // Sync is settled by now; should an event still arrive between read() and state(), read again.
  let events = await store.read();
  let state = await store.state<ChainState>('chain');
  for (let attempt = 0; attempt < 5; attempt++) {
    const again = await store.read();
    if (again.length === events.length) break;
    events = again;
    state = await store.state<ChainState>('chain');
  }
  let fold: ChainState = chain.initial();
  for (const e of events) fold = foldChain(fold, e);
  writeFileSync(
    path,
    JSON.stringify({
      replica: store.replicaId,
      status: store.sync.status(),
      head: (await store.readSince(0, { limit: 0 })).head,
      events: events.map((e) => [e.id, e.replica, e.seq, e.hlc, canonicalHash(e)]),
      state,
      fold,
    }),
  );
  return events.length;
}

const raw = process.env.SOAK_CLIENT;
if (raw !== undefined && raw !== '') await run(JSON.parse(raw) as ClientConfig);
