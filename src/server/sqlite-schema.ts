/**
 * The SQLite server storage's tables (sqlite.ts) and the statements it prepares once per
 * database. One file holds every space: rows are keyed by space first. `events` holds the hot
 * tail of each log, one row an event; what the compactor sealed is in the block tables
 * (sqlite-blocks.ts).
 */
import type Database from 'better-sqlite3';
import type { StoredRow } from './sqlite-rows.ts';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  space TEXT NOT NULL,
  pos INTEGER NOT NULL,
  id TEXT NOT NULL,
  replica TEXT NOT NULL,
  seq INTEGER NOT NULL,
  stream TEXT NOT NULL,
  cursor TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (space, pos)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (space, id);
CREATE TABLE IF NOT EXISTS checkpoints (
  space TEXT NOT NULL,
  peer TEXT NOT NULL,
  checkpoint TEXT NOT NULL,
  PRIMARY KEY (space, peer)
);
CREATE TABLE IF NOT EXISTS strict_heads (
  space TEXT NOT NULL,
  stream TEXT NOT NULL,
  version INTEGER NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (space, stream)
);
CREATE TABLE IF NOT EXISTS strict_rejections (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  seq INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (space, replica, seq)
);
CREATE TABLE IF NOT EXISTS owners (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  sub TEXT NOT NULL,
  PRIMARY KEY (space, replica)
);
CREATE TABLE IF NOT EXISTS publish_positions (
  publisher TEXT NOT NULL,
  space TEXT NOT NULL,
  pos INTEGER NOT NULL,
  PRIMARY KEY (publisher, space)
);
CREATE TABLE IF NOT EXISTS replica_keys (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  key TEXT NOT NULL,
  sub TEXT NOT NULL,
  PRIMARY KEY (space, replica)
);
`;

/**
 * Layout 2 (issue 18: blocks): the spaces live in `space_log`, which gives each an integer key
 * (`sid`) for the block tables, and `spaces` becomes a view of it. Reading it still works, and
 * so does updating a head (a trigger); but a server of layout 1 prepares an INSERT into `spaces`
 * when it opens the file, which a view refuses: an older server refuses a file whose events it
 * could not all see, instead of serving a log with its sealed part missing. One transaction: a
 * crash leaves layout 1 or layout 2, never a mix. Runs before SCHEMA.
 */
export function migrateSpaces(db: Database.Database): void {
  const kindOf = db.prepare<[], { type: string }>(
    "SELECT type FROM sqlite_master WHERE name = 'spaces'",
  );
  if (kindOf.get()?.type === 'view') return;
  db.transaction(() => {
    // Again under the write lock: another process may have migrated meanwhile.
    const kind = kindOf.get()?.type;
    if (kind === 'view') return;
    db.exec(`
CREATE TABLE space_log (
  sid INTEGER PRIMARY KEY,
  space TEXT NOT NULL UNIQUE,
  replica TEXT NOT NULL,
  epoch TEXT NOT NULL,
  head INTEGER NOT NULL DEFAULT 0
);`);
    if (kind === 'table') {
      db.exec(
        'INSERT INTO space_log (space, replica, epoch, head) SELECT space, replica, epoch, head FROM spaces ORDER BY space; DROP TABLE spaces;',
      );
    }
    db.exec(`
