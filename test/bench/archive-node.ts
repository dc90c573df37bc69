/**
 * `npm run bench -- archive` (issue 18 part 4): the SQLite server storage before and after
 * `archive()` moved every sealed block's body to cold files (src/server/sqlite-archive.ts), on
 * the demo's event mix with signature-sized meta (blocks-node.ts records), BENCH_ARCHIVE_EVENTS
 * of them (100,000 by default):
 * - bytes: the database (db + WAL after a TRUNCATE checkpoint, and VACUUM INTO's size) before
 *   and after archiving, and the archive files' bytes, per event;
 * - catch-up reads: the whole log by position (readByPos pages of 500, as a session's catch-up
 *   reads), on fresh handles without a recent cache, an archived file and a copy whose blocks
 *   are in the database, page by page in alternating order: events/s, the median of three
 *   passes after a first one, which is also reported (the archived side then reads and checks
 *   its files, cold).
 * Medians of BENCH_RUNS (3) runs.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { type ServerStorage, type SpaceLog, sqliteStorage } from '../../src/server/index.ts';
import { records } from './blocks-node.ts';
import { type BenchResult, median, result } from './results.ts';
import { rawJsonBytes, sqliteSize } from './size-measure.ts';

const EVENTS = Number(process.env.BENCH_ARCHIVE_EVENTS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCH = 500;
const PASSES = 3;
const FUTURE = Date.now() + 365 * 86_400_000;

interface Run {
  dbBefore: number;
  dbAfter: number;
  vacuumedBefore: number;
  vacuumedAfter: number;
  files: number;
  archivedEvents: number;
  coldPerS: number;
  archivedPerS: number;
  blocksPerS: number;
}

function dirBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

async function oneRun(events: readonly StoredEventRecord[]): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-bench-archive-'));
  try {
    const blocksPath = join(dir, 'blocks.sqlite');
    const archivedPath = join(dir, 'archived.sqlite');
    const archiveDir = join(dir, 'archive');
    const fill = sqliteStorage(blocksPath, { compaction: { idleMs: 60_000 } });
    const log = await fill.openSpace('bench');
    for (let i = 0; i < events.length; i += BATCH) {
      await log.ingest(events.slice(i, i + BATCH) as StoredEventRecord[]);
    }
    await fill.compact!();
    await fill.close();
    const before = sqliteSize(blocksPath);
    copyFileSync(blocksPath, archivedPath);
    const archiving = sqliteStorage(archivedPath, { archiveDir, compaction: false });
    const report = await archiving.archive!({ before: FUTURE });
    await archiving.close();
    const after = sqliteSize(archivedPath);

    const open = (path: string) =>
      sqliteStorage(path, { archiveDir, compaction: false, recentCacheBytes: 0 });
    const perS: number[][] = [[], []];
    let cold = 0;
    for (let pass = 0; pass <= PASSES; pass++) {
      // The first pass opens fresh handles: nothing decoded or cached, files unread.
      const storages: ServerStorage[] = [open(archivedPath), open(blocksPath)];
      const logs: SpaceLog[] = await Promise.all(storages.map((s) => s.openSpace('bench')));
      const ms = [0, 0];
      const positions = [0, 0];
      const read = [0, 0];
      for (let page = 0; ; page++) {
        let done = 0;
        for (const i of page % 2 === 0 ? [0, 1] : [1, 0]) {
          const started = performance.now();
          const got = await logs[i]!.readByPos(positions[i]!, BATCH);
          ms[i]! += performance.now() - started;
          if (got.length === 0) done += 1;
          else positions[i] = got[got.length - 1]!.pos;
          read[i]! += got.length;
        }
        if (done === 2) break;
      }
      if (read[0] !== events.length || read[1] !== events.length) {
        throw new Error(`read ${read.join(' and ')} of ${events.length}`);
      }
      for (const s of storages) await s.close();
      if (pass === 0) cold = events.length / (ms[0]! / 1000);
      else for (const i of [0, 1]) perS[i]!.push(events.length / (ms[i]! / 1000));
    }
    return {
      dbBefore: before.files,
      dbAfter: after.files,
      vacuumedBefore: before.vacuumed,
      vacuumedAfter: after.vacuumed,
      files: dirBytes(archiveDir),
      archivedEvents: report.events,
      coldPerS: cold,
      archivedPerS: median(perS[0]!),
      blocksPerS: median(perS[1]!),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runArchiveBenches(): Promise<BenchResult[]> {
  const events = records(EVENTS);
  const raw = rawJsonBytes(events) / EVENTS;
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await oneRun(events));
  const m = (key: keyof Run) => median(runs.map((r) => r[key]));
  const n = `${EVENTS / 1000}k`;
  const per = (bytes: number) => bytes / EVENTS;
  return [
    result(`archive ${n}: raw JSON of the records`, 'B/event', raw),
    result(
      `archive ${n}: SQLite database after archive()`,
      'B/event',
      per(m('dbAfter')),
      per(m('dbBefore')),
      `db + WAL after a TRUNCATE checkpoint; baseline: the same file before (blocks in it); ${m('archivedEvents')} events archived; VACUUM INTO: ${per(m('vacuumedBefore')).toFixed(1)} → ${per(m('vacuumedAfter')).toFixed(1)} B/event`,
    ),
    result(
      `archive ${n}: archive files`,
      'B/event',
      per(m('files')),
      raw,
      'the blocks as stored, one file per 256 blocks; baseline: raw JSON',
    ),
    result(
      `archive ${n}: catch-up read (readByPos pages of ${BATCH}), archived`,
      'events/s',
      m('archivedPerS'),
      m('blocksPerS'),
      `no recent cache, files verified and cached; baseline: blocks in the database, same run; the first pass (cold: files read and checked) ${Math.round(m('coldPerS'))} events/s`,
    ),
  ];
}
