/** sqliteStorage(path) on a fresh checkout, where the folder of `path` does not exist yet. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { makeEvents } from './events.ts';
import { tempDir } from './helpers.ts';

const tmp = tempDir();
afterEach(() => tmp.cleanup());

describe('sqliteStorage', () => {
  it('creates the missing folders of its database file and keeps its events there (invariant 10)', async () => {
    const path = join(tmp.dir, 'data', 'nested', 'chronicle.sqlite');
    const events = makeEvents(2);
    const storage = sqliteStorage(path);
    await (await storage.openSpace('s')).ingest(events);
    await storage.close();
    expect(existsSync(path)).toBe(true);

    const again = sqliteStorage(path);
    const log = await again.openSpace('s');
    expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual(events.map((e) => e.id));
    await again.close();
  });
});
