/**
 * Runs a command the way a user's shell would, in a consumer's folder, and fails with its
 * output when it exits non-zero: a failing `tsc` or `vite build` shows its diagnostics in the
 * test's error, not just an exit code.
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  readonly command: string;
  readonly exitCode: number | null;
  readonly output: string;

  constructor(command: string, exitCode: number | null, output: string) {
    super(`\`${command}\` exited with ${exitCode}:\n${output}`);
    this.name = 'CommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.output = output;
  }
}

/** Kept from npm's environment: where its cache and config are, so installs find the cache. */
const NPM_KEPT = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry']);

/**
 * The environment of a user's shell: without what Vitest sets for its own workers (NODE_ENV=test
 * would make `vite build` a development build) and without the outer `npm test`'s lifecycle
 * variables (package name, local prefix), which belong to the repository, not the consumer.
 */
export function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('VITEST') || key === 'NODE_ENV' || key === 'NODE_OPTIONS') continue;
    if (key.startsWith('npm_') && !NPM_KEPT.has(key)) continue;
    env[key] = value;
  }
  return env;
}

/**
 * Past this, the command and everything it started (npm's install scripts, a compiler) are
 * killed: under the tests' own timeouts, so nothing outlives the test that started it.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 100_000;

export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  const line = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout can end the whole tree.
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group ended between the deadline and the kill.
      }
    }, options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const output = `${stdout}${stderr}`.trim();
      if (timedOut) reject(new CommandError(line, code, `timed out, killed\n${output}`));
      else if (code === 0) resolve({ stdout, stderr });
      else reject(new CommandError(line, code, output));
    });
  });
}
