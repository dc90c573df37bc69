/**
 * How the storage-size benchmarks (size-node.ts, size-browser.ts) weigh things: bytes of files
 * and folders on disk, an SQLite file after a checkpoint, the raw JSON of stored records, and
 * what part of that JSON is random (signatures, ids) rather than structure.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import type { StoredEvent } from '../../src/index.ts';

/** The sizes the suite measures at: 10k and 100k by default, 1M with BENCH_STORAGE_EVENTS. */
export function sizeCheckpoints(): number[] {
  const max = Number(process.env.BENCH_STORAGE_EVENTS ?? 100_000);
  const sizes = [10_000, 100_000, 1_000_000].filter((n) => n <= max);
  return sizes.length > 0 ? sizes : [max];
}

export const SIZE_SEED = 18;

export const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

/** Bytes of every file under `dir`, and of those whose name passes `filter`. */
export function folderBytes(dir: string, filter: (name: string) => boolean = () => true): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += folderBytes(path, filter);
    else if (entry.isFile() && filter(entry.name)) total += statSync(path).size;
  }
  return total;
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export interface SqliteSize {
  /** The main file plus its WAL, after a TRUNCATE checkpoint. */
  files: number;
  /** page_count × page_size: the database's pages, checkpointed or not. */
  pages: number;
  /** Pages on the freelist (allocated, unused), in bytes. */
  free: number;
  /** Whether the checkpoint could not finish (a reader or writer held the WAL). */
  busy: boolean;
  /** Bytes of each table and index (SQLite's dbstat), largest first. */
  objects: [string, number][];
  /** The size of a VACUUM INTO copy: the same rows in pages packed anew. */
  vacuumed: number;
}

/** Checkpoints `file` from a connection of its own (the store's stays open) and weighs it. */
export function sqliteSize(file: string): SqliteSize {
  const copy = `${file}.vacuumed`;
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = (db.pragma('page_count', { simple: true }) as number) * pageSize;
    const free = (db.pragma('freelist_count', { simple: true }) as number) * pageSize;
    const objects = db
      .prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC')
      .all() as { name: string; bytes: number }[];
    db.prepare('VACUUM INTO ?').run(copy);
    const vacuumed = fileBytes(copy);
    rmSync(copy, { force: true });
    return {
      vacuumed,
      objects: objects.map((o) => [o.name, o.bytes]),
      files: fileBytes(file) + fileBytes(`${file}-wal`),
      pages,
      free,
      busy: row?.busy === 1,
    };
  } finally {
    db.close();
  }
}

/** UTF-8 bytes of the JSON of each record, as the sync protocol's JSON carries one. */
export function rawJsonBytes(events: readonly StoredEvent[]): number {
  let total = 0;
  for (const event of events) total += Buffer.byteLength(JSON.stringify(event), 'utf8');
  return total;
}

/** Bytes per event of a sample of records, by what they are. */
export interface Anatomy {
  total: number;
  /** `$sig`, `$link` and `$key` values: random, incompressible. */
  signatures: number;
  /** id, replica, hlc, cursor and time values: few distinct replicas, but long per event. */
  ids: number;
  /** The stream name and type values (a card's uuid inside its stream name). */
  names: number;
  /** The values inside `data` (Yjs updates as base64 among them). */
  data: number;
  /** Keys, punctuation, version and seq: the rest. */
  structure: number;
  /** deflate-raw of 100 records' JSON a chunk, as a fraction of the raw bytes. */
  deflated: number;
  /** The same, with the signature fields left out first. */
  deflatedUnsigned: number;
}

const quoted = (value: unknown) => (value === undefined ? 0 : JSON.stringify(value).length);

export function anatomy(events: readonly StoredEvent[]): Anatomy {
  const sum = { total: 0, signatures: 0, ids: 0, names: 0, data: 0 };
  let deflated = 0;
  let deflatedUnsigned = 0;
  for (let i = 0; i < events.length; i += 100) {
    const chunk = events.slice(i, i + 100);
    deflated += deflateRawSync(JSON.stringify(chunk)).length;
    const unsigned = chunk.map((e) => {
      const { $sig: _s, $link: _l, $key: _k, ...meta } = (e.meta ?? {}) as Record<string, unknown>;
      return { ...e, meta };
    });
    deflatedUnsigned += deflateRawSync(JSON.stringify(unsigned)).length;
  }
  for (const e of events) {
    const meta = (e.meta ?? {}) as Record<string, unknown>;
    sum.total += Buffer.byteLength(JSON.stringify(e), 'utf8');
    sum.signatures += quoted(meta.$sig) + quoted(meta.$link) + quoted(meta.$key);
    sum.ids += quoted(e.id) + quoted(e.replica) + quoted(e.hlc) + quoted(e.cursor) + quoted(e.time);
    sum.names += quoted(e.stream) + quoted(e.type);
    sum.data += jsonLeaves(e.data);
  }
  const n = Math.max(1, events.length);
  return {
    total: sum.total / n,
    signatures: sum.signatures / n,
    ids: sum.ids / n,
    names: sum.names / n,
    data: sum.data / n,
    structure: (sum.total - sum.signatures - sum.ids - sum.names - sum.data) / n,
    deflated: deflated / sum.total,
    deflatedUnsigned: deflatedUnsigned / sum.total,
  };
}

/** Bytes of the leaf values of a JSON value (its keys and punctuation left out). */
function jsonLeaves(value: unknown): number {
  if (value === null || typeof value !== 'object') return quoted(value);
  let total = 0;
  for (const v of Object.values(value)) total += jsonLeaves(v);
  return total;
}

export function describeAnatomy(a: Anatomy): string {
  const pct = (n: number) => `${Math.round((n / a.total) * 100)}%`;
  return (
    `per event ${a.total.toFixed(0)} B: signatures ${a.signatures.toFixed(0)} (${pct(a.signatures)}), ` +
    `ids/clocks ${a.ids.toFixed(0)} (${pct(a.ids)}), stream+type ${a.names.toFixed(0)} (${pct(a.names)}), ` +
    `data values ${a.data.toFixed(0)} (${pct(a.data)}), keys/punctuation ${a.structure.toFixed(0)} (${pct(a.structure)}); ` +
    `deflate-raw per 100 events ${a.deflated.toFixed(2)}× raw, without signatures ${a.deflatedUnsigned.toFixed(2)}×`
  );
}
