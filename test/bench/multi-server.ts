/**
 * Several servers on one PostgreSQL (`npm run bench multi`): three `chronicle-server` processes
 * (the CLI, `--postgres`) on a throwaway cluster (test/server/postgres-cluster.ts).
 *
 * - Delivery: a writer on server A appends one event every BENCH_MULTI_INTERVAL_MS (20); the time
 *   from the append until a reader received it, p50 and p99 over events and readers, for the
 *   BENCH_MULTI_READERS (10) readers on A (same server: A commits, then forwards from memory) and
 *   those on B and C (cross-server: A's commit sends a NOTIFY, B hears it and reads the new rows
 *   from the database). Medians over BENCH_MULTI_RUNS (3) runs of BENCH_MULTI_EVENTS (300) events.
 * - Ingest: BENCH_MULTI_WRITERS (6) writers, each holding BENCH_MULTI_INGEST (3000) events, connect
 *   at once; events/s until every writer's events are acknowledged (committed), through 1 server
 *   or spread over 3, into one space or a space per writer. Where 3 servers take no more than 1,
 *   the database is the limit.
 *
 * The clients are the real peer session on a light in-memory log (test/server/session-client.ts),
 * in this process; events are unsigned (the servers run with --allow-unsigned). Measurements,
 * never assertions; the machine is shared.
 */
import type { StoredEventRecord } from '../../src/core/events.ts';
import { createToken } from '../../src/server/auth.ts';
import type { SyncIngestResult } from '../../src/sync/log.ts';
import { SECRET } from '../server/helpers.ts';
import { freshDatabase, startServers } from '../server/multi-server.ts';
import { type PostgresServer, startPostgres } from '../server/postgres-cluster.ts';
import { connectSession, MemorySyncLog, type SessionClient } from '../server/session-client.ts';
import { type BenchResult, median, percentile, result } from './results.ts';
import { waitUntil } from './sync-server.ts';

const RUNS = Number(process.env.BENCH_MULTI_RUNS ?? 3);
const EVENTS = Number(process.env.BENCH_MULTI_EVENTS ?? 300);
const INTERVAL_MS = Number(process.env.BENCH_MULTI_INTERVAL_MS ?? 20);
const READERS = Number(process.env.BENCH_MULTI_READERS ?? 10);
const WRITERS = Number(process.env.BENCH_MULTI_WRITERS ?? 6);
const INGEST = Number(process.env.BENCH_MULTI_INGEST ?? 3000);

/** A light log that notes when each event arrived. */
class TimedLog extends MemorySyncLog {
  readonly arrived = new Map<string, number>();
  override async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    const at = performance.now();
    for (const e of events) if (!this.arrived.has(e.id)) this.arrived.set(e.id, at);
    return super.ingest(events);
  }
}

function token(space: string, sub: string): string {
  return createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds: 3600 });
}

type Cleanups = (() => void | Promise<void>)[];

/** One delivery run in a fresh space: latencies (ms) to the reader on A and those on B and C. */
async function deliveryRun(urls: string[], space: string, cleanups: Cleanups) {
  const join = async (url: string, log: MemorySyncLog, sub: string): Promise<SessionClient> => {
    const client = await connectSession(url, token(space, sub), log);
    cleanups.push(() => client.close());
    return client;
  };
  const writer = new MemorySyncLog();
  const readers = urls.map(() => Array.from({ length: READERS }, () => new TimedLog()));
  await join(urls[0]!, writer, 'writer');
  for (const [i, onServer] of readers.entries()) {
    for (const [j, reader] of onServer.entries()) await join(urls[i]!, reader, `reader-${i}-${j}`);
  }
  const all = readers.flat();
  // A first event through, so every connection is past its catch-up.
  writer.append(1);
  await waitUntil(() => all.every((r) => r.arrived.size === 1), 'warm-up', 20_000);
  const sent = new Map<string, number>();
  for (let i = 0; i < EVENTS; i++) {
    const [event] = writer.append(1);
    sent.set(event!.id, performance.now());
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
  }
  await waitUntil(() => all.every((r) => r.arrived.size === EVENTS + 1), 'deliveries', 60_000, 10);
  const latencies = (logs: TimedLog[]) =>
    logs.flatMap((log) => [...sent].map(([id, at]) => log.arrived.get(id)! - at));
  return { same: latencies(readers[0]!), cross: latencies(readers.slice(1).flat()) };
}

