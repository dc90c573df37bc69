/**
 * Strict streams and a sync server killed with SIGKILL (issue 19): two devices race commands
 * on one strict account through a `chronicle-server` process, which is killed mid-race and
 * started again on the same SQLite file. The heads are written in the transactions of the events
 * they name, so after the crash the server decides as if it had never stopped: the devices end
 * on one log, versions 1..n, the rule holding at every prefix, every command kept or reported,
 * and the strict head on disk names the stream's last event.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, StoredEvent, SyncConnection } from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import { SECRET, tempDir, waitFor } from '../server/helpers.ts';
import { exited, startServerProcess } from '../server/server-process.ts';
import { type AccountEvents, account, balanceNeverNegative } from '../store/fixtures/account.ts';
import { openAccountStore, strictSettled } from './helpers.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const token = (sub: string) =>
  createToken(SECRET, { space: 'space-a', sub, scope: ['read', 'write'], expiresInSeconds: 600 });

describe('strict streams across a server killed with SIGKILL', () => {
  it('keeps one accepted chain and the rule: heads and events commit together', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const stores: EventStore<AccountEvents>[] = [];
    for (const name of ['a', 'b']) {
      const store = await openAccountStore(name);
      cleanups.push(() => store.close());
      stores.push(store);
    }
    const connectAll = (url: string): SyncConnection[] =>
      stores.map((s, i) => s.sync.connect({ url, token: token(`device-${i}`) }));
    let server = await startServerProcess(path, cleanups);
    let links = connectAll(server.url);
    const commands: string[][] = [[], []];
    let killed = false;
    const race = stores.map(async (store, i) => {
      for (let n = 0; n < 20; n++) {
        const deposit = n % 3 !== 2;
        try {
          const events = await store.execute(
            account,
            'account-1',
            deposit ? 'deposit' : 'withdraw',
            {
              cents: deposit ? 10 : 25,
            },
          );
          const id = events[0]?.meta?.$commandId;
          if (typeof id === 'string') commands[i]!.push(id);
        } catch (error) {
          if ((error as { code?: string }).code !== 'COMMAND_REJECTED') throw error;
        }
        if (i === 0 && n === 8 && !killed) {
          killed = true;
          server.child.kill('SIGKILL');
        }
        await new Promise((r) => setTimeout(r, 4 + i * 3));
      }
    });
    await waitFor(() => killed, 30_000);
    await exited(server.child);
    expect(server.child.signalCode).toBe('SIGKILL');
    for (const link of links) await link.close();
    server = await startServerProcess(path, cleanups);
    links = connectAll(server.url);
    await Promise.all(race);
    await waitFor(async () => {
      const statuses = stores.map((s) => s.sync.status());
      const counts = await Promise.all(stores.map(async (s) => (await s.read()).length));
      return statuses.every(strictSettled) && counts[0] === counts[1];
    }, 60_000);
    const logs = await Promise.all(stores.map((s) => s.read({ stream: 'account-1' })));
    expect(logs[1]!.map((e) => e.id)).toEqual(logs[0]!.map((e) => e.id));
    const events = logs[0] as StoredEvent<AccountEvents>[];
    expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
    expect(balanceNeverNegative(events)).toBe(true);
    const inLog = new Set(events.map((e) => e.meta?.$commandId));
    // Every report is still listed (the status keeps the last 100).
    for (const store of stores) expect(store.sync.status().rejected?.length ?? 0).toBeLessThan(100);
    if (process.env.STRICT_VERBOSE) {
      console.log(
        `crash: ${events.length} events, rejections ${stores.map((s) => s.sync.status().rejected?.length ?? 0)}`,
      );
    }
    stores.forEach((store, i) => {
      const reports = store.sync.status().rejected ?? [];
      for (const id of commands[i]!) {
        const last = [...reports].reverse().find((r) => r.command?.commandId === id);
        const dropped =
          last?.command?.outcome === 'rejected' || last?.command?.outcome === 'failed';
        expect(inLog.has(id) !== dropped, `command ${id}`).toBe(true);
      }
    });
    for (const link of links) await link.close();
    server.child.kill('SIGTERM');
    await exited(server.child);
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const head = db
        .prepare("SELECT version, id FROM strict_heads WHERE space = 'space-a' AND stream = ?")
        .get('account-1');
      expect(head).toEqual({ version: events.length, id: events[events.length - 1]!.id });
    } finally {
      db.close();
    }
  }, 120_000);
});
