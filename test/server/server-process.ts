/** A `chronicle-server` process (the CLI) on a SQLite file or PostgreSQL, for tests that kill it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SECRET } from './helpers.ts';

/** A log entry of the process (its JSON lines on stderr). */
export interface ProcessLogEntry {
  event?: string;
  [field: string]: unknown;
}

/**
 * Starts `chronicle-server` (the CLI) as a child process; resolves with its url once listening.
 * `args` are passed on after the usual ones (e.g. `--publish nats://...`, `--postgres url`);
 * `entries` collects its log entries, from start to exit.
 */
export async function startServerProcess(
  storage: string | { postgres: string },
  cleanups: (() => void | Promise<void>)[],
  port = 0,
  args: string[] = [],
): Promise<{ child: ChildProcess; url: string; entries: ProcessLogEntry[] }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/server/cli.ts',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      ...(typeof storage === 'string' ? ['--data', storage] : ['--postgres', storage.postgres]),
      '--secret',
      SECRET,
      // The writers here are hand-made, unsigned logs (helpers.ts startTestServer).
      '--allow-unsigned',
      ...args,
    ],
    { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const entries: ProcessLogEntry[] = [];
  const lines = createInterface({ input: child.stderr! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server process did not start')), 20_000);
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as ProcessLogEntry & { url?: string };
      if (entries.length < 10_000) entries.push(entry);
      if (entry.event === 'listening' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  return { child, url, entries };
}

export { exited } from './local-services.ts';
