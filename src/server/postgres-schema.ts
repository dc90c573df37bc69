/**
 * The PostgreSQL schema of postgresStorage, and the LISTEN connection that carries appends made
 * by other servers on the same database.
 *
 * Invariants:
 * 1. The schema is created idempotently: `CREATE ... IF NOT EXISTS` inside one transaction that
 *    holds an advisory lock named after the schema, so that several servers starting at once do
 *    not race on the catalog; a `schema_version` row records the layout, and a database written
 *    by a newer layout is refused rather than misread.
 * 2. Table names are always qualified with a validated schema name (an identifier of lowercase
 *    letters, digits and `_`), never taken from input unchecked.
 * 3. Every committed append sends one NOTIFY on the schema's channel (one per space a group
 *    appended to, with its new head), inside the ingest transaction, so it is delivered only if,
 *    and after, the append committed.
 * 4. The listener reconnects after losing its connection, and then calls `onReconnect` so that
 *    appends whose notification was lost are still announced (by reading the heads again).
 */

import type pg from 'pg';
import type { PoolClient } from 'pg';
import { loadPg } from './peers.ts';
import { fillUnranged } from './postgres-history.ts';
import { snapshotDdl } from './postgres-snapshots.ts';

/**
 * The layout this code writes and reads. 2: strict_heads and strict_rejections (core/strict.ts), which a server of
 * layout 1 would not keep; a layout 1 database is moved to 2 when a newer server opens it, and
 * servers of layout 1 then refuse to start on it.
 * 3: sealed events (issue 18: postgres-blocks.ts), which a server of layout 2 would not see. The
 * tables are created by every server of this code, but the layout moves to 3 only when one that
 * compacts opens the database (servers of layout 2 then refuse it); one with `compaction: false`
 * leaves a layout 2 database at 2, so that a rolling upgrade can replace every server before any
 * event is sealed (invariant 1).
 */
export const SCHEMA_VERSION = 3;

/** The oldest layout this code still reads as is (when it does not compact). */
const OLDEST_READ = 2;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export function isValidSchemaName(schema: string): boolean {
  return SCHEMA_NAME.test(schema);
}

/** The NOTIFY channel of a schema: servers on other schemas of the database are not woken. */
export function channelOf(schema: string): string {
  return `chronicle_${schema}`;
}

