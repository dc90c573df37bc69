/**
 * The SQLite replica's schema (sqlite.ts), created by the first handle that opens the file.
 *
 *   log_events    one row per event: pos (the rowid: receive order), id (unique), replica and
 *                 seq (unique together: a slot, core/copies.ts), stream, version, cursor (the
 *                 total order), body (the event's JSON without those fields: type, data,
 *                 meta, schema, hlc, time; a body holding every field reads the same)
 *   log_state     one row: the replica id, epoch, counters (seq, pos, clock), the signing
 *                 identity's JSON, and `gen`, which every write of log_events moves
 *   log_streams   stream → version (the largest the stream holds, core/append.ts invariant 4)
 *                 and its conflict flag
 *   log_meta      getMeta/setMeta, JSON text (the replica's own bookkeeping is in log_state)
 *   log_snapshots [projection, version, cursor] → pos, count, state (v8-serialised: the
 *                 structured clone IndexedDB keeps, so a Map or Date in a state survives)
 *
 * Invariants:
 * 1. The replica id, epoch and zeroed counters are inserted (OR IGNORE) in the transaction that
 *    creates the tables: every handle, in any process, reads the same ones.
 * 2. The file carries Chronicle's application_id; a file with another one, or with tables but
 *    none (another program's database, a sync server's file), is refused, never written to.
 * 3. Ids and slots are unique by index: a write that would reuse one fails as a whole (the plan
 *    of core/append.ts takes a held loser out before its winner is written).
 */
import type Database from 'better-sqlite3';
import { StorageError } from '../core/errors.ts';
import { ReplicaId } from '../core/ids.ts';

/** 'Chr1': the replica file's application_id (invariant 2). */
export const APPLICATION_ID = 0x43687231;
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS log_events (
  pos INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  replica TEXT NOT NULL,
  seq INTEGER NOT NULL,
  stream TEXT NOT NULL,
  version INTEGER NOT NULL,
  cursor TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_events_id ON log_events (id);
CREATE UNIQUE INDEX IF NOT EXISTS log_events_slot ON log_events (replica, seq);
CREATE INDEX IF NOT EXISTS log_events_cursor ON log_events (cursor);
CREATE INDEX IF NOT EXISTS log_events_stream ON log_events (stream, cursor);
CREATE TABLE IF NOT EXISTS log_state (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  replica TEXT NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  wall INTEGER NOT NULL,
  counter INTEGER NOT NULL,
  identity TEXT,
  gen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_streams (
  stream TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  conflicted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_snapshots (
  projection TEXT NOT NULL,
  version INTEGER NOT NULL,
  cursor TEXT NOT NULL,
  pos INTEGER NOT NULL,
  count INTEGER NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (projection, version, cursor)
) WITHOUT ROWID;
`;

/** Creates the schema when the file has none, in one write transaction (invariants 1, 2). */
export function ensureSchema(db: Database.Database, path: string): void {
  db.transaction(() => {
    const id = db.pragma('application_id', { simple: true }) as number;
    if (id === 0) {
      const tables = db
        .prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
        .get() as { n: number };
      if (tables.n > 0) throw notReplica(path);
      db.exec(SCHEMA);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } else if (id !== APPLICATION_ID) {
      throw notReplica(path);
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StorageError(
        'STORAGE_UNAVAILABLE',
        `the replica file ${path} has schema version ${version}, newer than this Chronicle (${SCHEMA_VERSION}): upgrade the package`,
        { path, version },
      );
    }
    db.prepare(
      'INSERT OR IGNORE INTO log_state (one, replica, epoch, seq, pos, wall, counter, gen) VALUES (1, ?, ?, 0, 0, 0, 0, 0)',
    ).run(ReplicaId.make(), ReplicaId.make());
  }).immediate();
}

function notReplica(path: string): StorageError {
  return new StorageError(
    'STORAGE_UNAVAILABLE',
    `${path} is not a Chronicle replica file (another program's SQLite database, or a sync server's): give the replica a file of its own`,
    { path },
  );
}
