/**
 * The server storage conformance suite on a SQLite store whose sealed blocks are archived to
 * cold files after every ingest (issue 18 part 4; src/server/sqlite-archive.ts): every read,
 * lookup, dedupe and copy resolution of the suite then goes through the archive's files.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { type SqliteStorageOptions, sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { runServerStorageConformance } from './storage-conformance.ts';

/** Far enough ahead that every event of the suite is older (its clocks may run ahead a little). */
const FUTURE = Date.now() + 10 * 365 * 86_400_000;

/** Events moved to files over the whole suite: the suite must have read through the files. */
let archived = 0;
afterAll(() => {
  expect(archived).toBeGreaterThan(100);
});

/** `storage`, whose logs seal and archive everything after every ingest. */
function archivedAfterEachIngest(storage: ServerStorage): ServerStorage {
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
              if (!closing) {
                await storage.compact!();
                archived += (await storage.archive!({ before: FUTURE, fileBlocks: 2 })).events;
              }
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

runServerStorageConformance([
  {
    name: 'sqlite (file, every block archived after each ingest)',
    async make() {
      const dir = mkdtempSync(join(tmpdir(), 'chronicle-archive-'));
      const path = join(dir, 'db.sqlite');
      const options: SqliteStorageOptions = {
        compaction: { tailEvents: 0, eager: true },
        recentCacheBytes: 0,
      };
      const open = () => archivedAfterEachIngest(sqliteStorage(path, options));
      let storage = open();
      const others: ServerStorage[] = [];
      return {
        storage,
        async reopen() {
          await storage.close();
          storage = open();
          return storage;
        },
        second() {
          const other = open();
          others.push(other);
          return other;
        },
        async cleanup() {
          await storage.close();
          for (const other of others) await other.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
]);
