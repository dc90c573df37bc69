/** A `chronicle-server` process (the CLI) on a SQLite file, for tests that kill it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SECRET } from './helpers.ts';

/** Starts `chronicle-server` (the CLI) as a child process; resolves with its url once listening. */
export async function startServerProcess(
  path: string,
  cleanups: (() => void | Promise<void>)[],
  port = 0,
): Promise<{ child: ChildProcess; url: string }> {
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
      '--data',
      path,
      '--secret',
      SECRET,
      // The writers here are hand-made, unsigned logs (helpers.ts startTestServer).
      '--allow-unsigned',
    ],
    { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stderr! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server process did not start')), 20_000);
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as { event?: string; url?: string };
      if (entry.event === 'listening' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  return { child, url };
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
