/**
 * `npm run bench -- pgcompact` (issue 18, part 1, PostgreSQL): what the compactor costs the hot
 * paths, compaction on (the defaults) against off, in the same run, on one throwaway cluster.
 *
 * Each round, both modes side by side on a schema each: the first half of the log is ingested and (on)
 * sealed, untimed, so that the timed part meets a log with history; then
 * - batched appends: the second half ingested in batches of 100, one after another (a session's
 *   pushes), through the storage's group commit; with compaction on, its background compactor
 *   runs when it finds the storage idle, and every new id is looked up in the blocks too;
 * - the compactor's own throughput, sealing what the appends left (on only);
 * - catch-up: the whole log read by another instance (no recent records) in pages of 500, as a
 *   session's catch-up reads it.
 * Each batch and each page goes to one mode then the other, the order swapped every time, so that
 * the load of a shared machine falls on both alike; medians of the rounds.
 *
 * The events: the demo's mix (size-events.ts) as stored events of 10 replicas, each batch one
 * replica's, canonical ids, and a signature and a previous hash in meta as a signed log has
 * (random, incompressible), so about the size of the storage bench's signed records.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { storedEvent } from '../fixtures/events.ts';
import { type PostgresServer, startPostgres } from '../server/postgres-cluster.ts';
import { type BenchResult, median, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import { SIZE_SEED } from './size-measure.ts';

const BATCH = 100;
const PAGE = 500;
const REPLICAS = 10;

export function records(count: number): StoredEventRecord[] {
  const mix = new DemoMix(SIZE_SEED);
  const replicas = Array.from(
    { length: REPLICAS },
    (_, i) => `benchreplica${String(i).padStart(4, 'a')}`,
  );
  const seqs = new Array<number>(REPLICAS).fill(0);
  const out: StoredEventRecord[] = [];
  for (let i = 0; i < count; i++) {
    const r = Math.floor(i / BATCH) % REPLICAS;
    seqs[r]! += 1;
    const { stream, event } = mix.next();
    out.push(
      storedEvent({
        replica: replicas[r]!,
        seq: seqs[r]!,
        wall: 1_760_000_000_000 + i * 50,
        stream,
        type: event.type,
        data: event.data,
        meta: {
          $sig: randomBytes(64).toString('base64url'),
          $prev: randomBytes(32).toString('base64url'),
        },
      }),
    );
  }
  return out;
}

interface Round {
  /** Milliseconds spent in the timed appends, and in the catch-up reads, per mode. */
  appendMs: { on: number; off: number };
  readMs: { on: number; off: number };
  sealPerSecond: number;
}

/** VACUUM ANALYZE of the schemas' tables, as autovacuum does in a running server. */
async function analyze(url: string, schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const schema of schemas) {
    await client.query(
      `VACUUM ANALYZE ${schema}.events, ${schema}.event_blocks, ${schema}.event_runs, ${schema}.spaces`,
    );
  }
  await client.end();
}

