/**
 * The `snapshots` store of the IndexedDB adapter (schema in indexeddb.ts): projection snapshots,
 * keyed [projection, version, cursor]. They are a cache derived from the log, in transactions of
 * their own: the log's transactions (indexeddb.ts invariant 1) never include this store.
 */
import type { SnapshotMeta, SnapshotRecord } from './adapter.ts';
import type { IdbConnection } from './idb-connection.ts';

/** One handle's snapshot reads and writes, through its connection (failures translated). */
export class IdbSnapshots {
  private readonly conn: IdbConnection;

  constructor(conn: IdbConnection) {
    this.conn = conn;
  }

  async put(snapshot: SnapshotRecord): Promise<void> {
    // Snapshots are a cache derived from the log: losing the last one on an OS crash costs a
    // longer replay, never data, so they do not pay for a flush to disk.
    await this.conn.write(
      'putSnapshot',
      ['snapshots'],
      async (tx) => {
        tx.objectStore('snapshots').put(snapshot);
      },
      'relaxed',
    );
  }

  async list(projection: string, version: number): Promise<SnapshotMeta[]> {
    return this.conn.read('listSnapshots', async (db) => {
      const out: SnapshotMeta[] = [];
      const range = IDBKeyRange.bound([projection, version], [projection, version, []]);
      // A cursor, not getAll: only one snapshot state is held at a time.
      let cursor = await db.transaction('snapshots').store.openCursor(range);
      while (cursor !== null) {
        const { state: _state, ...meta } = cursor.value;
        out.push(meta);
        cursor = await cursor.continue();
      }
      return out;
    });
  }

  async get(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined> {
    return this.conn.read('getSnapshot', (db) =>
      db.get('snapshots', [projection, version, cursor]),
    );
  }

  /** Deletes the listed snapshots of `projection`, or all of them (any version) if none listed. */
  async delete(
    projection: string,
    which?: readonly { version: number; cursor: string }[],
  ): Promise<void> {
    await this.conn.write('deleteSnapshots', ['snapshots'], async (tx) => {
      const store = tx.objectStore('snapshots');
      if (which === undefined) {
        // Versions are numbers, and every array sorts after every number.
        store.delete(IDBKeyRange.bound([projection], [projection, []]));
        return;
      }
      for (const w of which) store.delete([projection, w.version, w.cursor]);
    });
  }
}
