/**
 * `chronicle-server compact`: the operator's command that runs a storage's compactor to
 * completion (issue 18; storage.ts compact) and prints what it moved, as one JSON line:
 *
 *   npx chronicle-server compact [--data ./data/chronicle.sqlite | --postgres postgres://…]
 *
 * The server compacts by itself in the background; this is for a file migrated from before
 * blocks, before a backup, or to see the figures. It may run beside a server on the same file
 * or database: each block is its own transaction.
 */
import { parseArgs } from 'node:util';
import { postgresStorage } from './postgres.ts';
import { sqliteStorage } from './sqlite.ts';
import type { CompactionReport } from './storage.ts';

export const COMPACT_USAGE = `Usage: chronicle-server compact [--data ./data/chronicle.sqlite | --sqlite <same>
                                | --postgres postgres://user@host/db]
Environment: CHRONICLE_DATA, CHRONICLE_POSTGRES`;

/** Reads the compact command's flags; throws a TypeError with its usage on bad input. */
export function parseCompactArgs(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaultData: string,
): { data: string } | { postgres: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      sqlite: { type: 'string' },
      postgres: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new TypeError(COMPACT_USAGE);
  const postgres = (values.postgres ?? env.CHRONICLE_POSTGRES) || undefined;
  const data = values.data ?? values.sqlite;
  if (postgres !== undefined && data === undefined) return { postgres };
  return { data: data ?? env.CHRONICLE_DATA ?? defaultData };
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
    'postgres' in target ? postgresStorage(target.postgres) : sqliteStorage(target.data);
  try {
    if (storage.compact === undefined) {
      process.stderr.write(`chronicle-server compact: ${storage.name} does not compact\n`);
      process.exitCode = 2;
      return;
    }
    const started = performance.now();
    const report: CompactionReport = await storage.compact();
    const seconds = Math.round(performance.now() - started) / 1000;
    process.stdout.write(`${JSON.stringify({ storage: storage.name, ...report, seconds })}\n`);
  } finally {
    await storage.close();
  }
}
