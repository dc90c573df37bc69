/**
 * A back-end replica SIGKILLed in the middle of its appends (the client crash of RELIABILITY
 * cases 6 and 12, for the SQLite replica: src/storage/sqlite.ts invariants 1, 2). A child
 * process appends to a store on a SQLite file while it syncs through a real server and prints
 * every append whose promise resolved; the test kills it, several times, and each time reopens
 * the file: every reported append is there, and the log is whole (dense own seqs, positions,
 * versions, no id twice). A last run syncs, and the server then holds exactly the events of the
 * child's log, none lost, none twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteReplicaStorage } from '../../src/storage/sqlite.ts';
import { startTestServer, tempDir } from '../server/helpers.ts';
import { exited } from '../server/local-services.ts';

const root = resolve(import.meta.dirname, '../..');
const CHILD = join(import.meta.dirname, 'fixtures/sqlite-crash-child.ts');
const KILLS = 3;
/** Acknowledged appends a run reports, at least, before it is killed. */
const ACKS_PER_RUN = 40;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function child(args: string[], onLine: (line: string) => void): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  createInterface({ input: proc.stdout! }).on('line', onLine);
  return proc;
}

/** The replica's log as a fresh process reads it, checked whole. */
async function readLog(path: string) {
  const log = await sqliteReplicaStorage(path).open();
  try {
    const all = await log.readByPos(0, Number.POSITIVE_INFINITY);
    const own = all.filter((r) => r.event.replica === log.replicaId);
    const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    expect(all.map((r) => r.pos)).toEqual(range(all.length));
    expect(own.map((r) => r.event.seq)).toEqual(range(own.length));
    expect(await log.ownSeq()).toBe(own.length);
    const crash = all.filter((r) => r.event.stream === 'crash');
    expect(crash.map((r) => r.event.version).sort((a, b) => a - b)).toEqual(range(crash.length));
    expect(await log.streamVersion('crash')).toBe(crash.length);
    expect(new Set(all.map((r) => r.event.id)).size).toBe(all.length);
    return new Set<string>(all.map((r) => r.event.id));
  } finally {
    await log.close();
  }
}

describe('a SQLite replica killed mid-append (SIGKILL)', () => {
  it('keeps every append it reported, stays whole, and syncs each event to the server exactly once', async () => {
    const server = await startTestServer({ requireSignatures: true });
    cleanups.push(() => server.stop());
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'replica.db');
    const args = (mode: string) => [mode, path, server.server.url, server.token({ sub: 'svc' })];

    const serverDb = new Database(server.path, { readonly: true });
    cleanups.push(() => {
      serverDb.close();
    });
    const onServer = serverDb.prepare("SELECT count(*) AS n FROM events WHERE space = 'space-a'");
    const serverCount = () => (onServer.get() as { n: number }).n;

    const reported: string[] = [];
    for (let run = 0; run < KILLS; run++) {
      let acks = 0;
      let killed = false;
      const before = serverCount();
      const proc = child(args('append'), (line) => {
        if (!line.startsWith('acked ')) return;
        reported.push(line.slice(6));
        // Killed mid-sync too: once this run's events began to reach the server.
        if (++acks >= ACKS_PER_RUN && !killed && serverCount() > before) {
          killed = true;
          proc.kill('SIGKILL');
        }
      });
      await exited(proc);
      expect(proc.signalCode).toBe('SIGKILL');
      const held = await readLog(path);
      expect(reported.filter((id) => !held.has(id))).toEqual([]);
    }

    let synced = false;
    const last = child(args('sync'), (line) => {
      if (line === 'synced') synced = true;
    });
    await exited(last);
    expect(synced).toBe(true);
    const held = await readLog(path);
    const rows = serverDb.prepare("SELECT id FROM events WHERE space = 'space-a'").all() as {
      id: string;
    }[];
    expect(rows.length).toBe(held.size);
    expect(new Set(rows.map((r) => r.id))).toEqual(held);
    expect(held.size).toBeGreaterThanOrEqual(KILLS * ACKS_PER_RUN);
  }, 90_000);
});
