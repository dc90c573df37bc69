/**
 * `npm run bench -- pghistory` (issue 18, part 3, PostgreSQL): how long one page of history by
 * cursor takes (postgres-history.ts) from a space of BENCH_PGHISTORY_EVENTS (100k) events, every
 * one sealed into blocks, on a throwaway cluster after VACUUM ANALYZE: 1,000 events forward from
 * a cursor picked at random, 1,000 in reverse, and 100 of one stream (the demo's mix: a stream is
 * one card, so its events are spread over the whole log). Medians of 30 pages each, with a
 * storage instance that holds no recent records (every page comes from the database).
 */
import pg from 'pg';
import { postgresStorage } from '../../src/server/postgres.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import { type PostgresServer, startPostgres } from '../server/postgres-cluster.ts';
import { records } from './postgres-compaction.ts';
import { type BenchResult, median, result } from './results.ts';

const ROUNDS = 30;

export async function runPostgresHistoryBenches(): Promise<BenchResult[]> {
  const count = Number(process.env.BENCH_PGHISTORY_EVENTS ?? 100_000);
  const events = records(count);
  const cursors = events.map((e) => e.cursor).sort();
  let cluster: PostgresServer | undefined;
  try {
    cluster = await startPostgres();
    const writer = postgresStorage(cluster.url, {
      compaction: { tailEvents: 0, eager: true, idleMs: 60_000 },
    });
    const log = await writer.openSpace('history');
    for (let i = 0; i < events.length; i += 1000) await log.ingest(events.slice(i, i + 1000));
    const { blocks } = await writer.compact!();
    await writer.close();
    const client = new pg.Client({ connectionString: cluster.url });
    await client.connect();
    await client.query('VACUUM ANALYZE');
    await client.end();
    const reader = postgresStorage(cluster.url, { compaction: false, recentCacheBytes: 0 });
    const space = await reader.openSpace('history');
    const streams = [...new Set(events.map((e) => e.stream))];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const time = async (query: () => CursorQuery, expected: number) => {
      const ms: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const q = query();
        const started = performance.now();
        const page = await space.readByCursor!(q);
        ms.push(performance.now() - started);
        if (page.length > expected) throw new Error('a page longer than its limit');
      }
      return median(ms);
    };
    const forward = await time(
      () => ({ after: cursors[random(count - 1000)]!, limit: 1000 }),
      1000,
    );
    const reverse = await time(
      () => ({ after: cursors[1000 + random(count - 1000)]!, reverse: true, limit: 1000 }),
      1000,
    );
    const stream = await time(
      () => ({ stream: streams[random(streams.length)]!, limit: 100 }),
      100,
    );
    await reader.close();
    const note = `${count} events sealed in ${blocks} blocks, VACUUM ANALYZE; median of ${ROUNDS}`;
    return [
      result(
        'pg history: 1,000 events forward from a random cursor',
        'ms',
        forward,
        undefined,
        note,
      ),
      result(
        'pg history: 1,000 events in reverse from a random cursor',
        'ms',
        reverse,
        undefined,
        note,
      ),
      result(
        `pg history: 100 events of one stream (of ${streams.length}) from the start`,
        'ms',
        stream,
        undefined,
        note,
      ),
    ];
  } finally {
    await cluster?.stop();
  }
}
