/**
 * A throwaway NATS server with JetStream for tests: `nats-server -js` from Debian's package
 * (.ci/run installs it), storing in a temporary folder, on a free port of 127.0.0.1; stopped and
 * deleted afterwards. `kill()` SIGKILLs it and `start()` starts it again on the same port and
 * store folder, as a broker that crashed and came back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, exited, freePort } from './local-services.ts';

const BINARY = '/usr/sbin/nats-server';

export interface NatsBroker {
  url: string;
  /** Starts it (again) on the same port and store folder; resolves once it accepts. */
  start(): Promise<void>;
  /** SIGKILL: a crash, nothing flushed on the way out. */
  kill(): Promise<void>;
  /** SIGTERM, keeping the store: a clean shutdown. */
  halt(): Promise<void>;
  /** Stops it and deletes its store. */
  stop(): Promise<void>;
}

export async function startNats(): Promise<NatsBroker> {
  if (!existsSync(BINARY)) {
    throw new Error('nats-server is not installed: `apt-get install -y nats-server`');
  }
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-nats-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return;
    const started = spawn(BINARY, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], {
      stdio: 'ignore',
    });
    child = started;
    const deadline = Date.now() + 20_000;
    while (!(await accepts(port))) {
      if (started.exitCode !== null) throw new Error(`nats-server exited with ${started.exitCode}`);
      if (Date.now() > deadline) throw new Error('nats-server did not start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = async () => {
    if (child === undefined) return;
    child.kill('SIGKILL');
    await exited(child);
  };
  const halt = async () => {
    if (child === undefined) return;
    child.kill('SIGTERM');
    await exited(child);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    start,
    kill,
    halt,
    async stop() {
      if (child !== undefined) {
        child.kill('SIGTERM');
        await exited(child);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
