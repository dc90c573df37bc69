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

export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  const line = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new CommandError(line, code, `${stdout}${stderr}`.trim()));
    });
  });
}
