/**
 * `npm run bench -- storage`, Firefox (Debian's firefox-esr over WebDriver BiDi, as
 * browser-firefox.ts drives it): the same run as Chromium's (size-browser.ts) on a profile folder
 * kept on disk, weighing the origin's IndexedDB files, SQLite databases (+ WAL, checkpointed by
 * Firefox when it closes them) and the `.files` folders of values stored apart. It says what the
 * bytes are: SQLite's tables (dbstat), and within them each object store's values and the copy of
 * each record's index keys Firefox keeps beside its value (`index_data_values`, not compressed),
 * and each index's entries.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { onFirefoxBenchPage } from './browser-session.ts';
import type { BenchResult } from './results.ts';
import { runBrowserSize, type SizeBrowser } from './size-browser.ts';
import { folderBytes } from './size-measure.ts';

export const firefoxSize: SizeBrowser = {
  name: 'Firefox',
  session: onFirefoxBenchPage,
  weigh(profile, events) {
    const root = join(profile, 'storage', 'default');
    let total = 0;
    let wal = 0;
    let files = 0;
    const tables = new Map<string, number>();
    const parts = new Map<string, number>();
    for (const origin of readdirSync(root)) {
      if (!origin.startsWith('http+++127.0.0.1')) continue;
      const idb = join(root, origin, 'idb');
      total += folderBytes(idb);
      wal += folderBytes(idb, (name) => name.endsWith('-wal'));
      for (const entry of readdirSync(idb, { withFileTypes: true })) {
        if (entry.isDirectory()) files += folderBytes(join(idb, entry.name));
        if (entry.isFile() && entry.name.endsWith('.sqlite')) {
          const file = join(idb, entry.name);
          for (const [name, bytes] of sqliteTables(file)) {
            tables.set(name, (tables.get(name) ?? 0) + bytes);
          }
          for (const [name, bytes] of recordParts(file)) {
            parts.set(name, (parts.get(name) ?? 0) + bytes);
          }
        }
      }
    }
    const per = (n: number) => (n / events).toFixed(0);
    return {
      total,
      detail:
        `the origin's idb/ after the browser closed: SQLite of which WAL ${per(wal)}, .files ${per(files)} B/event; ` +
        [...tables]
          .sort((a, b) => b[1] - a[1])
          .map(([name, bytes]) => `${name} ${per(bytes)}`)
          .join(', ') +
        '; of which ' +
        [...parts]
          .filter(([, bytes]) => bytes / events >= 0.5)
          .sort((a, b) => b[1] - a[1])
          .map(([name, bytes]) => `${name} ${per(bytes)}`)
          .join(', '),
    };
  },
};

/**
 * Bytes of each table and index of one of Firefox's IndexedDB files (SQLite's dbstat), read from
 * a copy-free read-only connection once the browser closed it: object_data holds the values
 * (Snappy-compressed structured clones), index_data and unique_index_data the index entries.
 */
function sqliteTables(file: string): [string, number][] {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name')
      .all() as { name: string; bytes: number }[];
    return rows.map((r) => [r.name, r.bytes]);
  } finally {
    db.close();
  }
}

/**
 * What the rows of one IndexedDB file hold, in bytes: per object store its values (`data`, the
 * compressed structured clones) and the index keys stored again beside them
 * (`index_data_values`); per index its entries (the key and the record's primary key).
 */
function recordParts(file: string): [string, number][] {
  const db = new Database(file, { readonly: true });
  try {
    const values = db
      .prepare(
        `SELECT s.name, SUM(length(d.data)) AS data, SUM(length(d.index_data_values)) AS keys
         FROM object_data d JOIN object_store s ON s.id = d.object_store_id GROUP BY s.name`,
      )
      .all() as { name: string; data: number; keys: number | null }[];
    const out: [string, number][] = [];
    for (const v of values) {
      out.push([`${v.name} values`, v.data], [`${v.name} index keys beside values`, v.keys ?? 0]);
    }
    for (const table of ['index_data', 'unique_index_data']) {
      const entries = db
        .prepare(
          `SELECT i.name, SUM(length(d.value) + length(d.object_data_key)) AS bytes
           FROM ${table} d JOIN object_store_index i ON i.id = d.index_id GROUP BY i.name`,
        )
        .all() as { name: string; bytes: number }[];
      for (const e of entries) out.push([`${e.name} entries`, e.bytes]);
    }
    return out;
  } finally {
    db.close();
  }
}

export function runSizeFirefoxBenches(): Promise<BenchResult[]> {
  return runBrowserSize(firefoxSize);
}
