import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import {
  SqliteCheckpointer,
  WRITER_CHECKPOINT_PAGES,
} from '../../src/server/sqlite-checkpointer.ts';
import { makeEvents } from './events.ts';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chronicle-checkpointer-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A WAL database whose writer never checkpoints by itself, with `rows` rows of 1 kB committed. */
function walDatabase(path: string, rows: number): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (v TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(`${i}`.padEnd(1000, 'x'));
  })();
  return db;
}

describe('SqliteCheckpointer', () => {
  it('copies the committed WAL into the database file on its own thread (invariants 1, 2)', async () => {
    const path = join(dir, 'db.sqlite');
    const db = walDatabase(path, 2000);
    const before = statSync(path).size;
    const thresholds: number[] = [];
    const checkpointer = new SqliteCheckpointer(path, (pages) => thresholds.push(pages));
    checkpointer.request();
    checkpointer.request();
    await checkpointer.idle();
    expect(checkpointer.lastError).toBeUndefined();
    expect(thresholds).toEqual([WRITER_CHECKPOINT_PAGES]);
    expect(statSync(path).size).toBeGreaterThan(before + 1_000_000);
    // Nothing left for the writer to copy: every frame of the WAL is in the file already.
    const [status] = db.pragma('wal_checkpoint(PASSIVE)') as {
      log: number;
      checkpointed: number;
    }[];
    expect(status!.checkpointed).toBe(status!.log);
    await checkpointer.close();
    db.close();
  });

  it('hands checkpoints back to the writer when its thread cannot run (invariant 3)', async () => {
    const thresholds: number[] = [];
    const checkpointer = new SqliteCheckpointer(join(dir, 'missing.sqlite'), (pages) =>
      thresholds.push(pages),
    );
    checkpointer.request();
    await expect.poll(() => thresholds).toEqual([WRITER_CHECKPOINT_PAGES, 1_000]);
    expect(checkpointer.lastError).toBeDefined();
    checkpointer.request();
    await checkpointer.idle();
    await checkpointer.close();
  });

  it('keeps a process with nothing else to do alive until close() has ended the thread (invariant 5)', () => {
    // Unreferenced all along, the thread once let such a process exit (code 13) with close()
    // still pending.
    const storageModule = new URL('../../src/server/sqlite.ts', import.meta.url).href;
    const path = join(dir, 'alone.sqlite');
    const script = `
      import { sqliteStorage } from ${JSON.stringify(storageModule)};
      const storage = sqliteStorage(${JSON.stringify(path)});
      await storage.openSpace('s');
      await storage.close();
      console.log('closed');
    `;
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(out.trim()).toBe('closed');
  });

  it('lets the storage close while checkpoints are asked for, and reopen with every event', async () => {
    const path = join(dir, 'server.sqlite');
    const storage = sqliteStorage(path);
    const log = await storage.openSpace('s');
    const events = makeEvents(3000);
    for (let i = 0; i < events.length; i += 500) await log.ingest(events.slice(i, i + 500));
    await storage.close();
    const again = sqliteStorage(path);
    const reopened = await again.openSpace('s');
    expect(await reopened.headPos()).toBe(3000);
    expect((await reopened.readByPos(2990, 100)).map((r) => r.event.id)).toEqual(
      events.slice(2990).map((e) => e.id),
    );
    await again.close();
  });
});
