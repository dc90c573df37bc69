/**
 * `npm run bench -- storage`, the Node half (issue 18, "Measure first"): bytes on disk per event
 * against the raw JSON of the same events, at 10k, 100k (and 1M with BENCH_STORAGE_EVENTS=1000000).
 *
 * One Node store on sqliteReplicaStorage (signing on, the default) appends the demo's mix
 * (size-events.ts), 100 events an appendMany, and syncs through a real sync server on SQLite
 * (sqliteStorage) on 127.0.0.1. At each size, once the server holds every event and the store has
 * none pending (so its own log holds the signed copies, as a synced device's does: signing
 * happens on the way out, store/signing.ts), it measures:
 * - the replica's SQLite file and the server's, each + WAL after a TRUNCATE checkpoint;
 * - PostgreSQL: the server's records (read back from its log, signed, as the protocol sends
 *   them) ingested directly into postgresStorage on a throwaway cluster, then VACUUM and
 *   pg_total_relation_size of the tables that hold events (heap, TOAST and indexes);
 * - the baseline: JSON.stringify of each of those records, summed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type StoredEvent } from '../../src/index.ts';
import { sqliteReplicaStorage } from '../../src/node/index.ts';
import { postgresStorage, type ServerStorage, type SpaceLog } from '../../src/server/index.ts';
import { type PostgresServer, startPostgres } from '../server/postgres-cluster.ts';
import { type BenchResult, result } from './results.ts';
import { DemoMix } from './size-events.ts';
import {
  anatomy,
  describeAnatomy,
  label,
  rawJsonBytes,
  SIZE_SEED,
  sizeCheckpoints,
  sqliteSize,
} from './size-measure.ts';
import { startServer, waitUntil, wsTransport } from './sync-server.ts';

const SPACE = 'size';
const BATCH = 100;

/** The server's records from `after` on, `limit` a page: what PostgreSQL ingests. */
async function pageOf(log: SpaceLog, after: number, limit: number): Promise<StoredEvent[]> {
  return (await log.readByPos(after, limit)).map((r) => r.event);
}

interface PostgresSize {
  total: number;
  /** Heap and TOAST. */
  table: number;
  /** Each index, by name. */
  indexes: [string, number][];
}

/** VACUUM of the tables that hold events (what autovacuum does in a running server). */
async function postgresVacuum(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('VACUUM chronicle.events, chronicle.event_blocks, chronicle.event_runs');
  } finally {
    await client.end();
  }
}

/**
 * `full`: after VACUUM FULL, what the data itself takes: a plain VACUUM keeps the pages that the
 * rows sealed since the last VACUUM emptied, for the rows to come (the events table's high-water
 * mark, the rows appended between two autovacuum runs, which does not grow with the log).
 */
async function postgresBytes(url: string, full = false): Promise<PostgresSize> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(full ? 'VACUUM FULL' : 'VACUUM');
    // Every table of the schema that holds events (issue 18 adds tables beside `events`).
    const tables = `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'chronicle' AND c.relkind = 'r'
         AND (c.relname LIKE 'event%' OR c.relname LIKE '%block%')`;
    const { rows } = await client.query<{ total: string; table: string }>(
      `SELECT coalesce(sum(pg_total_relation_size(oid)), 0) AS total,
              coalesce(sum(pg_table_size(oid)), 0) AS table FROM (${tables}) t`,
    );
    const indexes = await client.query<{ name: string; bytes: string }>(
      `SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS bytes
         FROM pg_index WHERE indrelid IN (${tables}) ORDER BY 2 DESC`,
    );
    return {
      total: Number(rows[0]!.total),
      table: Number(rows[0]!.table),
      indexes: indexes.rows.map((r) => [r.name, Number(r.bytes)]),
    };
  } finally {
    await client.end();
  }
}

