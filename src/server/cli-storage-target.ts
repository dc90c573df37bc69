/**
 * The storage an operator command works on (`chronicle-server compact`, `archive`): the same
 * flags and environment as the server's own, read the same way by every command.
 *
 * Invariants:
 * 1. `--postgres` (or CHRONICLE_POSTGRES) wins only when no SQLite file was named with
 *    `--data`/`--sqlite`; otherwise the SQLite file is `--data`, CHRONICLE_DATA, or the default.
 */

/** The flags of a storage, for node:util parseArgs. */
export const STORAGE_FLAGS = {
  data: { type: 'string' },
  sqlite: { type: 'string' },
  postgres: { type: 'string' },
} as const;

export type StorageTarget = { data: string } | { postgres: string };

/** The storage that parsed flags and the environment name (invariant 1). */
export function storageTarget(
  values: { data?: string | undefined; sqlite?: string | undefined; postgres?: string | undefined },
  env: NodeJS.ProcessEnv,
  defaultData: string,
): StorageTarget {
  const postgres = (values.postgres ?? env.CHRONICLE_POSTGRES) || undefined;
  const data = values.data ?? values.sqlite;
  if (postgres !== undefined && data === undefined) return { postgres };
  return { data: data ?? env.CHRONICLE_DATA ?? defaultData };
}
