/**
 * Space snapshots on the PostgreSQL server storage (storage.ts SnapshotStore; snapshotter.ts).
 *
 * Invariants:
 * 1. One table, `space_snapshots`, created by postgres-schema.ts with CREATE TABLE IF NOT EXISTS
 *    and no new layout: servers of the previous code never read it, so a rolling upgrade mixes
 *    them freely.
 * 2. `put` writes the new snapshot and deletes the set's others (but `keep`) in one
 *    transaction: a crash leaves the old ones or the new set, never neither.
 * 3. The body is stored as made (deflated already when large): EXTERNAL keeps PostgreSQL from
 *    compressing it again.
 */
import type { PoolClient } from 'pg';
import type { ProjectionVersion } from '../core/space-snapshot.ts';
import { key } from './postgres-rows.ts';
import { decodeSnapshotBody, encodeSnapshotBody } from './snapshot-codec.ts';
import type { SnapshotStore, StoredSnapshotMeta } from './storage.ts';

/** The DDL postgres-schema.ts runs (invariant 1). */
export function snapshotDdl(s: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${s}.space_snapshots (
  space TEXT NOT NULL,
  projection_set TEXT NOT NULL,
  pos BIGINT NOT NULL,
  cursor TEXT NOT NULL,
  count BIGINT NOT NULL,
  versions TEXT NOT NULL,
  deflated BOOLEAN NOT NULL,
  body BYTEA NOT NULL,
  PRIMARY KEY (space, projection_set, pos)
);
DO $$ BEGIN
  IF (SELECT attstorage FROM pg_attribute
      WHERE attrelid = '${s}.space_snapshots'::regclass AND attname = 'body') <> 'e' THEN
    ALTER TABLE ${s}.space_snapshots ALTER COLUMN body SET STORAGE EXTERNAL;
  END IF;
END $$;
`;
}

interface MetaRow {
  projection_set: string;
  pos: string;
  cursor: string;
  count: string;
  versions: string;
}

export interface PostgresSnapshotsContext {
  schema: string;
  /** Ensures the schema exists and runs `fn` on a pooled connection (postgres.ts run). */
  run<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T>;
  /** The same inside BEGIN ... COMMIT. */
  transaction<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T>;
}

export function postgresSnapshots(context: PostgresSnapshotsContext): SnapshotStore {
  const t = `${context.schema}.space_snapshots`;
  const metaOf = (row: MetaRow): StoredSnapshotMeta => ({
    set: row.projection_set,
    pos: Number(row.pos),
    cursor: row.cursor,
    count: Number(row.count),
    versions: JSON.parse(row.versions) as ProjectionVersion[],
  });
  return {
    async list(space) {
      const rows = await context.run('snapshots.list', (c) =>
        c.query<MetaRow>(
          `SELECT projection_set, pos, cursor, count, versions FROM ${t}
           WHERE space = $1 ORDER BY pos DESC`,
          [key(space)],
        ),
      );
      return rows.rows.map(metaOf);
    },
    async read(space, set, pos) {
      const rows = await context.run('snapshots.read', (c) =>
        c.query<MetaRow & { deflated: boolean; body: Buffer }>(
          `SELECT projection_set, pos, cursor, count, versions, deflated, body FROM ${t}
           WHERE space = $1 AND projection_set = $2 AND pos = $3`,
          [key(space), set, pos],
        ),
      );
      const row = rows.rows[0];
      if (row === undefined) return undefined;
      const body = await decodeSnapshotBody(row.body, row.deflated);
      return { pos: Number(row.pos), cursor: row.cursor, count: Number(row.count), ...body };
    },
    async put(space, set, snapshot, keep) {
      const body = await encodeSnapshotBody(snapshot);
      const versions = snapshot.projections.map((p) => ({ name: p.name, version: p.version }));
      await context.transaction('snapshots.put', async (c) => {
        await c.query(
          `INSERT INTO ${t} (space, projection_set, pos, cursor, count, versions, deflated, body)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (space, projection_set, pos) DO UPDATE SET cursor = excluded.cursor,
             count = excluded.count, versions = excluded.versions, deflated = excluded.deflated,
             body = excluded.body`,
          [
            key(space),
            set,
            snapshot.pos,
            snapshot.cursor,
            snapshot.count,
            JSON.stringify(versions),
            body.deflated,
            body.bytes,
          ],
        );
        await c.query(
          `DELETE FROM ${t} WHERE space = $1 AND projection_set = $2 AND NOT (pos = ANY($3::bigint[]))`,
          [key(space), set, [...keep, snapshot.pos]],
        );
      });
    },
    async drop(space, set) {
      await context.run('snapshots.drop', (c) =>
        c.query(`DELETE FROM ${t} WHERE space = $1 AND projection_set = $2`, [key(space), set]),
      );
    },
  };
}
