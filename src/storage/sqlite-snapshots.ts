/**
 * Projection snapshots in the SQLite replica (sqlite-schema.ts log_snapshots). A state is kept
 * v8-serialised, the structured clone that IndexedDB and the memory adapter keep, so what a
 * projection folds (a Map, a Date) reads back as it was put.
 */
import { deserialize, serialize } from 'node:v8';
import type Database from 'better-sqlite3';
import type { SnapshotMeta, SnapshotRecord } from './adapter.ts';

interface Row extends SnapshotMeta {
  state: Buffer;
}

export class SqliteSnapshots {
  private readonly st;

  constructor(db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
    this.st = {
      put: p(
        'INSERT OR REPLACE INTO log_snapshots (projection, version, cursor, pos, count, state) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      list: p(
        'SELECT projection, version, cursor, pos, count FROM log_snapshots WHERE projection = ? AND version = ? ORDER BY cursor',
      ),
      get: p(
        'SELECT projection, version, cursor, pos, count, state FROM log_snapshots WHERE projection = ? AND version = ? AND cursor = ?',
      ),
      deleteOne: p('DELETE FROM log_snapshots WHERE projection = ? AND version = ? AND cursor = ?'),
      deleteAll: p('DELETE FROM log_snapshots WHERE projection = ?'),
    };
  }

  put(s: SnapshotRecord): void {
    this.st.put.run(s.projection, s.version, s.cursor, s.pos, s.count, serialize(s.state));
  }

  list(projection: string, version: number): SnapshotMeta[] {
    return this.st.list.all(projection, version) as SnapshotMeta[];
  }

  get(projection: string, version: number, cursor: string): SnapshotRecord | undefined {
    const row = this.st.get.get(projection, version, cursor) as Row | undefined;
    if (row === undefined) return undefined;
    return { ...row, state: deserialize(row.state) as unknown };
  }

  /** The listed snapshots, or every one of `projection` when none are listed. */
  delete(projection: string, which?: readonly { version: number; cursor: string }[]): void {
    if (which === undefined) this.st.deleteAll.run(projection);
    else for (const w of which) this.st.deleteOne.run(projection, w.version, w.cursor);
  }
}
