/**
 * A benchmark's server in a child process of its own (as a server is deployed), for the sync
 * benchmarks: sync-node.ts forks our sync server, sync-baselines.ts its baselines. The parent
 * forks a module with `--import tsx` and an environment that tells it to serve; the child says
 * its URL, answers commands (`cpu`, and any it adds) with one number each, and exits on `stop`.
 * Every wait has a deadline; a child that does not stop is killed. No side effects on import.
 */
import { type ChildProcess, fork } from 'node:child_process';

export interface BenchChild {
  url: string;
  /** Sends `{ cmd }`; resolves with the number the child answers under `cmd`. */
  ask(cmd: string): Promise<number>;
  /** Asks the child to stop, kills it after 10 s, and resolves once it exited. */
  stop(): Promise<void>;
  /** Kills the child with SIGKILL at once (a crash, for fault injection); resolves once it exited. */
  kill(): Promise<void>;
  /** False once the child exited, whatever the reason. */
  readonly running: boolean;
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Forks `modulePath` with `env` added to this process's; resolves once the child said its URL. */
export async function forkBenchChild(
  modulePath: string,
  env: Record<string, string>,
  what: string,
): Promise<BenchChild> {
  const child: ChildProcess = fork(modulePath, [], {
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.BENCH_CHILD_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CHILD_PROF}`]
        : []),
    ],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let running = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running = false;
      resolve();
    }),
  );
  const stop = async () => {
    if (!running) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    if (child.connected) child.send({ cmd: 'stop' });
    else child.kill('SIGKILL');
    await exited;
    clearTimeout(timer);
  };
  let url: string;
  try {
    url = await withDeadline(
      new Promise<string>((resolve, reject) => {
        child.once('message', (m) => resolve(String((m as { url: string }).url)));
        void exited.then(() => reject(new Error(`bench: ${what} exited`)));
      }),
      30_000,
      `${what} to start`,
    );
  } catch (error) {
    child.kill('SIGKILL');
    await stop();
    throw error;
  }
  // Answers come back in the order asked, per command.
  const waiting = new Map<string, ((value: number) => void)[]>();
  child.on('message', (m) => {
    for (const [cmd, value] of Object.entries(m as Record<string, unknown>)) {
      if (typeof value === 'number') waiting.get(cmd)?.shift()?.(value);
    }
  });
  return {
    url,
    ask: (cmd) =>
      withDeadline(
        new Promise<number>((resolve) => {
          const queue = waiting.get(cmd) ?? [];
          queue.push(resolve);
          waiting.set(cmd, queue);
          child.send({ cmd });
        }),
        10_000,
        `${what} to answer ${cmd}`,
      ),
    stop,
    async kill() {
      if (running) child.kill('SIGKILL');
      await exited;
    },
    get running() {
      return running;
    },
  };
}

/**
 * The child's side: says `url` to the parent, answers `cpu` (its user + system CPU, ms) and the
 * `answers` given, and on `stop` runs `stop`, then exits. It exits too if the parent is gone.
 */
export function serveParent(
  url: string,
  answers: Record<string, () => number | Promise<number>>,
  stop: () => Promise<void>,
): void {
  process.on('disconnect', () => process.exit(1));
  const all: Record<string, () => number | Promise<number>> = {
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    },
    ...answers,
  };
  process.on('message', (m) => {
    const cmd = (m as { cmd: string }).cmd;
    if (cmd === 'stop') {
      void stop().then(() => process.exit(0));
      return;
    }
    const answer = all[cmd];
    if (answer !== undefined)
      void Promise.resolve(answer()).then((v) => process.send?.({ [cmd]: v }));
  });
  process.send?.({ url });
}
