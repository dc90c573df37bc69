/**
 * The SQLite server storage's files and blocks (issue 18): a file of layout 1 (every event a row,
 * as servers before blocks wrote it) opens, migrates and compacts; and a server process
 * SIGKILLed while its compactor runs loses nothing and holds every event once.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { storedBody } from '../../src/server/sqlite-rows.ts';
import type { SpaceLog } from '../../src/server/storage.ts';
import { makeEvents } from './events.ts';
import { tempDir, waitFor } from './helpers.ts';
import { exited } from './local-services.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** Layout 1, frozen: the tables a server before blocks made (src/server/sqlite-schema.ts then). */
const LAYOUT_1 = `
CREATE TABLE spaces (space TEXT PRIMARY KEY, replica TEXT NOT NULL, epoch TEXT NOT NULL,
  head INTEGER NOT NULL DEFAULT 0);
CREATE TABLE events (space TEXT NOT NULL, pos INTEGER NOT NULL, id TEXT NOT NULL,
  replica TEXT NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL, cursor TEXT NOT NULL,
  body TEXT NOT NULL, PRIMARY KEY (space, pos));
CREATE UNIQUE INDEX events_by_id ON events (space, id);
CREATE UNIQUE INDEX events_by_slot ON events (space, replica, seq);
CREATE TABLE checkpoints (space TEXT NOT NULL, peer TEXT NOT NULL, checkpoint TEXT NOT NULL,
  PRIMARY KEY (space, peer));
`;

function writeLayout1(path: string, space: string, events: readonly StoredEventRecord[]): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(LAYOUT_1);
    db.prepare('INSERT INTO spaces VALUES (?, ?, ?, ?)').run(
      space,
      'srvreplica',
      'srvepoch',
      events.length,
    );
    const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    db.transaction(() => {
      events.forEach((e, i) => {
        // Half the rows in the older whole-event body form (sqlite-rows.ts eventOfRow).
        const body = i % 2 === 0 ? storedBody(e) : JSON.stringify(e);
        insert.run(space, i + 1, e.id, e.replica, e.seq, e.stream, e.cursor, body);
      });
    })();
  } finally {
    db.close();
  }
}

async function readAll(log: SpaceLog): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  for (;;) {
    const records = await log.readByPos(out[out.length - 1]?.pos ?? 0, 333);
    if (records.length === 0) return out;
    out.push(...records);
  }
}

function layout(path: string): { rows: number; sealed: number } {
  const db = new Database(path, { readonly: true });
  try {
    const rows = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    const hasBlocks = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'blocks'").get();
    const sealed = hasBlocks
      ? (db.prepare('SELECT coalesce(sum(n), 0) AS n FROM blocks').get() as { n: number }).n
      : 0;
    return { rows, sealed };
  } finally {
    db.close();
  }
}

describe('sqliteStorage files and blocks (issue 18)', () => {
  it('opens a file of layout 1, keeps its space, and compacts it; a server of layout 1 then refuses the file', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'old.sqlite');
    const events = makeEvents(500, { replica: 'oldwriter', prefix: 'o' });
    writeLayout1(path, 's', events);

    const storage = sqliteStorage(path, { compaction: { tailEvents: 100, idleMs: 60_000 } });
    cleanups.push(() => storage.close());
    const log = await storage.openSpace('s');
    expect([log.replicaId, await log.epoch(), await log.headPos()]).toEqual([
      'srvreplica',
      'srvepoch',
      500,
    ]);
    expect((await readAll(log)).map((r) => r.event)).toEqual(events);
    expect(await storage.compact!()).toEqual({ blocks: 4, events: 400 });
    expect(layout(path)).toEqual({ rows: 100, sealed: 400 });
    expect((await readAll(log)).map((r) => r.event)).toEqual(events);
    expect((await log.ingest(events.slice(0, 50))).written).toEqual([]);
    const other = await storage.openSpace('new-space');
    expect((await other.ingest(makeEvents(3))).written).toHaveLength(3);

    const db = new Database(path, { readonly: true });
    try {
      // The statement a layout-1 server prepares when it opens a file: refused, so it cannot
      // serve this log with its sealed part missing.
      expect(() =>
        db.prepare(
          'INSERT OR IGNORE INTO spaces (space, replica, epoch, head) VALUES (?, ?, ?, 0)',
        ),
      ).toThrow(/view/);
      expect(db.prepare('SELECT space, head FROM spaces ORDER BY space').all()).toEqual([
        { space: 'new-space', head: 3 },
        { space: 's', head: 500 },
      ]);
    } finally {
      db.close();
    }
  });

  it('shrinks a file of layout 1 with `chronicle-server compact --vacuum`, which then gives free pages back by itself', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'old.sqlite');
    const events = makeEvents(20_000, { replica: 'vacuumed', prefix: 'v' });
    writeLayout1(path, 's', events);
    const printed = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/server/cli.ts', 'compact', '--data', path, '--vacuum'],
      { cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8' },
    );
    expect(printed.status).toBe(0);
    const report = JSON.parse(printed.stdout) as {
      events: number;
      bytesBefore: number;
      bytesAfter: number;
    };
    expect(report.events).toBe(20_000 - 8192);
    // Layout 1 has no incremental auto-vacuum: the sealed rows' pages stayed in the file.
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore * 0.6);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
    db.close();
    const storage = sqliteStorage(path);
    cleanups.push(() => storage.close());
    expect((await readAll(await storage.openSpace('s'))).map((r) => r.event.id)).toEqual(
      events.map((e) => e.id),
    );
  });

  it('loses nothing and holds every event once when SIGKILLed while compacting, and compacts the rest after', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const TOTAL = 40_000;
    const events = makeEvents(TOTAL, {
      replica: 'killed',
      prefix: 'k',
      data: { text: 'x'.repeat(200) },
    });
    const before = sqliteStorage(path, { compaction: false });
    const log = await before.openSpace('s');
    for (let i = 0; i < TOTAL; i += 2000) await log.ingest(events.slice(i, i + 2000));
    await before.close();
    expect(layout(path)).toEqual({ rows: TOTAL, sealed: 0 });

    // A server process whose compactor starts at once, on its own, in the background.
    const storageModule = new URL('../../src/server/sqlite.ts', import.meta.url).href;
    const script = `
      import { sqliteStorage } from ${JSON.stringify(storageModule)};
      sqliteStorage(${JSON.stringify(path)}, { compaction: { tailEvents: 0, idleMs: 0 } });
      setInterval(() => {}, 1000);
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        stdio: 'ignore',
      },
    );
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await waitFor(() => layout(path).sealed >= 2000, 30_000);
    child.kill('SIGKILL');
    await exited(child);
    const killed = layout(path);
    expect(killed.sealed).toBeGreaterThan(0);
    expect(killed.rows).toBeGreaterThan(0);
    expect(killed.rows + killed.sealed).toBe(TOTAL);

    const after = sqliteStorage(path, { compaction: { tailEvents: 0, idleMs: 60_000 } });
    cleanups.push(() => after.close());
    const again = await after.openSpace('s');
    const ids = (await readAll(again)).map((r) => r.event.id);
    expect(ids).toEqual(events.map((e) => e.id));
    await after.compact!();
    expect(layout(path)).toEqual({ rows: 0, sealed: TOTAL });
    expect((await readAll(again)).map((r) => r.event.id)).toEqual(ids);
  }, 120_000);
});
