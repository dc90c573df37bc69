/**
 * `chronicle-server archive`: the operator's command that moves old blocks to cold files, or
 * checks the files recorded (issue 18 part 4; archive-files.ts, sqlite-archive.ts,
 * postgres-archive.ts). It prints one JSON line:
 *
 *   npx chronicle-server archive --before 90d [--to ./data/chronicle.sqlite-archive]
 *                                [--data ./data/chronicle.sqlite | --postgres postgres://… --to <dir>]
 *   npx chronicle-server archive --check [--to <dir>] [--data … | --postgres …]
 *
 * Invariants:
 * 1. It may run beside a server on the same file or database: each file's blocks change in one
 *    transaction, and a block rewritten meanwhile is left in the database (sqlite-archive.ts 2).
 * 2. `--check` exits 1 when a recorded file is missing or damaged; orphans (files of a run that
 *    crashed before recording them, or of one still writing) are listed but are not failures.
 * 3. The directory given to `--to` must be the one the server reads (`--archive`), and its
 *    default is the same on both: `<sqlite file>-archive`; PostgreSQL has no default.
 */
import { parseArgs } from 'node:util';
import { parseAge } from './archive-files.ts';
import { STORAGE_FLAGS, type StorageTarget, storageTarget } from './cli-storage-target.ts';
import { postgresStorage } from './postgres.ts';
import { sqliteStorage } from './sqlite.ts';

export const ARCHIVE_USAGE = `Usage: chronicle-server archive --before <age> [--to <dir>] [--file-blocks 256]
                                [--data ./data/chronicle.sqlite | --postgres postgres://user@host/db
                                 [--postgres-schema chronicle]]
       chronicle-server archive --check [--to <dir>] [--data … | --postgres …]
  --before  moves blocks whose newest event (by its HLC time) is older than this: 90d, 12h, 30m.
  --to      the archive directory; the server must read the same one (--archive).
            Default for SQLite: <data file>-archive; required with --postgres.
  --check   verifies every recorded file's SHA-256; exit 1 if one is missing or damaged.
Environment: CHRONICLE_DATA, CHRONICLE_POSTGRES, CHRONICLE_POSTGRES_SCHEMA, CHRONICLE_ARCHIVE`;

export type ArchiveArgs = StorageTarget & {
  dir: string | undefined;
} & ({ check: true } | { check: false; beforeMs: number; fileBlocks: number | undefined });

/** Reads the archive command's flags; throws a TypeError with its usage on bad input. */
export function parseArchiveArgs(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaultData: string,
): ArchiveArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...STORAGE_FLAGS,
      to: { type: 'string' },
      before: { type: 'string' },
      'file-blocks': { type: 'string' },
      check: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new TypeError(ARCHIVE_USAGE);
  const dir = (values.to ?? env.CHRONICLE_ARCHIVE) || undefined;
  const target = storageTarget(values, env, defaultData);
  if ('postgres' in target && dir === undefined) {
    throw new TypeError(`--to is required with --postgres\n${ARCHIVE_USAGE}`);
  }
  if (values.check === true) return { ...target, dir, check: true };
  if (values.before === undefined) throw new TypeError(`--before or --check\n${ARCHIVE_USAGE}`);
  let age: number;
  try {
    age = parseAge(values.before);
  } catch (error) {
    throw new TypeError(`${(error as Error).message}\n${ARCHIVE_USAGE}`);
  }
  const fileBlocks =
    values['file-blocks'] === undefined ? undefined : Number(values['file-blocks']);
  if (fileBlocks !== undefined && !(Number.isInteger(fileBlocks) && fileBlocks > 0)) {
    throw new TypeError(`--file-blocks must be a positive integer\n${ARCHIVE_USAGE}`);
  }
  return { ...target, dir, check: false, beforeMs: Date.now() - age, fileBlocks };
}

/** Runs the command; the exit code says how it went (1: a damaged archive, 2: bad flags). */
export async function archiveCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaultData: string,
): Promise<void> {
  let args: ArchiveArgs;
  try {
    args = parseArchiveArgs(argv, env, defaultData);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  const options = {
    compaction: false as const,
    ...(args.dir === undefined ? {} : { archiveDir: args.dir }),
  };
  const storage =
    'postgres' in args
      ? postgresStorage(args.postgres, {
          ...options,
          ...(args.schema === undefined ? {} : { schema: args.schema }),
        })
      : sqliteStorage(args.data, options);
  try {
    if (storage.archive === undefined || storage.checkArchive === undefined) {
      process.stderr.write(`chronicle-server archive: ${storage.name} does not archive\n`);
      process.exitCode = 2;
      return;
    }
    const started = performance.now();
    if (args.check) {
      const check = await storage.checkArchive();
      const ok = check.missing.length === 0 && check.damaged.length === 0;
      process.stdout.write(`${JSON.stringify({ storage: storage.name, ok, ...check })}\n`);
      if (!ok) process.exitCode = 1;
      return;
    }
    const report = await storage.archive({
      before: args.beforeMs,
      ...(args.fileBlocks === undefined ? {} : { fileBlocks: args.fileBlocks }),
    });
    const seconds = Math.round(performance.now() - started) / 1000;
    process.stdout.write(`${JSON.stringify({ storage: storage.name, ...report, seconds })}\n`);
  } catch (error) {
    process.stderr.write(
      `chronicle-server archive: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  } finally {
    await storage.close();
  }
}
