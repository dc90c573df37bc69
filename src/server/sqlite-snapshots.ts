/**
 * Space snapshots on the SQLite server storage (storage.ts SnapshotStore; snapshotter.ts).
 *
 * Invariants:
 * 1. One table, `space_snapshots`, created with CREATE TABLE IF NOT EXISTS and no new layout:
 *    a server of the previous code never reads it and opens the file as before, and this code
 *    opens a file made by the previous one by adding the table.
 * 2. `put` writes the new snapshot and deletes the set's others (but `keep`) in one
 *    transaction: a crash leaves the old ones or the new set, never neither.
 * 3. Written with `synchronous=NORMAL`, as checkpoints are (sqlite.ts invariant 5): a power loss
 *    may lose the newest snapshot, which the snapshotter builds again; never an event.
 */
import type Database from 'better-sqlite3';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import { decodeSnapshotBody, encodeSnapshotBody } from './snapshot-codec.ts';
import type { SnapshotStore, StoredSnapshotMeta } from './storage.ts';

export const SNAPSHOT_SCHEMA = `
CREATE TABLE IF NOT EXISTS space_snapshots (
  space TEXT NOT NULL,
  projection_set TEXT NOT NULL,
  pos INTEGER NOT NULL,
  cursor TEXT NOT NULL,
  count INTEGER NOT NULL,
  versions TEXT NOT NULL,
  deflated INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (space, projection_set, pos)
);
`;

interface MetaRow {
  projection_set: string;
  pos: number;
  cursor: string;
  count: number;
  versions: string;
}

/** `run` wraps each call: it checks the storage is open and words failures as StorageErrors. */
export function sqliteSnapshots(
  db: Database.Database,
  run: <T>(operation: string, fn: () => T) => T,
): SnapshotStore {
  db.exec(SNAPSHOT_SCHEMA);
  const list = db.prepare<[string], MetaRow>(
    'SELECT projection_set, pos, cursor, count, versions FROM space_snapshots WHERE space = ? ORDER BY pos DESC',
  );
  const read = db.prepare<[string, string, number], MetaRow & { deflated: number; body: Buffer }>(
    'SELECT projection_set, pos, cursor, count, versions, deflated, body FROM space_snapshots WHERE space = ? AND projection_set = ? AND pos = ?',
  );
  const insert = db.prepare<[string, string, number, string, number, string, number, Buffer]>(
    'INSERT OR REPLACE INTO space_snapshots (space, projection_set, pos, cursor, count, versions, deflated, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const positions = db.prepare<[string, string], { pos: number }>(
    'SELECT pos FROM space_snapshots WHERE space = ? AND projection_set = ?',
  );
  const remove = db.prepare<[string, string, number]>(
    'DELETE FROM space_snapshots WHERE space = ? AND projection_set = ? AND pos = ?',
  );
  const drop = db.prepare<[string, string]>(
    'DELETE FROM space_snapshots WHERE space = ? AND projection_set = ?',
  );
  const syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
  const syncFull = db.prepare('PRAGMA synchronous = FULL');
  /** invariant 3: the pragma cannot change inside a transaction, so it brackets it. */
  const relaxed = <T>(fn: () => T): T => {
    syncNormal.run();
    try {
      return fn();
    } finally {
      syncFull.run();
    }
  };
  const putTx = db.transaction(
    (
      space: string,
      set: string,
      snapshot: SpaceSnapshot,
      keep: readonly number[],
      body: {
        bytes: Buffer;
        deflated: boolean;
      },
    ) => {
      const versions: ProjectionVersion[] = snapshot.projections.map((p) => ({
        name: p.name,
        version: p.version,
      }));
      insert.run(
        space,
        set,
        snapshot.pos,
        snapshot.cursor,
        snapshot.count,
        JSON.stringify(versions),
        body.deflated ? 1 : 0,
        body.bytes,
      );
      const kept = new Set([...keep, snapshot.pos]);
      for (const { pos } of positions.all(space, set)) {
        if (!kept.has(pos)) remove.run(space, set, pos);
      }
    },
  );
  const metaOf = (row: MetaRow): StoredSnapshotMeta => ({
    set: row.projection_set,
    pos: row.pos,
    cursor: row.cursor,
    count: row.count,
    versions: JSON.parse(row.versions) as ProjectionVersion[],
  });
  return {
    async list(space) {
      return run('snapshots.list', () => list.all(space).map(metaOf));
    },
    async read(space, set, pos) {
      const row = run('snapshots.read', () => read.get(space, set, pos));
      if (row === undefined) return undefined;
      const body = await decodeSnapshotBody(row.body, row.deflated === 1);
      return { pos: row.pos, cursor: row.cursor, count: row.count, ...body };
    },
    async put(space, set, snapshot, keep) {
      const body = await encodeSnapshotBody(snapshot);
      run('snapshots.put', () => relaxed(() => putTx(space, set, snapshot, keep, body)));
    },
    async drop(space, set) {
      run('snapshots.drop', () => relaxed(() => drop.run(space, set)));
    },
  };
}