function ddl(s: string, target: number): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.schema_version (
  only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
  version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ${s}.spaces (
  space TEXT PRIMARY KEY,
  replica TEXT NOT NULL,
  epoch TEXT NOT NULL,
  head BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ${s}.events (
  space TEXT NOT NULL,
  pos BIGINT NOT NULL,
  id TEXT NOT NULL,
  replica TEXT NOT NULL,
  seq BIGINT NOT NULL,
  stream TEXT NOT NULL,
  cursor TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (space, pos),
  UNIQUE (space, id)
);
-- (replica, seq) lookups (core/copies.ts). Not unique: a database that already holds a
-- (replica, seq) twice must still open; every ingest looks slots up under the space lock.
CREATE INDEX IF NOT EXISTS events_by_slot ON ${s}.events (space, replica, seq);
CREATE TABLE IF NOT EXISTS ${s}.checkpoints (
  space TEXT NOT NULL,
  peer TEXT NOT NULL,
  checkpoint TEXT NOT NULL,
  PRIMARY KEY (space, peer)
);
-- The accepted end of each strict stream (core/strict.ts), read and moved under the space lock.
CREATE TABLE IF NOT EXISTS ${s}.strict_heads (
  space TEXT NOT NULL,
  stream TEXT NOT NULL,
  version BIGINT NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (space, stream)
);
-- Rejections kept until their replica's hello says it knows (storage.ts rejectionsOf).
CREATE TABLE IF NOT EXISTS ${s}.strict_rejections (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  seq BIGINT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (space, replica, seq)
);
CREATE TABLE IF NOT EXISTS ${s}.owners (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  sub TEXT NOT NULL,
  PRIMARY KEY (space, replica)
);
-- A broker publisher's position per space (publisher.ts). Added without a new layout version:
-- servers that predate it never read it.
CREATE TABLE IF NOT EXISTS ${s}.publish_positions (
  publisher TEXT NOT NULL,
  space TEXT NOT NULL,
  pos BIGINT NOT NULL,
  PRIMARY KEY (publisher, space)
);
CREATE TABLE IF NOT EXISTS ${s}.replica_keys (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  key TEXT NOT NULL,
  sub TEXT NOT NULL,
  PRIMARY KEY (space, replica)
);
-- Sealed events (layout 3, postgres-blocks.ts): blocks of a space's oldest events, stored as
-- they are (deflated already: EXTERNAL keeps PostgreSQL from compressing them again).
CREATE TABLE IF NOT EXISTS ${s}.event_blocks (
  space TEXT NOT NULL,
  last_pos BIGINT NOT NULL,
  first_pos BIGINT NOT NULL,
  n INTEGER NOT NULL,
  ids INTEGER[] NOT NULL,
  bytes BYTEA NOT NULL,
  min_cursor TEXT COLLATE "C",
  max_cursor TEXT COLLATE "C",
  streams INTEGER[],
  PRIMARY KEY (space, last_pos)
);
-- History by cursor (postgres-history.ts), without a new layout: a block sealed by a server
-- that predates it has no range (NULL), which readers handle. Added only when missing, so a
-- start takes no exclusive lock of the table once it is there.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '${s}.event_blocks'::regclass
                 AND attname = 'min_cursor' AND NOT attisdropped) THEN
    ALTER TABLE ${s}.event_blocks ADD COLUMN min_cursor TEXT COLLATE "C",
      ADD COLUMN max_cursor TEXT COLLATE "C", ADD COLUMN streams INTEGER[];
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS events_by_cursor ON ${s}.events (space, cursor COLLATE "C");
CREATE INDEX IF NOT EXISTS event_blocks_by_min_cursor
  ON ${s}.event_blocks (space, min_cursor, last_pos);
CREATE INDEX IF NOT EXISTS event_blocks_by_max_cursor
  ON ${s}.event_blocks (space, max_cursor, last_pos);
CREATE INDEX IF NOT EXISTS event_blocks_unranged
  ON ${s}.event_blocks (space) WHERE min_cursor IS NULL;
DO $$ BEGIN
  IF (SELECT attstorage FROM pg_attribute
      WHERE attrelid = '${s}.event_blocks'::regclass AND attname = 'bytes') <> 'e' THEN
    ALTER TABLE ${s}.event_blocks ALTER COLUMN bytes SET STORAGE EXTERNAL;
  END IF;
END $$;
-- The hashes of the blocks' custom ids; no pending list, so that lookups stay one probe each.
CREATE INDEX IF NOT EXISTS event_blocks_ids ON ${s}.event_blocks USING gin (ids)
  WITH (fastupdate = off);
CREATE TABLE IF NOT EXISTS ${s}.event_runs (
  space TEXT NOT NULL,
  replica TEXT NOT NULL,
  seq_lo BIGINT NOT NULL,
  seq_hi BIGINT NOT NULL,
  last_pos BIGINT NOT NULL,
  PRIMARY KEY (space, replica, seq_hi, last_pos)
);
${snapshotDdl(s)}
INSERT INTO ${s}.schema_version (only_row, version) VALUES (TRUE, ${target})
  ON CONFLICT (only_row) DO NOTHING;
UPDATE ${s}.schema_version SET version = ${OLDEST_READ} WHERE version = 1;
UPDATE ${s}.schema_version SET version = ${target} WHERE version < ${target};
`;
}

/**
 * Runs `fn` inside BEGIN ... COMMIT, rolling back when it throws: every transaction of
 * postgresStorage.
 */
export async function inTransaction<T>(c: PoolClient, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    const result = await fn();
    await c.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await c.query('ROLLBACK');
    } catch {
      // Still inside the failed transaction: a plain Error makes run() (postgres.ts) drop the
      // connection.
      throw new Error(`${error instanceof Error ? error.message : String(error)}; ROLLBACK failed`);
    }
    throw error;
  }
}

/**
 * Creates the schema if needed (invariant 1) and checks its version; `compacting` servers move
 * the layout to SCHEMA_VERSION, others leave a layout they read as it is (SCHEMA_VERSION above).
 */
export async function createSchema(
  client: PoolClient,
  schema: string,
  compacting: boolean,
): Promise<void> {
  await inTransaction(client, async () => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`chronicle:${schema}`]);
    await client.query(ddl(schema, compacting ? SCHEMA_VERSION : OLDEST_READ));
    // Blocks sealed before history get their ranges (postgres-history.ts 17), under the lock.
    await fillUnranged(client, schema);
    const row = await client.query<{ version: number }>(
      `SELECT version FROM ${schema}.schema_version`,
    );
    const version = row.rows[0]?.version;
    if (version === undefined || version < OLDEST_READ || version > SCHEMA_VERSION) {
      throw new Error(
        `schema ${schema} has layout version ${String(version)}, this server reads ${SCHEMA_VERSION}`,
      );
    }
  });
}

/** A notification payload: which space, its new head, and which storage instance wrote it. */
export interface AppendNotice {
  space: string;
  head: number;
  from: string;
}

export function parseNotice(payload: string | undefined): AppendNotice | undefined {
  if (payload === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(payload);
    if (typeof value !== 'object' || value === null) return undefined;
    const { space, head, from } = value as Record<string, unknown>;
    if (typeof space !== 'string' || typeof head !== 'number' || typeof from !== 'string') {
      return undefined;
    }
    return { space, head, from };
  } catch {
    return undefined;
  }
}

/** Delay before the listener tries to connect again after losing its connection. */
const RECONNECT_MS = 1000;

/** One dedicated connection (not from the pool: LISTEN is per session) that hears appends. */
export class AppendListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  private readonly config: pg.ClientConfig;
  private readonly channel: string;
  private readonly onNotice: (notice: AppendNotice) => void;
  private readonly onReconnect: () => void;

  constructor(
    config: pg.ClientConfig,
    channel: string,
    onNotice: (notice: AppendNotice) => void,
    onReconnect: () => void,
  ) {
    this.config = config;
    this.channel = channel;
    this.onNotice = onNotice;
    this.onReconnect = onReconnect;
  }

  /** Connects and listens; rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new (loadPg().Client)(this.config);
    // An error on an idle listening connection must not crash the process: reconnect instead.
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (message.channel !== this.channel) return;
      const notice = parseNotice(message.payload);
      if (notice !== undefined) this.onNotice(notice);
    });
    await client.connect();
    try {
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect().then(
        () => this.onReconnect(),
        () => this.schedule(),
      );
    }, RECONNECT_MS);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
