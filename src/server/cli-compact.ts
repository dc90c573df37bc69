/**
 * `chronicle-server compact`: the operator's command that runs a storage's compactor to
 * completion (issue 18; storage.ts compact) and prints what it moved, as one JSON line:
 *
 *   npx chronicle-server compact [--data ./data/chronicle.sqlite | --postgres postgres://…] [--vacuum]
 *
 * The server compacts by itself in the background; this is for a file migrated from before
 * blocks, before a backup, or to see the figures. It may run beside a server on the same file
 * or database: each block is its own transaction.
 */
import { parseArgs } from 'node:util';
import { STORAGE_FLAGS, type StorageTarget, storageTarget } from './cli-storage-target.ts';
import { loadSqlite } from './peers.ts';
import { postgresStorage } from './postgres.ts';
import { sqliteStorage } from './sqlite.ts';
import type { CompactionReport } from './storage.ts';

export const COMPACT_USAGE = `Usage: chronicle-server compact [--data ./data/chronicle.sqlite | --sqlite <same>
                                | --postgres postgres://user@host/db [--postgres-schema chronicle]]
                                [--vacuum]
  --vacuum (SQLite) then rewrites the file without its free pages (VACUUM): for a file written
           before blocks, whose freed rows stay in it otherwise. Stop the server first: VACUUM
           holds the file's write lock until it ends.
Environment: CHRONICLE_DATA, CHRONICLE_POSTGRES, CHRONICLE_POSTGRES_SCHEMA`;

/** Reads the compact command's flags; throws a TypeError with its usage on bad input. */
export function parseCompactArgs(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaultData: string,
): StorageTarget & { vacuum: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...STORAGE_FLAGS,
      vacuum: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new TypeError(COMPACT_USAGE);
  return { ...storageTarget(values, env, defaultData), vacuum: values.vacuum === true };
}

/** Runs the command; the exit code says how it went (2: bad flags or no compactor). */
export async function compactCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaultData: string,
): Promise<void> {
  let target: ReturnType<typeof parseCompactArgs>;
  try {
    target = parseCompactArgs(argv, env, defaultData);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  const storage =
    'postgres' in target
      ? postgresStorage(
          target.postgres,
          target.schema === undefined ? {} : { schema: target.schema },
        )
      : sqliteStorage(target.data);
  try {
    if (storage.compact === undefined) {
      process.stderr.write(`chronicle-server compact: ${storage.name} does not compact\n`);
      process.exitCode = 2;
      return;
    }
    const started = performance.now();
    const report: CompactionReport = await storage.compact();
    await storage.close();
    const bytes = 'data' in target && target.vacuum ? vacuumSqlite(target.data) : {};
    const total = Math.round(performance.now() - started) / 1000;
    process.stdout.write(
      `${JSON.stringify({ storage: storage.name, ...report, ...bytes, seconds: total })}\n`,
    );
  } finally {
    await storage.close();
  }
}

/**
 * VACUUM, with incremental auto-vacuum turned on first (it takes effect in the rewrite), so that
 * the compactor gives free pages back by itself from then on (sqlite-compactor.ts 5).
 */
function vacuumSqlite(path: string): { bytesBefore: number; bytesAfter: number } {
  const Sqlite = loadSqlite();
  const db = new Sqlite(path, { fileMustExist: true });
  try {
    const size = () =>
      (db.pragma('page_count', { simple: true }) as number) *
      (db.pragma('page_size', { simple: true }) as number);
    const bytesBefore = size();
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
    return { bytesBefore, bytesAfter: size() };
  } finally {
    db.close();
  }
}
