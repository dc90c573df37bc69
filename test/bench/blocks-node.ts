/**
 * `npm run bench -- blocks` (issue 18): the SQLite server storage with compaction on (the
 * default) against off, side by side in one run, on the demo's event mix (size-events.ts) with
 * signature-sized meta, BENCH_BLOCKS_EVENTS of them (100,000 by default):
 * - batched appends: ingests of 500 events (a sync batch), 4 in flight as from 4 connections:
 *   the second half of the events, timed, into a log holding the first half (sealed, when on);
 *   events/s until the last is committed. With compaction on, the background compactor runs as
 *   it would (sqlite-compactor.ts: when idle, or between commits after 5 s). Beside it, the time
 *   compact() then takes to seal the rest: the work moved off the hot path.
 * - replay: a catch-up read of the whole log, pages of 500 by position (readByPos, as a session
 *   sends a catch-up), on a fresh handle without a recent cache: events/s, the median of three
 *   passes. On: blocks and the 8,192-event tail; off: rows.
 * - bytes on disk per event after compact(), db + WAL after a TRUNCATE checkpoint, against
 *   the records' JSON.
 * Medians of BENCH_RUNS (3) runs, modes alternating within each run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { type SqliteStorageOptions, sqliteStorage } from '../../src/server/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { rawJsonBytes, SIZE_SEED, sqliteSize } from './size-measure.ts';

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

interface Run {
  ingestPerS: number;
  sealSeconds: number;
  replayPerS: number;
  bytes: number;
}

async function once(events: readonly StoredEventRecord[], compaction: boolean): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-blocks-'));
  const path = join(dir, 'server.sqlite');
  const options: SqliteStorageOptions = compaction ? {} : { compaction: false };
  try {
    const storage = sqliteStorage(path, options);
    const log = await storage.openSpace('bench');
    let next = 0;
    const writer = (to: number) => async () => {
      while (next < to) {
        const from = next;
        next += BATCH;
        await log.ingest(events.slice(from, Math.min(to, from + BATCH)) as StoredEventRecord[]);
      }
    };
    // The first half untimed, then sealed: the timed half goes into a log that has blocks, as a
    // server's log does once it has run a while (every ingest then checks the sealed ids).
    const half = Math.floor(events.length / 2 / BATCH) * BATCH;
    await Promise.all(Array.from({ length: IN_FLIGHT }, writer(half)));
    await storage.compact?.();
    const started = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, writer(events.length)));
    const ingestSeconds = (performance.now() - started) / 1000;
    const ingested = events.length - half;
    const sealing = performance.now();
    await storage.compact?.();
    const sealSeconds = (performance.now() - sealing) / 1000;
    await storage.close();

    const reader = sqliteStorage(path, { ...options, recentCacheBytes: 0 });
    const space = await reader.openSpace('bench');
    const passes: number[] = [];
    for (let pass = 0; pass < REPLAY_PASSES; pass++) {
      const reading = performance.now();
      let pos = 0;
      let read = 0;
      for (;;) {
        const page = await space.readByPos(pos, BATCH);
        if (page.length === 0) break;
        read += page.length;
        pos = page[page.length - 1]!.pos;
      }
      passes.push(read / ((performance.now() - reading) / 1000));
      if (read !== events.length) throw new Error(`read ${read} of ${events.length}`);
    }
    await reader.close();
    return {
      ingestPerS: ingested / ingestSeconds,
      sealSeconds,
      replayPerS: median(passes),
      bytes: sqliteSize(path).files / events.length,
    };
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
    // Alternating, so that a busy moment of the shared machine falls on both.
    if (i % 2 === 0) {
      off.push(await once(events, false));
      on.push(await once(events, true));
    } else {
      on.push(await once(events, true));
      off.push(await once(events, false));
    }
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
      `blocks ${n}: replay (readByPos pages of ${BATCH}), compaction on`,
      'events/s',
      m(on, 'replayPerS'),
      m(off, 'replayPerS'),
      'no recent cache; baseline: off (rows), same run',
    ),
  ];
}
