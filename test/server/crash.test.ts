/**
 * The server process killed with SIGKILL in the middle of a catch-up, restarted on the same
 * SQLite file (RELIABILITY 14, 18), and a server restored from an older backup (17).
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createToken } from '../../src/server/auth.ts';
import { silentLogger } from '../../src/server/metrics.ts';
import { createSyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { SECRET, tempDir, waitFor } from './helpers.ts';
import { exited, startServerProcess } from './server-process.ts';
import { connectSession, MemorySyncLog, type SessionClient } from './session-client.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function token(sub: string): string {
  return createToken(SECRET, {
    space: 'space-a',
    sub,
    scope: ['read', 'write'],
    expiresInSeconds: 600,
  });
}

function readDb(path: string) {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT id, pos FROM events WHERE space = 'space-a' ORDER BY pos")
      .all() as {
      id: string;
      pos: number;
    }[];
    return {
      ids: new Set(rows.map((r) => r.id)),
      count: rows.length,
      maxPos: rows[rows.length - 1]?.pos ?? 0,
    };
  } finally {
    db.close();
  }
}

async function session(
  url: string,
  log: MemorySyncLog,
  sub: string,
  onAcked?: (pos: number) => void,
) {
  const client: SessionClient = await connectSession(url, token(sub), log, {
    ...(onAcked ? { onStatus: (s) => onAcked(s.ackedPos) } : {}),
  });
  cleanups.push(() => client.close());
  return client;
}

describe('crash and restore', () => {
  it('loses nothing it acknowledged when SIGKILLed mid catch-up; resent events land once (cases 14, 18)', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const TOTAL = 6000;
    // Killed once 2,000 are acknowledged: at most 4 batches of 500 more can be in flight, some
    // of them committed but not yet acknowledged (case 14).
    const KILL_AT = 2000;
    const writer = new MemorySyncLog();
    writer.append(TOTAL, (i) => ({ i, text: 'x'.repeat(400) }));
    const reader = new MemorySyncLog();

    const first = await startServerProcess(path, cleanups);
    await session(first.url, reader, 'reader');
    let ackedAtKill = -1;
    await session(first.url, writer, 'writer', (acked) => {
      if (ackedAtKill < 0 && acked >= KILL_AT) {
        ackedAtKill = acked;
        first.child.kill('SIGKILL');
      }
    });
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(ackedAtKill).toBeGreaterThan(0);

    // Every event the server acknowledged is on disk; positions are dense.
    const afterKill = readDb(path);
    for (let seq = 1; seq <= ackedAtKill; seq++) {
      expect(afterKill.ids.has(`${writer.replicaId}-${seq}`)).toBe(true);
    }
    expect(afterKill.maxPos).toBe(afterKill.count);
    expect(afterKill.count).toBeLessThan(TOTAL);

    // Restart on the same file; both clients reconnect and resume from their checkpoints.
    const second = await startServerProcess(path, cleanups);
    await session(second.url, writer, 'writer');
    await session(second.url, reader, 'reader');
    await waitFor(() => reader.records.length === TOTAL, 60_000);
    expect(reader.ids()).toEqual(writer.ids());
    second.child.kill('SIGTERM');
    await exited(second.child);
    expect(second.child.exitCode).toBe(0);

    const final = readDb(path);
    expect(final.count).toBe(TOTAL);
    expect(final.ids.size).toBe(TOTAL);
    expect(final.maxPos).toBe(TOTAL);
  }, 120_000);

  it('gets back from clients what a server restored from an older backup lost (case 17)', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const backup = join(tmp.dir, 'backup.sqlite');
    const a = new MemorySyncLog();
    const b = new MemorySyncLog();
    const run = async (during: () => Promise<void>) => {
      const server = await createSyncServer({
        // Hand-made, unsigned logs (helpers.ts startTestServer).
        requireSignatures: false,
        storage: sqliteStorage(path),
        auth: { secret: SECRET },
        log: silentLogger,
      });
      const clients = [await session(server.url, a, 'alice'), await session(server.url, b, 'bob')];
      await during();
      for (const c of clients) c.close();
      await server.close();
    };
    a.append(100);
    await run(() => waitFor(() => b.records.length === 100, 10_000));
    copyFileSync(path, backup);
    a.append(50);
    b.append(30);
    await run(() => waitFor(() => a.records.length === 180 && b.records.length === 180, 10_000));
    copyFileSync(backup, path);
    expect(readDb(path).count).toBe(100);
    // The restored server lost 80 events that both clients hold: they upload them again.
    await run(async () => {
      await waitFor(() => readDb(path).count === 180, 10_000);
    });
    const final = readDb(path);
    expect(final.count).toBe(180);
    expect(final.maxPos).toBe(180);
    expect(a.ids()).toEqual(b.ids());
  }, 60_000);
});