export async function runSizeNodeBenches(): Promise<BenchResult[]> {
  const sizes = sizeCheckpoints();
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-size-'));
  const replicaFile = join(dir, 'replica.sqlite');
  const t = await startServer(SPACE);
  const serverFile = t.storage.name.slice('sqlite:'.length);
  let cluster: PostgresServer | undefined;
  let pgStorage: ServerStorage | undefined;
  const store = await openStore({ name: 'size-node', storage: sqliteReplicaStorage(replicaFile) });
  const connection = store.sync.connect(wsTransport(t, 'writer'));
  const results: BenchResult[] = [];
  try {
    cluster = await startPostgres();
    pgStorage = postgresStorage(cluster.url);
    const pgLog = await pgStorage.openSpace(SPACE);
    const serverLog = await t.storage.openSpace(SPACE);
    const mix = new DemoMix(SIZE_SEED);
    let appended = 0;
    let copied = 0;
    let raw = 0;
    let sample: StoredEvent[] = [];
    for (const size of sizes) {
      const started = performance.now();
      for (; appended < size; appended += BATCH) {
        const batch = Array.from({ length: BATCH }, () => mix.next());
        await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
      }
      await waitUntil(
        async () => (await serverLog.headPos()) >= size && store.sync.status().pending === 0,
        `the server to hold ${size} events`,
        30 * 60_000,
        50,
      );
      const seconds = (performance.now() - started) / 1000;
      while (copied < size) {
        const events = await pageOf(serverLog, copied, 1000);
        if (events.length === 0) throw new Error(`the server's log ends at ${copied}`);
        raw += rawJsonBytes(events);
        await pgLog.ingest(events as never);
        sample = events;
        copied += events.length;
        // Issue 18: the log compacted as it grows, as a server's background compactor keeps it
        // between appends; and the emptied pages made reusable, as autovacuum does. A log
        // ingested whole and then compacted keeps its high-water mark until VACUUM FULL.
        await pgStorage.compact?.();
        if (copied % 10_000 === 0) await postgresVacuum(cluster.url);
      }
      const perEvent = raw / size;
      // Issue 18: what a storage compacts in the background is weighed compacted.
      await t.storage.compact?.();
      await pgStorage.compact?.();
      const replica = sqliteSize(replicaFile);
      const server = sqliteSize(serverFile);
      const postgres = await postgresBytes(cluster.url);
      const postgresFull = await postgresBytes(cluster.url, true);
      const n = label(size);
      const sqliteNote = (s: typeof server) =>
        `db + WAL after wal_checkpoint(TRUNCATE)${s.busy ? ' (busy: WAL not emptied)' : ''}, ` +
        `freelist ${(s.free / size).toFixed(1)}, VACUUM INTO copy ${(s.vacuumed / size).toFixed(0)} B/event; by object (B/event): ` +
        s.objects
          .filter(([, bytes]) => bytes / size >= 1)
          .map(([name, bytes]) => `${name} ${(bytes / size).toFixed(0)}`)
          .join(', ');
      results.push(
        result(
          `storage ${n}: raw JSON of the signed records`,
          'B/event',
          perEvent,
          undefined,
          `JSON.stringify of each record as the server sends it; seeding + sync to ${n} took ${seconds.toFixed(0)} s`,
        ),
        result(
          `storage ${n}: server SQLite (sqliteStorage)`,
          'B/event',
          server.files / size,
          perEvent,
          `${sqliteNote(server)}; baseline: raw JSON`,
        ),
        result(
          `storage ${n}: server PostgreSQL events table`,
          'B/event',
          postgres.total / size,
          perEvent,
          `compacted as it grows (compact() after each 1,000 events, VACUUM every 10,000), pg_total_relation_size after VACUUM: heap+TOAST ${(postgres.table / size).toFixed(0)}, ` +
            postgres.indexes.map(([name, b]) => `${name} ${(b / size).toFixed(0)}`).join(', ') +
            " B/event; the server's records ingested directly; baseline: raw JSON",
        ),
        result(
          `storage ${n}: server PostgreSQL events table, after VACUUM FULL`,
          'B/event',
          postgresFull.total / size,
          perEvent,
          `what the data takes, without the free pages kept for later rows: heap+TOAST ${(postgresFull.table / size).toFixed(0)}, ` +
            postgresFull.indexes.map(([name, b]) => `${name} ${(b / size).toFixed(0)}`).join(', ') +
            ' B/event; baseline: raw JSON',
        ),
        result(
          `storage ${n}: Node replica SQLite (sqliteReplicaStorage)`,
          'B/event',
          replica.files / size,
          perEvent,
          `${sqliteNote(replica)}; after sync (signed copies); baseline: raw JSON`,
        ),
      );
      console.error(`storage: ${n} done (${seconds.toFixed(0)} s)`);
    }
    results.push(
      result(
        'storage: anatomy of a signed record',
        'B/event',
        anatomy(sample).total,
        undefined,
        describeAnatomy(anatomy(sample)),
      ),
    );
    return results;
  } finally {
    await connection.close().catch(() => {});
    await store.close().catch(() => {});
    await pgStorage?.close().catch(() => {});
    await cluster?.stop();
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
