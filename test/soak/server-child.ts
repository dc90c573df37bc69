/**
 * The soak's sync server, in a child process of its own so that the harness can SIGKILL it and
 * start it again on the same SQLite file (forked by soak.ts with SOAK_SERVER set). It answers
 * `head` (events in the soak's space). No side effects on import unless SOAK_SERVER is set.
 */
import { fileURLToPath } from 'node:url';
import { createSyncServer, silentLogger, sqliteStorage } from '../../src/server/index.ts';
import { type BenchChild, forkBenchChild, serveParent } from '../bench/bench-child.ts';

export const SOAK_SECRET = 'soak-secret-0123456789';
export const SOAK_SPACE = 'soak';

/** Starts the server child on `path` (created on first start, reused after a kill). */
export function forkServer(path: string): Promise<BenchChild> {
  return forkBenchChild(fileURLToPath(import.meta.url), { SOAK_SERVER: path }, 'the soak server');
}

async function serveAsChild(path: string): Promise<void> {
  const storage = sqliteStorage(path);
  const server = await createSyncServer({
    host: '127.0.0.1',
    port: 0,
    storage,
    auth: { secret: SOAK_SECRET },
    log: silentLogger,
  });
  const space = await storage.openSpace(SOAK_SPACE);
  serveParent(server.url, { head: () => space.headPos() }, () => server.close());
}

const path = process.env.SOAK_SERVER;
if (path !== undefined && path !== '') await serveAsChild(path);
