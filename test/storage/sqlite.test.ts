/**
 * What the SQLite replica adapter (src/storage/sqlite.ts) does beyond the conformance suite:
 * loading its optional peer, refusing what is not a replica file, several adapters and several
 * processes on one file being one replica (invariants 1, 3; sqlite-notices.ts 1, 2), and
 * snapshot states kept as structured clones (sqlite-snapshots.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MissingDependencyError } from '../../src/core/errors.ts';
import { generateSigningKey } from '../../src/core/replica-identity.ts';
import type { EventLog } from '../../src/storage/adapter.ts';
import { sqliteReplicaStorage } from '../../src/storage/sqlite.ts';
import { setSqliteLoader } from '../../src/storage/sqlite-loader.ts';

const dir = mkdtempSync(join(tmpdir(), 'chronicle-replica-'));
let files = 0;
const fresh = () => join(dir, `${++files}.db`);
const opened: EventLog[] = [];
afterEach(async () => {
  setSqliteLoader(undefined);
  for (const log of opened.splice(0)) await log.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function open(path: string, options: { pollIntervalMs?: number } = {}): Promise<EventLog> {
  const log = await sqliteReplicaStorage(path, options).open();
  opened.push(log);
  return log;
}

const add = (log: EventLog, stream: string, n = 1) =>
  log.appendLocal({
    stream,
    events: Array.from({ length: n }, (_, i) => ({ type: 'Added', data: { i }, schema: 1 })),
    expectedVersion: 'any',
    now: Date.now(),
  });

const dense = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  expect(sorted).toEqual(Array.from({ length: values.length }, (_, i) => i + 1));
};

describe('sqliteReplicaStorage', () => {
  it('stores each field once: a body holds what the columns do not, and a body holding every field (written before) reads the same (sqlite-rows.ts 3)', async () => {
    const path = fresh();
    const log = await open(path);
    await add(log, 'todo-1');
    const [record] = await log.readByPos(0, 10);
    const stored = record?.event;
    await log.close();
    opened.splice(opened.indexOf(log), 1);
    const db = new Database(path);
    const { body } = db.prepare('SELECT body FROM log_events WHERE pos = 1').get() as {
      body: string;
    };
    expect(Object.keys(JSON.parse(body)).sort()).not.toContain('id');
    expect(Object.keys(JSON.parse(body))).not.toContain('cursor');
    // The form of the first files: the whole event in the body.
    db.prepare('UPDATE log_events SET body = ? WHERE pos = 1').run(JSON.stringify(stored));
    db.close();
    const again = await open(path);
    const [read] = await again.readByPos(0, 10);
    expect(read?.event).toEqual(stored);
  });

  it('throws MISSING_DEPENDENCY naming better-sqlite3 at the call when it is not installed', () => {
    const emptyApp = mkdtempSync(join(tmpdir(), 'chronicle-no-sqlite-'));
    try {
      setSqliteLoader(() => createRequire(join(emptyApp, 'app.js'))('better-sqlite3'));
      let thrown: unknown;
      try {
        sqliteReplicaStorage(fresh());
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(MissingDependencyError);
      expect(thrown).toMatchObject({
        code: 'MISSING_DEPENDENCY',
        dependency: 'better-sqlite3',
        details: { neededBy: 'sqliteReplicaStorage' },
      });
    } finally {
      rmSync(emptyApp, { recursive: true, force: true });
    }
  });

  it('refuses an in-memory or temporary database, which the handles of a replica could not share', () => {
    for (const path of [':memory:', '', 'file::memory:?cache=shared']) {
      expect(() => sqliteReplicaStorage(path)).toThrow(
        expect.objectContaining({ code: 'VALIDATION' }),
      );
    }
  });

  it("refuses another program's database and leaves it untouched", async () => {
    const path = fresh();
    const other = new Database(path);
    other.exec('CREATE TABLE events (id TEXT)');
    other.close();
    await expect(sqliteReplicaStorage(path).open()).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
    const check = new Database(path, { readonly: true });
    const tables = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all();
    check.close();
    expect(tables).toEqual([{ name: 'events' }]);
  });

  it('refuses a file that is not SQLite, and a replica file of a newer schema', async () => {
    const garbage = fresh();
    writeFileSync(garbage, 'not a database, just text that is long enough to have a header');
    await expect(sqliteReplicaStorage(garbage).open()).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
    const newer = fresh();
    await (await sqliteReplicaStorage(newer).open()).close();
    const db = new Database(newer);
    db.pragma('user_version = 99');
    db.close();
    await expect(sqliteReplicaStorage(newer).open()).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      details: { version: 99 },
    });
  });

  it("creates the file's folder when it is missing", async () => {
    const path = join(dir, 'deep', 'er', 'replica.db');
    const log = await open(path);
    await add(log, 's');
    expect(existsSync(path)).toBe(true);
    expect(sqliteReplicaStorage(path).name).toBe(`sqlite:${resolve(path)}`);
  });

  it('makes two adapters on one file in one process one replica: dense seqs, and each hears the other (A2)', async () => {
    const path = fresh();
    // No poll: what b hears comes from the in-process notices alone (sqlite-notices.ts 1).
    const [a, b] = await Promise.all([
      open(path, { pollIntervalMs: 0 }),
      open(path, { pollIntervalMs: 0 }),
    ]);
    expect(a.replicaId).toBe(b.replicaId);
    const heard: number[] = [];
    b.onRemoteWrite((head) => heard.push(head));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => add(i % 2 === 0 ? a : b, 'x', 2)),
    );
    const records = results.flatMap((r) => (r.kind === 'written' ? r.records : []));
    dense(records.map((r) => r.event.seq));
    dense(records.map((r) => r.event.version));
    // b hears each of a's writes, with the head after it, and none of its own.
    const headsOfA = results
      .filter((_, i) => i % 2 === 0)
      .map((r) => (r.kind === 'written' ? r.records[1]!.pos : 0));
    await vi.waitFor(() => expect(heard).toEqual(headsOfA));
  });

  it("reads the replica id from the file: another handle's adopted identity shows at once", async () => {
    const path = fresh();
    const [a, b] = await Promise.all([open(path), open(path)]);
    const before = a.replicaId;
    await b.adoptIdentity(await generateSigningKey());
    expect(b.replicaId).not.toBe(before);
    expect(a.replicaId).toBe(b.replicaId);
    expect(await a.identity()).toEqual(await b.identity());
  });

  it('makes another process on the file the same replica, and tells this one of its writes by polling', async () => {
    const path = fresh();
    const log = await open(path, { pollIntervalMs: 20 });
    await add(log, 'parent');
    const heard: number[] = [];
    log.onRemoteWrite((head) => heard.push(head));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'fixtures/sqlite-appender.ts'),
        path,
        '60',
        'child',
      ],
      { cwd: resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += String(chunk);
    });
    const exited = new Promise<number | null>((done) => child.once('exit', done));
    // Appends of this process interleave with the child's, on one set of counters.
    const mine: number[] = [];
    while (child.exitCode === null) {
      const result = await add(log, 'parent');
      if (result.kind === 'written') mine.push(...result.records.map((r) => r.event.seq));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await exited).toBe(0);
    expect(out).toBe('done\n');
    const all = await log.readByPos(0, 10_000);
    expect(all.length).toBe(61 + mine.length);
    dense(all.map((r) => r.pos));
    dense(all.map((r) => r.event.seq));
    expect(new Set(all.map((r) => r.event.replica))).toEqual(new Set([log.replicaId]));
    dense(all.filter((r) => r.event.stream === 'child').map((r) => r.event.version));
    expect(await log.streamVersion('child')).toBe(60);
    await vi.waitFor(() => expect(heard.length).toBeGreaterThan(0));
  }, 30_000);

  it("lets a loop of awaited appends yield to the process's timers and sockets (invariant 6)", async () => {
    const log = await open(fresh());
    let timerRan = false;
    setTimeout(() => {
      timerRan = true;
    }, 0);
    let appendsBeforeTimer = 0;
    // Without the yield, every append resolves in a microtask and the timer waits for the loop.
    for (let i = 0; i < 50 && !timerRan; i++) {
      await add(log, 's');
      appendsBeforeTimer++;
    }
    expect(timerRan).toBe(true);
    expect(appendsBeforeTimer).toBeLessThan(50);
  });

  it('keeps snapshot states as structured clones (a Map, a Date)', async () => {
    const log = await open(fresh());
    const state = { counts: new Map([['a', 1]]), at: new Date(5), list: [1, 'x'] };
    await log.putSnapshot({ projection: 'p', version: 1, cursor: 'c', pos: 1, count: 1, state });
    expect((await log.getSnapshot('p', 1, 'c'))?.state).toEqual(state);
  });
});
