/**
 * Tamper evidence in real Chromium (issue 16, part 3): a Node store writes its history through a
 * SQLite-backed sync server on 127.0.0.1; the server is stopped, one event's data is changed in
 * its file, and it is started again. A page (its store in a worker, on IndexedDB) that catches up
 * from it refuses the altered event, holds the rest, and its sync status says why.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TamperedEvent } from '../../../src/core/sync-types.ts';
import { type EventStore, memoryStorage, openStore } from '../../../src/index.ts';
import {
  createSyncServer,
  createToken,
  type SyncServer,
  sqliteStorage,
} from '../../../src/server/index.ts';
import { eventOfRow, type StoredRow, storedBody } from '../../../src/server/sqlite-rows.ts';
import { SECRET, tempDir } from '../../server/helpers.ts';
import type { TabWindow } from '../fixtures/tab-api.ts';
import { openTab, uniqueDb, waitUntil } from './harness.ts';
import { tabsSessionPerFile } from './session.ts';

const session = tabsSessionPerFile();
const tmp = tempDir();
let server: SyncServer | undefined;
let writer: EventStore | undefined;

afterEach(async () => {
  await writer?.close();
  await server?.close();
  server = undefined;
});

const token = (space: string, sub: string) =>
  createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds: 600 });

const start = (path: string) =>
  createSyncServer({ storage: sqliteStorage(path), auth: { secret: SECRET }, log: () => {} });

describe('a page catching up from a server whose file was edited', () => {
  it('refuses the altered event, holds the others, and says so in its sync status', async () => {
    const path = join(tmp.dir, `${uniqueDb('tamper')}.sqlite`);
    const space = uniqueDb('space');
    server = await start(path);
    writer = await openStore({
      name: 'writer',
      storage: memoryStorage(),
      syncOptions: { WebSocket: WebSocket as never },
    });
    for (let i = 1; i <= 4; i++) {
      await writer.append('cards', { type: 'added', data: { title: `card ${i}` } });
    }
    writer.sync.connect({ url: server.url, token: token(space, 'writer') });
    await waitUntil(async () => writer!.sync.status().pending === 0, 'the writer synced', 20_000);
    const replica = writer.replicaId;
    await writer.close();
    writer = undefined;
    await server.close();

    const db = new Database(path);
    const row = db
      .prepare<[string, string], StoredRow>(
        'SELECT pos, id, replica, seq, stream, cursor, body FROM events WHERE space = ? AND replica = ? AND seq = 2',
      )
      .get(space, replica)!;
    const altered = { ...eventOfRow(row), data: { title: 'changed on the server' } };
    db.prepare('UPDATE events SET body = ? WHERE space = ? AND pos = ?').run(
      storedBody(altered),
      space,
      row.pos,
    );
    db.close();

    server = await start(path);
    const page = await openTab(session.context, session.base, {
      db: uniqueDb('tamper-page'),
      mode: 'dedicated',
    });
    const url = server.url;
    await page.evaluate(
      ({ url, t }) => {
        (window as unknown as TabWindow).tab.store$().sync.connect({ url, token: t });
      },
      { url, t: token(space, 'page') },
    );
    const seen = await waitUntil(
      async () => {
        const view = await page.evaluate(async () => {
          const store = (window as unknown as TabWindow).tab.store$();
          return {
            titles: (await store.read({ stream: 'cards' })).map((e) => e.data),
            tampered: store.sync.status().tampered ?? [],
          };
        });
        return view.titles.length === 3 && view.tampered.length === 2 ? view : undefined;
      },
      'the page caught up',
      20_000,
    );
    expect(seen.titles).toEqual([{ title: 'card 1' }, { title: 'card 3' }, { title: 'card 4' }]);
    expect(seen.tampered.map((t: TamperedEvent) => `${t.reason}@${t.seq}`).sort()).toEqual([
      'bad-signature@2',
      'missing-link@3',
    ]);
  });
});
