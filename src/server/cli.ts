/**
 * The `chronicle-server` command: a sync server on a SQLite file.
 *
 *   npx chronicle-server --port 8787 --host 127.0.0.1 --data ./data/chronicle.sqlite --secret s3cret
 *
 * Flags win over environment variables: CHRONICLE_PORT, CHRONICLE_HOST, CHRONICLE_DATA,
 * CHRONICLE_SECRET, CHRONICLE_ORIGINS (comma-separated), CHRONICLE_PUBLISH,
 * CHRONICLE_PUBLISH_STREAM.
 *
 *   npx chronicle-server --publish nats://127.0.0.1:4222 [--publish-stream chronicle]
 *   npx chronicle-server --publish rabbitmq-stream://user:pass@127.0.0.1:5552 [--publish-stream chronicle]
 *
 * also publishes every space's log to the broker (publisher.ts); off by default.
 * `--wire-compression` (CHRONICLE_WIRE_COMPRESSION=1) accepts permessage-deflate from clients
 * that offer it (wire-compression.ts); off by default.
 * `--projections ./module.js` (CHRONICLE_PROJECTIONS) folds the module's `projections` on the
 * server and stores each space's snapshot every `--snapshot-every` events (default 10,000;
 * CHRONICLE_SNAPSHOT_EVERY), from which new devices join (cli-projections.ts, snapshotter.ts).
 * `--no-compaction` (CHRONICLE_COMPACTION=off) turns the storage's compactor off (issue 18):
 * sealed events are still read; on PostgreSQL, a database of layout 2 stays at layout 2 (a
 * rolling upgrade from servers of that layout).
 *
 *   npx chronicle-server token --space board-1 --sub alice [--scope read,write] [--expires 3600]
 *
 * prints a token for a server that runs with the same secret (--secret or CHRONICLE_SECRET), for
 * a script or a test client; an app's backend mints its users' tokens with createToken.
 *
 *   npx chronicle-server compact [--data ./data/chronicle.sqlite | --postgres postgres://…]
 *
 * runs the storage's compactor to completion and prints its report (cli-compact.ts; issue 18).
 *
 *   npx chronicle-server archive --before 90d [--to <dir>] | --check
 *
 * moves old blocks to cold files, or verifies them (cli-archive.ts); the server reads them from
 * `--archive <dir>` (CHRONICLE_ARCHIVE; SQLite's default: `<data file>-archive`).
 *
 * Invariants:
 * 1. Without a secret, authentication is disabled only on a loopback host, with a loud warning;
 *    on any other host the command refuses to start.
 * 2. SIGTERM and SIGINT shut down gracefully (server.ts invariant 4); a second signal exits at once.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createToken } from './auth.ts';
import { archiveCommand } from './cli-archive.ts';
import { compactCommand } from './cli-compact.ts';
import { loadProjections } from './cli-projections.ts';
import { postgresSchema } from './cli-storage-target.ts';
import { postgresStorage } from './postgres.ts';
import { sinkFromUrl } from './publish-sinks.ts';
import { createSyncServer } from './server.ts';
import type { SnapshotOptions } from './snapshotter.ts';
import { sqliteStorage } from './sqlite.ts';

export interface CliConfig {
  port: number;
  host: string;
  data: string;
  /** A PostgreSQL connection string: when set, the server keeps its logs there, not in `data`. */
  postgres: string | undefined;
  secret: string | undefined;
  origins: string[] | undefined;
  /** Take unsigned events (SyncServerOptions.requireSignatures false): clients with signing off. */
  allowUnsigned?: true;
  /** Publish every space's log to this broker (publish-sinks.ts), into `publishStream`. */
  publish?: { url: string; stream: string };
  /** permessage-deflate for clients that offer it (SyncServerOptions.wireCompression). */
  wireCompression?: true;
  /** The storage's compactor off (`compaction: false`). */
  noCompaction?: true;
  /** A module exporting the app's projections: server snapshots (cli-projections.ts). */
  projections?: { module: string; every?: number };
  /** Where archived blocks' files are (cli-archive.ts); SQLite's default is `<data>-archive`. */
  archive?: string;
  /** The PostgreSQL schema (default `chronicle`): several deployments may share a database. */
  postgresSchema?: string;
}

export const CLI_DEFAULTS = {
  port: 8787,
  host: '127.0.0.1',
  data: './data/chronicle.sqlite',
} as const;