async function dropSchemas(url: string, schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

/**
 * One round: both modes side by side, each batch and each page given to one then the other (the
 * order swapped every time), so that the load of a shared machine falls on both alike.
 */
async function oneRound(url: string, round: number, events: StoredEventRecord[]): Promise<Round> {
  const schemas = { on: `bench_${round}_on`, off: `bench_${round}_off` };
  const modes = ['off', 'on'] as const;
  const open = (mode: 'on' | 'off', compacting: boolean): ServerStorage =>
    postgresStorage(url, { schema: schemas[mode], compaction: compacting ? {} : false });
  const storages = { on: open('on', true), off: open('off', false) };
  const half = Math.floor(events.length / 2);
  const appendMs = { on: 0, off: 0 };
  const readMs = { on: 0, off: 0 };
  let sealPerSecond = 0;
  try {
    const logs = {
      on: await storages.on.openSpace('s'),
      off: await storages.off.openSpace('s'),
    };
    for (const mode of modes) {
      for (let i = 0; i < half; i += 1000) {
        await logs[mode].ingest(events.slice(i, Math.min(half, i + 1000)));
      }
    }
    await storages.on.compact!();
    // As autovacuum would have by now: without statistics the planner reads a page of rows by
    // sorting every row after it (a bitmap scan), which would make the baseline's reads slow.
    await analyze(url, [schemas.on, schemas.off]);
    let turn = 0;
    for (let i = half; i < events.length; i += BATCH) {
      const batch = events.slice(i, i + BATCH);
      for (const mode of turn++ % 2 === 0 ? modes : [...modes].reverse()) {
        const started = performance.now();
        await logs[mode].ingest(batch);
        appendMs[mode] += performance.now() - started;
      }
    }
    const sealStarted = performance.now();
    const report = await storages.on.compact!();
    sealPerSecond = report.events / ((performance.now() - sealStarted) / 1000);
    await analyze(url, [schemas.on, schemas.off]);
    // Other instances read: no recent records, everything from the database.
    const readers = { on: open('on', false), off: open('off', false) };
    try {
      const readLogs = {
        on: await readers.on.openSpace('s'),
        off: await readers.off.openSpace('s'),
      };
      const pos = { on: 0, off: 0 };
      const read = { on: 0, off: 0 };
      for (turn = 0; ; turn++) {
        let more = false;
        for (const mode of turn % 2 === 0 ? modes : [...modes].reverse()) {
          const started = performance.now();
          const page = await readLogs[mode].readByPos(pos[mode], PAGE);
          readMs[mode] += performance.now() - started;
          if (page.length === 0) continue;
          more = true;
          read[mode] += page.length;
          pos[mode] = page[page.length - 1]!.pos;
        }
        if (!more) break;
      }
      for (const mode of modes) {
        if (read[mode] !== events.length)
          throw new Error(`${mode}: read ${read[mode]} of ${events.length}`);
      }
    } finally {
      await readers.on.close();
      await readers.off.close();
    }
  } finally {
    await storages.on.close();
    await storages.off.close();
    await dropSchemas(url, [schemas.on, schemas.off]);
  }
  return { appendMs, readMs, sealPerSecond };
}

export async function runPostgresCompactionBenches(): Promise<BenchResult[]> {
  const count = Number(process.env.BENCH_PGCOMPACT_EVENTS ?? 100_000);
  const rounds = Number(process.env.BENCH_PGCOMPACT_ROUNDS ?? 3);
  const events = records(count);
  let cluster: PostgresServer | undefined;
  const rounds_: Round[] = [];
  try {
    cluster = await startPostgres();
    for (let r = 0; r < rounds; r++) {
      const out = await oneRound(cluster.url, r, events);
      rounds_.push(out);
      console.error(`pgcompact: round ${r + 1}: ${JSON.stringify(out)}`);
    }
  } finally {
    await cluster?.stop();
  }
  const timed = count - Math.floor(count / 2);
  const note = `${count} events (${timed} appended timed), medians of ${rounds} rounds; both modes side by side, each batch and page to one then the other`;
  const perSecond = (n: number, ms: number) => n / (ms / 1000);
  return [
    result(
      'postgres compaction: batched appends (100/batch), compaction on',
      'events/s',
      median(rounds_.map((r) => perSecond(timed, r.appendMs.on))),
      median(rounds_.map((r) => perSecond(timed, r.appendMs.off))),
      `baseline: compaction off; ratios per round ${rounds_.map((r) => (r.appendMs.off / r.appendMs.on).toFixed(3)).join(', ')}; ${note}`,
    ),
    result(
      'postgres compaction: catch-up read (pages of 500), compaction on',
      'events/s',
      median(rounds_.map((r) => perSecond(count, r.readMs.on))),
      median(rounds_.map((r) => perSecond(count, r.readMs.off))),
      `baseline: compaction off (rows only); ratios per round ${rounds_.map((r) => (r.readMs.off / r.readMs.on).toFixed(3)).join(', ')}; ${note}`,
    ),
    result(
      'postgres compaction: sealing, compact() after the appends',
      'events/s',
      median(rounds_.map((r) => r.sealPerSecond)),
      undefined,
      `one block (128 events) per transaction; ${note}`,
    ),
  ];
}
