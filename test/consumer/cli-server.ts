/**
 * The tarball's `chronicle-server` command, started by plain Node in a consumer's folder as a
 * user starts it (its JSON log lines on stderr), on a SQLite file; tokens from its `token`
 * subcommand.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Consumer } from './install.ts';
import { userEnv } from './run.ts';

export interface CliServer {
  url: string;
  /** A token for `sub` in `space`, read and write, from `chronicle-server token`. */
  token(space: string, sub: string): Promise<string>;
  /** Ends the process (SIGTERM: it closes its storage) and waits for its exit. */
  stop(): Promise<void>;
}

export async function startCliServer(
  consumer: Consumer,
  dataFile: string,
  secret: string,
): Promise<CliServer> {
  const bin = join(consumer.dir, 'node_modules/.bin/chronicle-server');
  const child: ChildProcess = spawn(
    bin,
    ['--port', '0', '--host', '127.0.0.1', '--data', dataFile, '--secret', secret],
    { cwd: consumer.dir, env: userEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`chronicle-server did not listen within 20 s:\n${log.join('\n')}`)),
      20_000,
    );
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log.push(line);
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as { event?: string; url?: string };
      if (entry.event === 'listening' && entry.url !== undefined) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chronicle-server exited with ${code}:\n${log.join('\n')}`));
    });
  });
  return {
    url,
    token: async (space, sub) =>
      (
        await consumer.run(bin, ['token', '--space', space, '--sub', sub, '--secret', secret])
      ).stdout.trim(),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