const USAGE = `Usage: chronicle-server [--port 8787] [--host 127.0.0.1] [--data ./data/chronicle.sqlite]
                        [--postgres postgres://user@host/db [--postgres-schema chronicle]]
                        [--secret <hmac secret>]
                        [--origin https://app.example ...] [--allow-unsigned] [--wire-compression]
                        [--no-compaction] [--archive <dir of archived blocks>]
                        [--projections ./module.js [--snapshot-every 10000]]
                        [--publish nats://host:4222 | rabbitmq-stream://user:pass@host:5552
                         [--publish-stream chronicle]]
       chronicle-server token --space <space> --sub <subject> (--help for more)
       chronicle-server compact [--data <file> | --postgres <url>] (--help for more)
       chronicle-server archive --before 90d | --check [--to <dir>] (--help for more)
Environment: CHRONICLE_PORT, CHRONICLE_HOST, CHRONICLE_DATA, CHRONICLE_POSTGRES,
             CHRONICLE_POSTGRES_SCHEMA, CHRONICLE_SECRET,
             CHRONICLE_ORIGINS, CHRONICLE_ALLOW_UNSIGNED=1, CHRONICLE_PUBLISH,
             CHRONICLE_PUBLISH_STREAM, CHRONICLE_WIRE_COMPRESSION=1, CHRONICLE_ARCHIVE,
             CHRONICLE_PROJECTIONS, CHRONICLE_SNAPSHOT_EVERY`;

export function isLoopback(host: string): boolean {
  return (
    host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/** Reads flags and environment; throws a TypeError with a usage message on bad input. */
export function parseCliArgs(argv: string[], env: NodeJS.ProcessEnv): CliConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      postgres: { type: 'string' },
      'postgres-schema': { type: 'string' },
      secret: { type: 'string' },
      origin: { type: 'string', multiple: true },
      'allow-unsigned': { type: 'boolean' },
      'wire-compression': { type: 'boolean' },
      'no-compaction': { type: 'boolean' },
      archive: { type: 'string' },
      publish: { type: 'string' },
      'publish-stream': { type: 'string' },
      projections: { type: 'string' },
      'snapshot-every': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new TypeError(USAGE);
  const publishUrl = (values.publish ?? env.CHRONICLE_PUBLISH) || undefined;
  const publishStream = values['publish-stream'] ?? env.CHRONICLE_PUBLISH_STREAM ?? 'chronicle';
  if (publishUrl !== undefined) {
    // Checked now, so that a typo fails at start (nothing connects yet: publish-sink.ts 4).
    try {
      sinkFromUrl(publishUrl, { stream: publishStream });
    } catch (error) {
      throw new TypeError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    }
  }
  const allowUnsigned = values['allow-unsigned'] === true || env.CHRONICLE_ALLOW_UNSIGNED === '1';
  const wireCompression =
    values['wire-compression'] === true || env.CHRONICLE_WIRE_COMPRESSION === '1';
  const noCompaction = values['no-compaction'] === true || env.CHRONICLE_COMPACTION === 'off';
  const projectionsModule = (values.projections ?? env.CHRONICLE_PROJECTIONS) || undefined;
  const everyText = (values['snapshot-every'] ?? env.CHRONICLE_SNAPSHOT_EVERY) || undefined;
  const every = everyText === undefined ? undefined : Number(everyText);
  if (every !== undefined && (!Number.isSafeInteger(every) || every < 1)) {
    throw new TypeError(`--snapshot-every must be a positive integer, got ${everyText}\n${USAGE}`);
  }
  if (every !== undefined && projectionsModule === undefined) {
    throw new TypeError(`--snapshot-every needs --projections\n${USAGE}`);
  }
  const archive = (values.archive ?? env.CHRONICLE_ARCHIVE) || undefined;
  const postgres = (values.postgres ?? env.CHRONICLE_POSTGRES) || undefined;
  let schema: string | undefined;
  try {
    schema = postgresSchema(values, env, postgres !== undefined);
  } catch (error) {
    throw new TypeError(`${(error as Error).message}\n${USAGE}`);
  }
  const portText = values.port ?? env.CHRONICLE_PORT ?? String(CLI_DEFAULTS.port);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`--port must be an integer from 0 to 65535, got ${portText}\n${USAGE}`);
  }
  const secret = values.secret ?? env.CHRONICLE_SECRET;
  const originList = values.origin ?? env.CHRONICLE_ORIGINS?.split(',');
  const origins = originList?.map((o) => o.trim()).filter((o) => o.length > 0);
  return {
    ...(allowUnsigned ? { allowUnsigned: true as const } : {}),
    ...(wireCompression ? { wireCompression: true as const } : {}),
    ...(noCompaction ? { noCompaction: true as const } : {}),
    ...(archive === undefined ? {} : { archive }),
    ...(publishUrl === undefined ? {} : { publish: { url: publishUrl, stream: publishStream } }),
    ...(projectionsModule === undefined
      ? {}
      : { projections: { module: projectionsModule, ...(every === undefined ? {} : { every }) } }),
    port,
    host: values.host ?? env.CHRONICLE_HOST ?? CLI_DEFAULTS.host,
    data: values.data ?? env.CHRONICLE_DATA ?? CLI_DEFAULTS.data,
    postgres,
    ...(schema === undefined ? {} : { postgresSchema: schema }),
    secret: secret === undefined || secret === '' ? undefined : secret,
    origins: origins === undefined || origins.length === 0 ? undefined : origins,
  };
}

const TOKEN_USAGE = `Usage: chronicle-server token --space <space> --sub <subject> [--scope read,write]
                              [--expires <seconds, default 3600>] [--secret <hmac secret>]
Environment: CHRONICLE_SECRET`;

