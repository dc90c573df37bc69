/**
 * The storage an operator command works on (`chronicle-server compact`, `archive`): the same
 * flags and environment as the server's own, read the same way by every command.
 *
 * Invariants:
 * 1. `--postgres` (or CHRONICLE_POSTGRES) wins only when no SQLite file was named with
 *    `--data`/`--sqlite`; otherwise the SQLite file is `--data`, CHRONICLE_DATA, or the default.
 * 2. `--postgres-schema` (or CHRONICLE_POSTGRES_SCHEMA) names the PostgreSQL schema, checked here
 *    (a bad name fails at start with the usage, not at the first query); it is refused without
 *    PostgreSQL, where it would silently mean nothing.
 */
import { isValidSchemaName } from './postgres-schema.ts';

/** The flags of a storage, for node:util parseArgs. */
export const STORAGE_FLAGS = {
  data: { type: 'string' },
  sqlite: { type: 'string' },
  postgres: { type: 'string' },
  'postgres-schema': { type: 'string' },
} as const;

export type StorageTarget = { data: string } | { postgres: string; schema?: string };

export interface StorageFlagValues {
  data?: string | undefined;
  sqlite?: string | undefined;
  postgres?: string | undefined;
  'postgres-schema'?: string | undefined;
}

/** The storage that parsed flags and the environment name (invariant 1). */
export function storageTarget(
  values: StorageFlagValues,
  env: NodeJS.ProcessEnv,
  defaultData: string,
): StorageTarget {
  const postgres = (values.postgres ?? env.CHRONICLE_POSTGRES) || undefined;
  const data = values.data ?? values.sqlite;
  const onPostgres = postgres !== undefined && data === undefined;
  const schema = postgresSchema(values, env, onPostgres);
  if (onPostgres) return schema === undefined ? { postgres } : { postgres, schema };
  return { data: data ?? env.CHRONICLE_DATA ?? defaultData };
}

/**
 * The PostgreSQL schema named by flag or environment, checked (invariant 2); undefined on SQLite
 * (`onPostgres` false), where the flag is refused and the environment's name means nothing.
 */
export function postgresSchema(
  values: StorageFlagValues,
  env: NodeJS.ProcessEnv,
  onPostgres: boolean,
): string | undefined {
  if (!onPostgres) {
    if (values['postgres-schema'] === undefined) return undefined;
    throw new TypeError('--postgres-schema needs --postgres (the storage is SQLite)');
  }
  const schema = (values['postgres-schema'] ?? env.CHRONICLE_POSTGRES_SCHEMA) || undefined;
  if (schema !== undefined && !isValidSchemaName(schema)) {
    throw new TypeError(
      `--postgres-schema must be a lower-case SQL identifier (letters, digits, _), got ${JSON.stringify(schema)}`,
    );
  }
  return schema;
}