CREATE VIEW spaces AS SELECT space, replica, epoch, head FROM space_log;
CREATE TRIGGER spaces_head INSTEAD OF UPDATE OF head ON spaces
BEGIN UPDATE space_log SET head = NEW.head WHERE space = OLD.space; END;`);
  }).immediate();
}

/**
 * The (replica, seq) index (core/copies.ts). Unique, so that an ingest's first, lookup-free
 * attempt fails on a reused (replica, seq) as on a held id; a file whose rows already hold a
 * (replica, seq) twice (written before this index) gets a plain index instead and still opens:
 * its ingests then always look slots up. Returns whether the index is unique.
 */
export function createSlotIndex(db: Database.Database): boolean {
  const unique = db
    .prepare<[], { unique: number }>(
      "SELECT \"unique\" FROM pragma_index_list('events') WHERE name IN ('events_by_slot', 'events_by_slot_plain')",
    )
    .get();
  if (unique !== undefined) return unique.unique === 1;
  try {
    db.exec('CREATE UNIQUE INDEX events_by_slot ON events (space, replica, seq)');
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw error;
    db.exec('CREATE INDEX IF NOT EXISTS events_by_slot_plain ON events (space, replica, seq)');
    return false;
  }
}

type Statement<Params extends unknown[], Row = unknown> = Database.Statement<Params, Row>;

/** The statements of one database, prepared once (named, so declarations can spell them). */
export interface Statements {
  getSpace: Statement<[string], { sid: number; replica: string; epoch: string; head: number }>;
  insertSpace: Statement<[string, string, string]>;
  getHead: Statement<[string], { head: number }>;
  setHead: Statement<[number, string]>;
  deleteAtPos: Statement<[string, number]>;
  readByPos: Statement<[string, number, number], StoredRow>;
  idAtPos: Statement<[string, number], { id: string }>;
  getCheckpoint: Statement<[string, string], { checkpoint: string }>;
  setCheckpoint: Statement<[string, string, string]>;
  syncNormal: Statement<unknown[]>;
  syncFull: Statement<unknown[]>;
  getOwner: Statement<[string, string], { sub: string }>;
  insertOwner: Statement<[string, string, string]>;
  eventAtSlot: Statement<[string, string, number], StoredRow>;
  getReplicaKey: Statement<[string, string], { key: string }>;
  bindReplicaKey: Statement<[string, string, string, string]>;
  anyStrictHead: Statement<[string], { found: number }>;
  getStrictHead: Statement<[string, string], { version: number; id: string }>;
  setStrictHead: Statement<[string, string, number, string]>;
  keepRejection: Statement<[string, string, number, string]>;
  rejectionsOf: Statement<[string, string, number], { body: string }>;
  forgetRejections: Statement<[string, string, number]>;
  listSpaces: Statement<[], { space: string; head: number }>;
  publishedPositions: Statement<[string], { space: string; pos: number }>;
  setPublishedPos: Statement<[string, string, number]>;
}

export function prepareAll(db: Database.Database): Statements {
  return {
    getSpace: db.prepare<[string], { sid: number; replica: string; epoch: string; head: number }>(
      'SELECT sid, replica, epoch, head FROM space_log WHERE space = ?',
    ),
    insertSpace: db.prepare<[string, string, string]>(
      'INSERT OR IGNORE INTO space_log (space, replica, epoch, head) VALUES (?, ?, ?, 0)',
    ),
    getHead: db.prepare<[string], { head: number }>('SELECT head FROM space_log WHERE space = ?'),
    setHead: db.prepare<[number, string]>('UPDATE space_log SET head = ? WHERE space = ?'),
    deleteAtPos: db.prepare<[string, number]>('DELETE FROM events WHERE space = ? AND pos = ?'),
    readByPos: db.prepare<[string, number, number], StoredRow>(
      'SELECT pos, id, replica, seq, stream, cursor, body FROM events WHERE space = ? AND pos > ? ORDER BY pos LIMIT ?',
    ),
    idAtPos: db.prepare<[string, number], { id: string }>(
      'SELECT id FROM events WHERE space = ? AND pos = ?',
    ),
    getCheckpoint: db.prepare<[string, string], { checkpoint: string }>(
      'SELECT checkpoint FROM checkpoints WHERE space = ? AND peer = ?',
    ),
    setCheckpoint: db.prepare<[string, string, string]>(
      'INSERT INTO checkpoints (space, peer, checkpoint) VALUES (?, ?, ?) ON CONFLICT (space, peer) DO UPDATE SET checkpoint = excluded.checkpoint',
    ),
    syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
    syncFull: db.prepare('PRAGMA synchronous = FULL'),
    getOwner: db.prepare<[string, string], { sub: string }>(
      'SELECT sub FROM owners WHERE space = ? AND replica = ?',
    ),
    insertOwner: db.prepare<[string, string, string]>(
      'INSERT INTO owners (space, replica, sub) VALUES (?, ?, ?)',
    ),
    eventAtSlot: db.prepare<[string, string, number], StoredRow>(
      'SELECT pos, id, replica, seq, stream, cursor, body FROM events WHERE space = ? AND replica = ? AND seq = ?',
    ),
    getReplicaKey: db.prepare<[string, string], { key: string }>(
      'SELECT key FROM replica_keys WHERE space = ? AND replica = ?',
    ),
    bindReplicaKey: db.prepare<[string, string, string, string]>(
      'INSERT OR IGNORE INTO replica_keys (space, replica, key, sub) VALUES (?, ?, ?, ?)',
    ),
    anyStrictHead: db.prepare<[string], { found: number }>(
      'SELECT 1 AS found FROM strict_heads WHERE space = ? LIMIT 1',
    ),
    getStrictHead: db.prepare<[string, string], { version: number; id: string }>(
      'SELECT version, id FROM strict_heads WHERE space = ? AND stream = ?',
    ),
    setStrictHead: db.prepare<[string, string, number, string]>(
      'INSERT INTO strict_heads (space, stream, version, id) VALUES (?, ?, ?, ?) ON CONFLICT (space, stream) DO UPDATE SET version = excluded.version, id = excluded.id',
    ),
    keepRejection: db.prepare<[string, string, number, string]>(
      'INSERT OR REPLACE INTO strict_rejections (space, replica, seq, body) VALUES (?, ?, ?, ?)',
    ),
    rejectionsOf: db.prepare<[string, string, number], { body: string }>(
      'SELECT body FROM strict_rejections WHERE space = ? AND replica = ? AND seq > ? ORDER BY seq LIMIT 10000',
    ),
    forgetRejections: db.prepare<[string, string, number]>(
      'DELETE FROM strict_rejections WHERE space = ? AND replica = ? AND seq <= ?',
    ),
    listSpaces: db.prepare<[], { space: string; head: number }>(
      'SELECT space, head FROM space_log ORDER BY space',
    ),
    publishedPositions: db.prepare<[string], { space: string; pos: number }>(
      'SELECT space, pos FROM publish_positions WHERE publisher = ?',
    ),
    // storage.ts invariant 6: a position never moves back.
    setPublishedPos: db.prepare<[string, string, number]>(
      'INSERT INTO publish_positions (publisher, space, pos) VALUES (?, ?, ?) ON CONFLICT (publisher, space) DO UPDATE SET pos = excluded.pos WHERE excluded.pos > publish_positions.pos',
    ),
  };
}