export interface TokenRequest {
  secret: string;
  space: string;
  sub: string;
  scope: ('read' | 'write')[];
  expiresInSeconds: number;
}

/** Reads the token subcommand's flags; throws a TypeError with its usage on bad input. */
export function parseTokenArgs(argv: string[], env: NodeJS.ProcessEnv): TokenRequest {
  const { values } = parseArgs({
    args: argv,
    options: {
      space: { type: 'string' },
      sub: { type: 'string' },
      scope: { type: 'string' },
      expires: { type: 'string' },
      secret: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new TypeError(TOKEN_USAGE);
  const secret = values.secret ?? env.CHRONICLE_SECRET;
  if (secret === undefined || secret === '') {
    throw new TypeError(
      `a token needs the server's secret: --secret or CHRONICLE_SECRET\n${TOKEN_USAGE}`,
    );
  }
  if (values.space === undefined || values.sub === undefined) {
    throw new TypeError(`--space and --sub are required\n${TOKEN_USAGE}`);
  }
  const scope = (values.scope ?? 'read,write').split(',').map((s) => s.trim());
  if (scope.length === 0 || scope.some((s) => s !== 'read' && s !== 'write')) {
    throw new TypeError(
      `--scope is read, write or read,write, got ${values.scope}\n${TOKEN_USAGE}`,
    );
  }
  const expiresText = values.expires ?? '3600';
  const expiresInSeconds = Number(expiresText);
  if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1) {
    throw new TypeError(
      `--expires is a positive number of seconds, got ${expiresText}\n${TOKEN_USAGE}`,
    );
  }
  return {
    secret,
    space: values.space,
    sub: values.sub,
    scope: scope as ('read' | 'write')[],
    expiresInSeconds,
  };
}

function printToken(argv: string[], env: NodeJS.ProcessEnv): void {
  try {
    const { secret, ...claims } = parseTokenArgs(argv, env);
    process.stdout.write(`${createToken(secret, claims)}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  }
}

function storageOptions(config: CliConfig): { compaction?: false; archiveDir?: string } {
  return {
    ...(config.noCompaction === true ? { compaction: false as const } : {}),
    ...(config.archive === undefined ? {} : { archiveDir: config.archive }),
  };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (argv[0] === 'token') {
    printToken(argv.slice(1), env);
    return;
  }
  if (argv[0] === 'archive') {
    await archiveCommand(argv.slice(1), env, CLI_DEFAULTS.data);
    return;
  }
  if (argv[0] === 'compact') {
    await compactCommand(argv.slice(1), env, CLI_DEFAULTS.data);
    return;
  }
  let config: CliConfig;
  try {
    config = parseCliArgs(argv, env);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  if (config.secret === undefined) {
    if (!isLoopback(config.host)) {
      process.stderr.write(
        `chronicle-server: refusing to listen on ${config.host} without a secret. Pass --secret or CHRONICLE_SECRET.\n`,
      );
      process.exitCode = 2;
      return;
    }
    process.stderr.write(
      '\n*** WARNING: no --secret / CHRONICLE_SECRET: AUTHENTICATION IS DISABLED. ***\n' +
        '*** Anyone who can reach this port reads and writes the one default space. ***\n' +
        '*** Allowed on a loopback address only, for development.                   ***\n\n',
    );
  }
  let snapshots: SnapshotOptions | undefined;
  if (config.projections !== undefined) {
    try {
      snapshots = await loadProjections(config.projections.module, config.projections.every);
    } catch (error) {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 2;
      return;
    }
  }
  const server = await createSyncServer({
    port: config.port,
    host: config.host,
    // Several servers may share one PostgreSQL database; SQLite is the embedded default.
    storage:
      config.postgres === undefined
        ? sqliteStorage(config.data, storageOptions(config))
        : postgresStorage(config.postgres, {
            ...storageOptions(config),
            ...(config.postgresSchema === undefined ? {} : { schema: config.postgresSchema }),
          }),
    auth: config.secret === undefined ? false : { secret: config.secret },
    ...(config.origins === undefined ? {} : { origins: config.origins }),
    ...(config.allowUnsigned === true ? { requireSignatures: false } : {}),
    ...(config.wireCompression === true ? { wireCompression: true } : {}),
    ...(config.publish === undefined
      ? {}
      : { publish: { sink: sinkFromUrl(config.publish.url, { stream: config.publish.stream }) } }),
    ...(snapshots === undefined ? {} : { snapshots }),
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`chronicle-server: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`chronicle-server: shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Runs the command with the process's arguments and environment; a failure exits with 1. */
export function runCli(): void {
  main(process.argv.slice(2), process.env).catch((error: unknown) => {
    process.stderr.write(
      `chronicle-server: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}

// `tsx src/server/cli.ts` (npm run server) and `node dist/src/server/cli.js`; the installed
// command goes through bin.ts, since npm's link makes argv[1] a path other than this module's.
const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) runCli();
