import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStorage } from '../../src/server/postgres.ts';
import { lockKey } from '../../src/server/postgres-publish.ts';
import { type SqliteStorageOptions, sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { makeEvents } from './events.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema } from './postgres-helpers.ts';
import { runServerStorageConformance, type StorageImplementation } from './storage-conformance.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'chronicle-server-'));
}

// One throwaway cluster for the file; each storage instance gets a schema of its own.
let pg: PostgresServer | undefined;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

/** A SQLite storage on a fresh file, with `options` (and for its reopened and second handles). */
function sqliteFile(options: SqliteStorageOptions = {}) {
  return async () => {
    const dir = tempDir();
    const path = join(dir, 'db.sqlite');
    let storage = sqliteStorage(path, options);
    const others: ServerStorage[] = [];
    return {
      storage,
      async reopen() {
        await storage.close();
        storage = sqliteStorage(path, options);
        return storage;
      },
      second() {
        const other = sqliteStorage(path, options);
        others.push(other);
        return other;
      },
      async cleanup() {
        await storage.close();
        for (const other of others) await other.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

runServerStorageConformance([
  { name: 'sqlite (file)', make: sqliteFile() },
  {
    // Issue 18: every event sealed into blocks right after its ingest, read back from blocks
    // (the recent cache keeps only the last write).
    name: 'sqlite (file, compacting every ingest)',
    make: sqliteFile({ compaction: { tailEvents: 0, eager: true }, recentCacheBytes: 0 }),
  },
  {
    name: 'sqlite (:memory:)',
    async make() {
      return { storage: sqliteStorage(':memory:'), async cleanup() {} };
    },
  },
  postgresImplementation('postgres', (url, schema) =>
    postgresStorage(url, { schema, poolSize: 4, compaction: false }),
  ),
  // Issue 18: the same suite with every event sealed into blocks as soon as it is written.
  postgresImplementation(
    'postgres (compaction: tail 0, compacted after each ingest)',
    (url, schema) =>
      compactedAfterEachIngest(
        postgresStorage(url, {
          schema,
          poolSize: 4,
          compaction: { tailEvents: 0, eager: true, idleMs: 0 },
          // Reads from the database (blocks), not from what the writer keeps of its writes.
          recentCacheBytes: 0,
        }),
      ),
  ),
]);

function postgresImplementation(
  name: string,
  open: (url: string, schema: string) => ServerStorage,
): StorageImplementation {
  return {
    name,
    async make() {
      const url = pg!.url;
      const schema = freshSchema();
      let storage = open(url, schema);
      const others: ServerStorage[] = [];
      return {
        storage,
        async reopen() {
          await storage.close();
          storage = open(url, schema);
          return storage;
        },
        second() {
          const other = open(url, schema);
          others.push(other);
          return other;
        },
        async cleanup() {
          await storage.close();
          for (const other of others) await other.close();
          await dropSchema(url, schema);
        },
      };
    },
  };
}

/** `storage`, whose space logs run its compactor to completion after every ingest. */
function compactedAfterEachIngest(storage: ServerStorage): ServerStorage {
  let closing = false;
  const wrapped = new Map<SpaceLog, SpaceLog>();
  const wrap = (log: SpaceLog): SpaceLog => {
    let out = wrapped.get(log);
    if (out === undefined) {
      out = new Proxy(log, {
        get(target, prop) {
          if (prop === 'ingest') {
            return async (events: Parameters<SpaceLog['ingest']>[0]) => {
              const result = await target.ingest(events);
              // An ingest handed over before close() commits; nothing compacts after it.
              if (!closing) await storage.compact!();
              return result;
            };
          }
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      wrapped.set(log, out);
    }
    return out;
  };
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === 'openSpace') return async (space: string) => wrap(await target.openSpace(space));
      if (prop === 'close') {
        return () => {
          closing = true;
          return target.close();
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('sqliteStorage', () => {
  it('runs in WAL mode with synchronous=FULL (durable commit before ack)', async () => {
    const dir = tempDir();
    const path = join(dir, 'db.sqlite');
    const storage = sqliteStorage(path);
    const log = await storage.openSpace('s');
    await log.ingest(makeEvents(2));
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      // (synchronous is a per-connection setting and cannot be read from outside.)
      const rows = db.prepare('SELECT count(*) AS n FROM events').get() as { n: number };
      expect(rows.n).toBe(2);
    } finally {
      db.close();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sees the events another storage on the same file committed, at dense positions', async () => {
    const dir = tempDir();
    const path = join(dir, 'db.sqlite');
    const one = sqliteStorage(path);
    const two = sqliteStorage(path);
    try {
      const a = await one.openSpace('s');
      const b = await two.openSpace('s');
      expect(b.replicaId).toBe(a.replicaId);
      await a.ingest(makeEvents(2, { replica: 'one' }));
      await b.ingest(makeEvents(2, { replica: 'two' }));
      expect((await a.readByPos(0, 10)).map((r) => r.pos)).toEqual([1, 2, 3, 4]);
    } finally {
      await one.close();
      await two.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('invariant 4: reads rows whose body holds the whole event (files written before the split)', async () => {
    const dir = tempDir();
    const path = join(dir, 'db.sqlite');
    let storage = sqliteStorage(path);
    try {
      const log = await storage.openSpace('s');
      const [first, second] = makeEvents(2);
      await log.ingest([first!]);
      await storage.close();
      // The row an older version wrote: the whole event as the body.
      const db = new Database(path);
      db.prepare(
        'INSERT INTO events (space, pos, id, replica, seq, stream, cursor, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(
        's',
        2,
        second!.id,
        second!.replica,
        second!.seq,
        second!.stream,
        second!.cursor,
        JSON.stringify(second),
      );
      db.prepare('UPDATE spaces SET head = 2 WHERE space = ?').run('s');
      db.close();
      storage = sqliteStorage(path);
      const again = await storage.openSpace('s');
      expect((await again.readByPos(0, 10)).map((r) => r.event)).toEqual([first, second]);
    } finally {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports an unopenable path as STORAGE_UNAVAILABLE', () => {
    // A missing folder is created (sqlite.ts invariant 10): a file where a folder should be is not.
    const dir = mkdtempSync(join(tmpdir(), 'chronicle-unopenable-'));
    try {
      writeFileSync(join(dir, 'file'), '');
      expect(() => sqliteStorage(join(dir, 'file', 'x', 'y.sqlite'))).toThrow(
        expect.objectContaining({ code: 'STORAGE_UNAVAILABLE' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("postgresStorage: a publisher's lock (postgres-publish.ts)", () => {
  it('is held by one storage of a database at a time, and freed when its connection dies', async () => {
    const url = pg!.url;
    const schema = freshSchema();
    const one = postgresStorage(url, { schema, poolSize: 2 });
    const two = postgresStorage(url, { schema, poolSize: 2 });
    const other = postgresStorage(url, { schema: freshSchema(), poolSize: 2 });
    try {
      const held = await one.lockPublisher('nats');
      expect(held).toBeDefined();
      expect(await two.lockPublisher('nats')).toBeUndefined();
      // Another name, or another schema (deployment), is another lock.
      await (await two.lockPublisher('rabbit'))!.release();
      await (await other.lockPublisher('nats'))!.release();
      // The holder dies: the database ends its session, which frees the lock.
      const admin = new Client({ connectionString: url });
      await admin.connect();
      const key = BigInt.asUintN(64, BigInt(lockKey(schema, 'nats')));
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 1",
        [String(key >> 32n), String(key & 0xffffffffn)],
      );
      expect(killed.rowCount).toBe(1);
      await admin.end();
      await held!.lost;
      const taken = await two.lockPublisher('nats');
      expect(taken).toBeDefined();
      await taken!.release();
    } finally {
      await one.close();
      await two.close();
      await other.close();
      await dropSchema(url, schema);
    }
  });
});
