/**
 * `npm run bench -- blocks` (issue 18): the SQLite server storage with compaction on (the
 * default) against off, side by side in one run, on the demo's event mix (size-events.ts) with
 * signature-sized meta, BENCH_BLOCKS_EVENTS of them (100,000 by default):
 * - batched appends: ingests of 500 events (a sync batch), 4 at once as from 4 connections (one
 *   group commit): the second half of the events, timed, into a log holding the first half
 *   (sealed, when on). With compaction on, the background compactor runs as it would
 *   (sqlite-compactor.ts: when idle, or between commits after 5 s). Beside it, the time
 *   compact() then takes to seal the rest: the work moved off the hot path.
 * - replay: a catch-up read of the whole log, pages of 500 by position (readByPos, as a session
 *   sends a catch-up), on a fresh handle without a recent cache: events/s, the median of three
 *   passes after one that warms up. On: blocks and the 8,192-event tail; off: rows.
 * Off and on run side by side, each group of ingests and each page on both, in alternating
 * order: the shared machine's load falls on both alike.
 * - catch-up through a server: a raw protocol client pulling the whole log from a real server on
 *   127.0.0.1 (read, encode, send, ack): events/s, the median of three after one warm-up.
 * - bytes on disk per event after compact(), db + WAL after a TRUNCATE checkpoint, against
 *   the records' JSON.
 * Medians of BENCH_RUNS (3) runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { ReplicaId } from '../../src/core/ids.ts';
import {
  createSyncServer,
  type ServerStorage,
  type SpaceLog,
  type SqliteStorageOptions,
  silentLogger,
  sqliteStorage,
} from '../../src/server/index.ts';
import { PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { storedEvent } from '../fixtures/events.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { rawJsonBytes, SIZE_SEED, sqliteSize } from './size-measure.ts';
import { benchToken, SECRET } from './sync-server.ts';

const EVENTS = Number(process.env.BENCH_BLOCKS_EVENTS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCH = 500;
const IN_FLIGHT = 4;
/** Replays per run, median taken: the first also warms the decoder up, as a running server is. */
const REPLAY_PASSES = 3;
const REPLICAS = ['devicealpha00001', 'devicebravo00002', 'devicecharlie003'];

/** The demo's events as a server stores them, with `$sig` and `$prev` the size signing makes. */
export function records(count: number): StoredEventRecord[] {
  const mix = new DemoMix(SIZE_SEED);
  const seqs = REPLICAS.map(() => 0);
  const out: StoredEventRecord[] = [];
  for (let i = 0; i < count; i++) {
    const r = i % REPLICAS.length;
    seqs[r]! += 1;
    const { stream, event } = mix.next();
    out.push(
      storedEvent({
        replica: REPLICAS[r]!,
        seq: seqs[r]!,
        wall: 1_760_000_000_000 + i * 37,
        type: event.type,
        data: event.data,
        stream,
        version: seqs[r]!,
        meta: {
          $sig: randomBytes(64).toString('base64url'),
          $prev: randomBytes(32).toString('base64url'),
        },
      }),
    );
  }
  return out;
}

/**
 * A raw protocol client catching up the whole log from a real server on `storage` (127.0.0.1):
 * hello at 0, pull, ack every batch; events/s until it holds them all. What the server does per
 * event (read, encode, send) is what a new device's catch-up costs it.
 */
