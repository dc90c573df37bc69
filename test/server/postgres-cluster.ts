/**
 * A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, on a free port
 * of 127.0.0.1, stopped and deleted afterwards. Debian's `postgresql` package provides the
 * binaries (.ci/run installs it). Running as root, the server runs as the `postgres` user, since
 * PostgreSQL refuses to run as root.
 *
 * CHRONICLE_TEST_PG_URL, when set, names an existing server to use instead.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './local-services.ts';

export interface PostgresServer {
  url: string;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] === undefined) {
    throw new Error(
      'PostgreSQL is not installed: `apt-get install -y postgresql` (or set CHRONICLE_TEST_PG_URL)',
    );
  }
  return join(root, versions[0], 'bin');
}

function run(bin: string, args: string[], asPostgres: boolean): void {
  const command = asPostgres ? 'runuser' : bin;
  const argv = asPostgres ? ['-u', 'postgres', '--', bin, ...args] : args;
  execFileSync(command, argv, { stdio: 'pipe', timeout: 60_000 });
}

export async function startPostgres(): Promise<PostgresServer> {
  const given = process.env.CHRONICLE_TEST_PG_URL;
  if (given) return { url: given, stop: async () => {} };
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-pg-'));
  const asPostgres = process.getuid?.() === 0;
  if (asPostgres) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  run(
    join(bin, 'initdb'),
    ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'],
    asPostgres,
  );
  const port = await freePort();
  run(
    join(bin, 'pg_ctl'),
    [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`,
      'start',
    ],
    asPostgres,
  );
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], asPostgres);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
