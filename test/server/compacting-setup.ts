/**
 * The `compacting` test project (vitest.config.ts; issue 18): the server's sync, convergence
 * and copy-collision suites run again, unchanged, on SQLite storages that seal every event into a
 * block right after its ingest (tail 0) and keep only the last write in memory, so that every
 * read, dedupe and collision goes through the blocks (src/server/sqlite-blocks.ts).
 */
import { beforeEach, vi } from 'vitest';
import type { SqliteStorageOptions } from '../../src/server/sqlite.ts';

vi.mock('../../src/server/sqlite.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/server/sqlite.ts')>();
  return {
    ...real,
    sqliteStorage: (path: string, options: SqliteStorageOptions = {}) =>
      real.sqliteStorage(path, {
        recentCacheBytes: 0,
        ...options,
        compaction: { tailEvents: 0, eager: true },
      }),
  };
});

/**
 * Skipped here: it counts the rows of the `events` table itself, which a sealed event leaves
 * (its behaviour, acked events stored, is what the other tests read through the storage).
 */
const READS_THE_ROWS = ['shuts down gracefully: in-flight commits finish and are acked'];

beforeEach((context) => {
  if (READS_THE_ROWS.some((name) => context.task.name.startsWith(name))) context.skip();
});
