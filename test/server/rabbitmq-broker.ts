/**
 * A throwaway RabbitMQ node for tests, started from Debian's `rabbitmq-server` package (.ci/run
 * installs it) the way postgres-cluster.ts starts PostgreSQL: its own node name, data, logs,
 * config and Erlang cookie (HOME) in a temporary folder, on free ports of 127.0.0.1, with the
 * `rabbitmq_stream` plugin. The Debian system service is never used: the node runs as the
 * calling user (root here, which RabbitMQ accepts) from /usr/lib/rabbitmq/bin directly, since
 * /usr/sbin/rabbitmq-server would `su` to the rabbitmq user and use /var/lib/rabbitmq. Erlang's
 * port mapper (epmd) is shared by every node of the machine: the node starts it when none runs,
 * and the unique node name keeps test nodes apart from each other and from a system node.
 *
 * `kill()` SIGKILLs the node and `restart()` starts it again on the same data and ports; every
 * node still running is killed when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, exited, freePort } from './local-services.ts';

const SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const START_TIMEOUT_MS = 90_000;

export interface RabbitBroker {
  /** The stream protocol's URL: `rabbitmq-stream://guest:guest@127.0.0.1:<port>`. */
  readonly url: string;
  readonly streamPort: number;
  readonly amqpPort: number;
  readonly nodeName: string;
  /** How long the last start took until the stream port accepted, in milliseconds. */
  readonly startMs: number;
  /** Stops the node gracefully (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** SIGKILLs the node and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the node again on the same data, name and ports. */
  restart(): Promise<void>;
  /** Kills the node if it runs and deletes its folder. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
const folders = new Set<string>();
let exitHookInstalled = false;

function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) killGroup(child, 'SIGKILL');
    for (const dir of folders) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // A node not gone yet may still hold a file: the folder is in tmpdir anyway.
      }
    }
  });
}

/** The node runs in a process group of its own, with erl_child_setup and inet_gethost. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startRabbit(): Promise<RabbitBroker> {
  if (!existsSync(SERVER)) {
    throw new Error('RabbitMQ is not installed: `apt-get install -y rabbitmq-server`');
  }
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-rabbit-'));
  folders.add(dir);
  const home = join(dir, 'home');
  mkdirSync(home);
  const [amqpPort, streamPort, distPort] = [await freePort(), await freePort(), await freePort()];
  const nodeName = `chronicle-test-${process.pid}-${dir.slice(-6)}@localhost`;
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
      `stream.listeners.tcp.1 = 127.0.0.1:${streamPort}`,
      // The client connects to a stream's leader at the advertised address: the node's host
      // name otherwise, which may resolve to ::1 where nothing listens.
      'stream.advertised_host = 127.0.0.1',
      `stream.advertised_port = ${streamPort}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_stream].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C.UTF-8',
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_DIST_PORT: String(distPort),
    // One scheduler that sleeps when idle: the machine's cores are shared with other tests.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none',
  };
  killAllOnExit();

  let child: ChildProcess | undefined;
  let startMs = 0;
  async function start(): Promise<void> {
    const began = performance.now();
    let output = '';
    const node = spawn(SERVER, [], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    node.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    node.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    running.add(node);
    node.once('exit', () => running.delete(node));
    child = node;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (node.exitCode !== null || node.signalCode !== null) {
        throw new Error(`RabbitMQ node ${nodeName} exited while starting:\n${output}`);
      }
      if (output.includes('completed with') && (await accepts(streamPort))) break;
      if (Date.now() > deadline) {
        killGroup(node, 'SIGKILL');
        throw new Error(`RabbitMQ node ${nodeName} did not start in time:\n${output}`);
      }
      await sleep(100);
    }
    startMs = performance.now() - began;
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const node = child;
    if (node === undefined) return;
    child = undefined;
    killGroup(node, signal);
    await exited(node);
  }

  await start();
  return {
    url: `rabbitmq-stream://guest:guest@127.0.0.1:${streamPort}`,
    streamPort,
    amqpPort,
    nodeName,
    get startMs() {
      return startMs;
    },
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async restart() {
      await halt('SIGTERM');
      await start();
    },
    async close() {
      await halt('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      folders.delete(dir);
    },
  };
}