async function catchUp(storage: ServerStorage, total: number): Promise<number> {
  const server = await createSyncServer({
    storage,
    auth: { secret: SECRET },
    log: silentLogger,
    requireSignatures: false,
  });
  try {
    const ws = new WebSocket(`${server.url}/?token=${encodeURIComponent(benchToken('reader'))}`);
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      let received = 0;
      const timer = setTimeout(() => reject(new Error('bench: catch-up timed out')), 300_000);
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { type: string; to?: number; events?: unknown };
        if (m.type === 'hello') {
          const replica = ReplicaId.make();
          ws.send(
            JSON.stringify({
              type: 'hello',
              protocol: PROTOCOL_VERSION,
              replica,
              epoch: `epoch-${replica}`,
              head: 0,
              seq: 0,
              time: Date.now(),
            }),
          );
          ws.send(JSON.stringify({ type: 'pull' }));
        } else if (m.type === 'events') {
          received += (m.events as { data: unknown[] }).data.length;
          ws.send(JSON.stringify({ type: 'ack', to: m.to }));
          if (received >= total) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
    const seconds = (performance.now() - started) / 1000;
    ws.close();
    return total / seconds;
  } finally {
    await server.close();
    await storage.close();
  }
}

interface Run {
  catchUpPerS: number;
  ingestPerS: number;
  sealSeconds: number;
  replayPerS: number;
  bytes: number;
}

interface Side {
  path: string;
  options: SqliteStorageOptions;
  storage: ServerStorage;
  log: SpaceLog;
  ms: number;
}

async function timed(side: Side, work: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  await work();
  side.ms += performance.now() - started;
}

/**
 * One run: compaction off and on side by side, each step (a group of IN_FLIGHT ingests, a page
 * of replay) done on both in alternating order, so that the shared machine's load falls on both.
 */
async function sideBySide(events: readonly StoredEventRecord[]): Promise<{ off: Run; on: Run }> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-blocks-'));
  try {
    const half = Math.floor(events.length / 2 / BATCH) * BATCH;
    const sides: Side[] = [];
    for (const compaction of [false, true]) {
      const path = join(dir, `${compaction ? 'on' : 'off'}.sqlite`);
      const options: SqliteStorageOptions = compaction ? {} : { compaction: false };
      const storage = sqliteStorage(path, options);
      const log = await storage.openSpace('bench');
      for (let i = 0; i < half; i += BATCH) {
        await log.ingest(events.slice(i, i + BATCH) as StoredEventRecord[]);
      }
      // The timed half goes into a log that has blocks, as a server's log does once it has run
      // a while (every ingest then checks the sealed ids).
      await storage.compact?.();
      sides.push({ path, options, storage, log, ms: 0 });
    }
    const [off, on] = sides as [Side, Side];
    let step = 0;
    for (let from = half; from < events.length; from += BATCH * IN_FLIGHT, step++) {
      const group: StoredEventRecord[][] = [];
      for (let i = from; i < Math.min(events.length, from + BATCH * IN_FLIGHT); i += BATCH) {
        group.push(events.slice(i, Math.min(events.length, i + BATCH)) as StoredEventRecord[]);
      }
      for (const side of step % 2 === 0 ? [off, on] : [on, off]) {
        await timed(side, () => Promise.all(group.map((batch) => side.log.ingest(batch))));
      }
    }
    const ingestPerS = (side: Side) => (events.length - half) / (side.ms / 1000);
    const ingest = [ingestPerS(off), ingestPerS(on)];
    const sealing = performance.now();
    await on.storage.compact?.();
    const sealSeconds = (performance.now() - sealing) / 1000;
    await off.storage.compact?.();
    for (const side of sides) {
      await side.storage.close();
      side.storage = sqliteStorage(side.path, { ...side.options, recentCacheBytes: 0 });
      side.log = await side.storage.openSpace('bench');
    }
    // Replay: the first pass warms the decoders up, as a running server's are; then timed.
    const replay: number[][] = [[], []];
    for (let pass = 0; pass <= REPLAY_PASSES; pass++) {
      for (const side of sides) side.ms = 0;
      const positions = [0, 0];
      const read = [0, 0];
      for (let page = 0; ; page++) {
        let done = 0;
        for (const i of page % 2 === 0 ? [0, 1] : [1, 0]) {
          await timed(sides[i]!, async () => {
            const records = await sides[i]!.log.readByPos(positions[i]!, BATCH);
            if (records.length === 0) done += 1;
            else positions[i] = records[records.length - 1]!.pos;
            read[i]! += records.length;
          });
        }
        if (done === 2) break;
      }
      if (read[0] !== events.length || read[1] !== events.length) {
        throw new Error(`read ${read.join(' and ')} of ${events.length}`);
      }
      if (pass > 0) for (const i of [0, 1]) replay[i]!.push(events.length / (sides[i]!.ms / 1000));
    }
    for (const side of sides) await side.storage.close();
    // Through a server: each storage reopened with its default recent cache (it holds nothing
    // of the log after a reopen), alternating which goes first.
    const viaServer: number[][] = [[], []];
    for (let pass = 0; pass <= REPLAY_PASSES; pass++) {
      for (const i of pass % 2 === 0 ? [0, 1] : [1, 0]) {
        const storage = sqliteStorage(sides[i]!.path, sides[i]!.options);
        const perS = await catchUp(storage, events.length);
        if (pass > 0) viaServer[i]!.push(perS);
      }
    }
    const run = (i: number): Run => ({
      catchUpPerS: median(viaServer[i]!),
      ingestPerS: ingest[i]!,
      sealSeconds: i === 1 ? sealSeconds : 0,
      replayPerS: median(replay[i]!),
      bytes: sqliteSize(sides[i]!.path).files / events.length,
    });
    return { off: run(0), on: run(1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runBlocksBenches(): Promise<BenchResult[]> {
  const events = records(EVENTS);
  const raw = rawJsonBytes(events) / EVENTS;
  const on: Run[] = [];
  const off: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await sideBySide(events);
    off.push(run.off);
    on.push(run.on);
  }
  const m = (runs: Run[], key: keyof Run) => median(runs.map((r) => r[key]));
  const n = `${EVENTS / 1000}k`;
  return [
    result(`blocks ${n}: raw JSON of the records`, 'B/event', raw),
    result(`blocks ${n}: server SQLite, compaction off`, 'B/event', m(off, 'bytes'), raw),
    result(
      `blocks ${n}: server SQLite, compaction on`,
      'B/event',
      m(on, 'bytes'),
      raw,
      'after compact(): blocks + the 8,192-event tail as rows; baseline: raw JSON',
    ),
    result(
      `blocks ${n}: batched appends, compaction on`,
      'events/s',
      m(on, 'ingestPerS'),
      m(off, 'ingestPerS'),
      `${BATCH}-event ingests, ${IN_FLIGHT} in flight; baseline: off, same run; then compact() sealed the rest in ${m(on, 'sealSeconds').toFixed(2)} s`,
    ),
    result(
      `blocks ${n}: catch-up through a server, compaction on`,
      'events/s',
      m(on, 'catchUpPerS'),
      m(off, 'catchUpPerS'),
      'a raw protocol client pulling the whole log from a server on 127.0.0.1; baseline: off, same run',
    ),
    result(
      `blocks ${n}: replay (readByPos pages of ${BATCH}), compaction on`,
      'events/s',
      m(on, 'replayPerS'),
      m(off, 'replayPerS'),
      'no recent cache; baseline: off (rows), same run',
    ),
  ];
}
