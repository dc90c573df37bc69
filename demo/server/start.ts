/**
 * `npm start`: builds the demo if needed, then runs ONE process that serves it and runs the
 * sync server (SQLite in ./data), and prints the URL to open.
 *
 * Environment: PORT (default 8080), HOST (default 127.0.0.1), CHRONICLE_DATA (default ./data),
 * CHRONICLE_SECRET (default: a random secret kept in <data>/demo-secret).
 * CHRONICLE_SYNC_URL (ws://host:port or wss://…): use that standalone chronicle-server instead
 * of the embedded one; CHRONICLE_SECRET must then be the secret it runs with.
 */
import { resolve } from 'node:path';
import type { LogEntry } from '../../src/server/index.ts';
import { startDemo } from './app.ts';
import { DEFAULT_DIST, ensureBuilt } from './build.ts';

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.CHRONICLE_DATA ?? 'data');

if ((await ensureBuilt(DEFAULT_DIST)) === 'built') console.log('Built the demo into dist/demo.');

// Connections come and go all day in a demo: print warnings and errors only.
const log = (entry: LogEntry) => {
  if (entry.level !== 'info') process.stderr.write(`${JSON.stringify(entry)}\n`);
};

const syncUrl = process.env.CHRONICLE_SYNC_URL;
const secret = process.env.CHRONICLE_SECRET;
if (syncUrl !== undefined && !secret) {
  console.error('CHRONICLE_SYNC_URL needs CHRONICLE_SECRET: the secret that server runs with.');
  process.exit(2);
}
const sync = syncUrl === undefined || !secret ? undefined : { url: syncUrl, secret };

let demo: Awaited<ReturnType<typeof startDemo>>;
try {
  demo = await startDemo({
    distDir: DEFAULT_DIST,
    dataDir,
    port,
    host,
    log,
    ...(sync === undefined ? {} : { sync }),
  });
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  console.error(
    code === 'EADDRINUSE'
      ? `Port ${port} is taken: try PORT=8081 npm start`
      : `The demo could not start: ${String(error)}`,
  );
  process.exit(1);
}

console.log(
  sync === undefined
    ? `Chronicle demo: sync server on SQLite in ${dataDir}`
    : `Chronicle demo: syncing through the chronicle-server at ${sync.url}`,
);
console.log(`\n  Open ${demo.url}\n`);
console.log('Open it in a second window (or a private window, another "device") to watch sync.');

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  demo.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
