/**
 * A sync server on an archived SQLite store (issue 18 part 4): a new client's catch-up across
 * the archived range gets every event, in order; with a file gone, the catch-up stops with an
 * STORAGE error instead of skipping the range (archive-files.ts 3).
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createToken } from '../../src/server/auth.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { makeEvents } from './events.ts';
import { ProtocolClient, SECRET, tempDir } from './helpers.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function serve(path: string, archiveDir: string): Promise<SyncServer> {
  const server = await createSyncServer({
    storage: sqliteStorage(path, { archiveDir, compaction: false }),
    auth: { secret: SECRET },
    requireSignatures: false,
    log: () => {},
  });
  cleanups.push(() => server.close());
  return server;
}

const token = () =>
  createToken(SECRET, {
    space: 'board',
    sub: 'reader',
    scope: ['read', 'write'],
    expiresInSeconds: 600,
  });

describe('a sync server on an archived store', () => {
  it('catches a new client up across archived blocks, and fails loudly when a file is gone', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const archiveDir = join(tmp.dir, 'cold');
    const events = makeEvents(3000, { replica: 'oldwriter', prefix: 'old' });
    const fill = sqliteStorage(path, { archiveDir, compaction: { tailEvents: 200 } });
    const log = await fill.openSpace('board');
    for (let i = 0; i < events.length; i += 500) await log.ingest(events.slice(i, i + 500));
    await fill.compact!();
    const report = await fill.archive!({ before: 1_800_000_000_000 });
    await fill.close();
    expect(report.events).toBeGreaterThan(2500);

    const server = await serve(path, archiveDir);
    const client = await ProtocolClient.connect(server.url, token(), { expectPull: false });
    cleanups.push(() => client.close());
    const pulled = await client.pullAll();
    expect(pulled.map((e) => e.id)).toEqual(events.map((e) => e.id));
    client.close();
    await server.close();

    // The first file gone: the catch-up from 0 must not skip to what the database still holds.
    const first = readdirSync(archiveDir)
      .filter((f) => f.endsWith('.blocks'))
      .sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]))[0]!;
    rmSync(join(archiveDir, first));
    const broken = await serve(path, archiveDir);
    const again = await ProtocolClient.connect(broken.url, token(), { expectPull: false });
    cleanups.push(() => again.close());
    again.raw.send({ type: 'pull' });
    const answer = await again.raw.next((m) => m.type === 'events' || m.type === 'error');
    expect(answer).toMatchObject({ type: 'error', code: 'STORAGE', fatal: true });
    expect(String(answer.message)).toMatch(/archive file .* cannot be read/);
  });
});
