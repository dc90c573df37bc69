/**
 * (b) A Node backend: plain `node` runs an ESM file (no tsx, no loader) that imports
 * `/server` and the main entry from the installed tarball, with better-sqlite3 and ws as the
 * project's own dependencies, as the README tells it to install them (better-sqlite3's native
 * build is the repository's: install.ts `repositorySqlite` says why).
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Consumer, installConsumer } from './install.ts';
import { packed } from './pack.ts';
import { CommandError } from './run.ts';

let backend: Consumer;

beforeAll(async () => {
  backend = await installConsumer(packed(), { fixture: 'node-server', repositorySqlite: true });
});

interface Outcome {
  serverUrl: string;
  sentId: string;
  receivedId: string;
  receivedReplica: string;
  aliceReplica: string;
  bobTitles: string[];
  sqliteBytes: number;
  replicaBytes: number;
}

describe('a plain Node ESM project with the tarball, better-sqlite3 and ws installed', () => {
  it('starts a sync server on SQLite and syncs an event from a SQLite replica (/node) to an in-memory store', async () => {
    const { stdout } = await backend.run(process.execPath, ['main.js']);
    const outcome = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Outcome;
    expect(outcome.serverUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(outcome.receivedId).toBe(outcome.sentId);
    expect(outcome.receivedReplica).toBe(outcome.aliceReplica);
    expect(outcome.bobTitles).toEqual(['Buy milk']);
    // The folder of the SQLite file did not exist: the storage made it.
    expect(outcome.sqliteBytes).toBeGreaterThan(0);
    expect(outcome.replicaBytes).toBeGreaterThan(0);
  });

  it('has a chronicle-server command that plain Node runs', async () => {
    // --help prints the usage and exits 2, once the command's whole module graph has loaded.
    const bin = join(backend.dir, 'node_modules/.bin/chronicle-server');
    const failure = await backend.run(bin, ['--help']).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(CommandError);
    expect((failure as CommandError).exitCode).toBe(2);
    expect((failure as CommandError).output).toMatch(/^Usage: chronicle-server/);
  });
});