/** Events/s until WRITERS writers' INGEST events each are acknowledged. */
async function ingestRun(
  urls: string[],
  spaces: (writer: number) => string,
  cleanups: Cleanups,
): Promise<number> {
  const acked = new Array<number>(WRITERS).fill(0);
  const logs = Array.from({ length: WRITERS }, () => {
    const log = new MemorySyncLog();
    log.append(INGEST);
    return log;
  });
  const started = performance.now();
  await Promise.all(
    logs.map(async (log, w) => {
      const client = await connectSession(urls[w % urls.length]!, token(spaces(w), `w${w}`), log, {
        onStatus: (s) => {
          acked[w] = Math.max(acked[w]!, s.ackedPos);
        },
      });
      cleanups.push(() => client.close());
    }),
  );
  await waitUntil(() => acked.every((a) => a >= INGEST), 'ingest', 180_000, 5);
  return (WRITERS * INGEST) / ((performance.now() - started) / 1000);
}

export async function runMultiServerBenches(): Promise<BenchResult[]> {
  let cluster: PostgresServer;
  try {
    cluster = await startPostgres();
  } catch (error) {
    console.error(`bench: multi skipped (${error instanceof Error ? error.message : error})`);
    return [];
  }
  const cleanups: Cleanups = [];
  const runCleanups = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  };
  try {
    const database = await freshDatabase(cluster.url, cleanups);
    const servers = await startServers(database, 3, cleanups, { proxy: false });
    const urls = servers.urls();
    const cells = { sameP50: [], sameP99: [], crossP50: [], crossP99: [] } as Record<
      string,
      number[]
    >;
    for (let run = 0; run < RUNS; run++) {
      const { same, cross } = await deliveryRun(urls, `delivery-${run}`, cleanups);
      cells.sameP50!.push(percentile(same, 50));
      cells.sameP99!.push(percentile(same, 99));
      cells.crossP50!.push(percentile(cross, 50));
      cells.crossP99!.push(percentile(cross, 99));
    }
    const note = `3 servers on 1 PostgreSQL, ${READERS} readers each, ${EVENTS} events at 1/${INTERVAL_MS} ms, median of ${RUNS} runs`;
    const out: BenchResult[] = [
      result(
        'multi-server: delivery same server p50',
        'ms',
        median(cells.sameP50!),
        undefined,
        note,
      ),
      result(
        'multi-server: delivery same server p99',
        'ms',
        median(cells.sameP99!),
        undefined,
        note,
      ),
      result(
        'multi-server: delivery cross-server p50',
        'ms',
        median(cells.crossP50!),
        median(cells.sameP50!),
        `${note}; baseline: same server`,
      ),
      result(
        'multi-server: delivery cross-server p99',
        'ms',
        median(cells.crossP99!),
        median(cells.sameP99!),
        `${note}; baseline: same server`,
      ),
    ];
    const ingestNote = `${WRITERS} writers × ${INGEST} events, connected at once`;
    for (const [label, spaces] of [
      ['one space', (_w: number, n: number) => `ingest-one-s${n}`],
      ['a space per writer', (w: number, n: number) => `ingest-w${w}-s${n}`],
    ] as const) {
      const one = await ingestRun(urls.slice(0, 1), (w) => spaces(w, 1), cleanups);
      const three = await ingestRun(urls, (w) => spaces(w, 3), cleanups);
      out.push(
        result(`multi-server: ingest, ${label}, 1 server`, 'events/s', one, undefined, ingestNote),
        result(
          `multi-server: ingest, ${label}, 3 servers`,
          'events/s',
          three,
          one,
          `${ingestNote}; baseline: 1 server`,
        ),
      );
    }
    return out;
  } finally {
    await runCleanups();
    await cluster.stop();
  }
}
