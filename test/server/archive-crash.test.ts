/**
 * `chronicle-server archive` as an operator runs it, a process of its own (cli-archive.ts), on
 * SQLite and a real PostgreSQL: SIGKILLed at random points it leaves every block either in the
 * database or in a complete, recorded file whose checksum holds (archive-files.ts 2), and the log
 * reads as before; a later run finishes the job; `--check` exits 0 on a sound archive and 1 on a
 * missing or a damaged file, naming them.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { makeEvents } from './events.ts';
import { tempDir, waitFor } from './helpers.ts';
import { exited } from './local-services.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema } from './postgres-helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const TOTAL = 24_000;
const KILLS = 6;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let pgServer: PostgresServer | undefined;
beforeAll(async () => {
  pgServer = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pgServer?.stop();
});

/** A seeded generator (mulberry32): the kill points of a run can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function readAll(log: SpaceLog): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  for (;;) {
    const page = await log.readByPos(out.at(-1)?.pos ?? 0, 1000);
    if (page.length === 0) return out;
    out.push(...page);
  }
}

interface Target {
  name: string;
  /** The CLI's storage flags, and a storage on the same database reading `archive`. */
  setup(dir: string): { flags: string[]; open(archive: string): ServerStorage };
}

const targets: Target[] = [
  {
    name: 'sqlite',
    setup(dir) {
      const path = join(dir, 'server.sqlite');
      return {
        flags: ['--data', path],
        open: (archive) =>
          sqliteStorage(path, {
            archiveDir: archive,
            compaction: { tailEvents: 128, idleMs: 60_000 },
          }),
      };
    },
  },
  {
    name: 'postgres',
    setup() {
      // The CLI works on the default schema; this file's cluster is its own.
      const url = pgServer!.url;
      cleanups.push(() => dropSchema(url, 'chronicle'));
      return {
        flags: ['--postgres', url],
        open: (archive) =>
          postgresStorage(url, {
            archiveDir: archive,
            poolSize: 2,
            compaction: { tailEvents: 128, idleMs: 60_000, eager: true },
          }),
      };
    },
  },
];

function cli(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', ...args], {
    cwd: ROOT,
    stdio: 'ignore',
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

function cliSync(args: string[]): { status: number | null; out: Record<string, unknown> } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { status: run.status, out: JSON.parse(run.stdout || 'null') as Record<string, unknown> };
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

describe.each(targets)('chronicle-server archive on $name', (target) => {
  it('leaves every block in the database or in a checked, recorded file when SIGKILLed at random points, and a later run finishes', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const archive = join(tmp.dir, 'archive');
    const db = target.setup(tmp.dir);
    const fill = db.open(archive);
    const log = await fill.openSpace('board');
    const events = makeEvents(TOTAL, { replica: 'crashing', prefix: 'c' });
    for (let i = 0; i < TOTAL; i += 2000) await log.ingest(events.slice(i, i + 2000));
    const sealed = (await fill.compact!()).blocks;
    const before = await readAll(log);
    await fill.close();
    expect(before).toHaveLength(TOTAL);

    const seed = Date.now() % 100_000;
    const next = random(seed);
    const args = ['archive', ...db.flags, '--before', '1d', '--to', archive, '--file-blocks', '1'];
    let sawPartial = false;
    for (let kill = 0; kill < KILLS; kill++) {
      const already = entries(archive).length;
      const child = cli(args);
      // Killed once a random number of further files exist, plus a random few milliseconds:
      // inside a file's write, between its rename and its transaction, or inside that.
      const more = 1 + Math.floor(next() * 30);
      await waitFor(
        () => entries(archive).length >= already + more || child.exitCode !== null,
        60_000,
      );
      await new Promise((r) => setTimeout(r, Math.floor(next() * 15)));
      child.kill('SIGKILL');
      await exited(child);

      const reader = db.open(archive);
      try {
        const check = await reader.checkArchive!();
        expect(check.missing, `seed ${seed}`).toEqual([]);
        expect(check.damaged, `seed ${seed}`).toEqual([]);
        if (check.files > 0 && check.files < 180) sawPartial = true;
        expect(await readAll(await reader.openSpace('board')), `seed ${seed}`).toEqual(before);
      } finally {
        await reader.close();
      }
    }
    expect(sawPartial, `seed ${seed}`).toBe(true);

    // A run to completion moves the rest; the check passes; the log reads as before.
    const done = cliSync(args);
    expect(done.status).toBe(0);
    const checked = cliSync(['archive', '--check', ...db.flags, '--to', archive]);
    expect(checked.status).toBe(0);
    expect(checked.out).toMatchObject({ ok: true, missing: [], damaged: [] });
    const files = (checked.out.files as number) ?? 0;
    // Every block, one a file (--file-blocks 1): the events are all older than a day.
    expect(files).toBe(sealed);
    expect(sealed).toBeGreaterThan(180);
    const reader = db.open(archive);
    expect(await readAll(await reader.openSpace('board'))).toEqual(before);
    await reader.close();

    // Damage one file and remove another: --check names both and exits 1.
    const names = entries(archive).filter((f) => f.endsWith('.blocks'));
    const recorded = names.filter((n) => !(checked.out.orphans as string[]).includes(n));
    const damaged = join(archive, recorded[0]!);
    const bytes = readFileSync(damaged);
    bytes[100] = (bytes[100] ?? 0) ^ 1;
    writeFileSync(damaged, bytes);
    rmSync(join(archive, recorded[1]!));
    const bad = cliSync(['archive', '--check', ...db.flags, '--to', archive]);
    expect(bad.status).toBe(1);
    expect(bad.out).toMatchObject({ ok: false, damaged: [recorded[0]], missing: [recorded[1]] });
  }, 240_000);
});
