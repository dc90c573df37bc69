/**
 * ServerStorage conformance, what the broker publisher keeps (storage.ts invariant 6): run by
 * runServerStorageConformance on SQLite and PostgreSQL.
 */
import { expect, it } from 'vitest';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvents } from './events.ts';

export function publishingConformance(
  current: () => ServerStorage,
  reopen: () => (() => Promise<ServerStorage>) | undefined,
): void {
  it('lists every space with its head, names kept exactly (6)', async () => {
    const storage = current();
    expect(await storage.listSpaces()).toEqual([]);
    await (await storage.openSpace('b')).ingest(makeEvents(3));
    await storage.openSpace('a \u0000 é');
    const listed = await storage.listSpaces();
    expect(listed.sort((x, y) => (x.space < y.space ? -1 : 1))).toEqual([
      { space: 'a \u0000 é', head: 0 },
      { space: 'b', head: 3 },
    ]);
  });

  it("keeps a publisher's positions per space and per publisher name (6)", async () => {
    const storage = current();
    expect(await storage.publishedPositions('nats')).toEqual(new Map());
    await storage.setPublishedPos('nats', 'a', 5);
    await storage.setPublishedPos('nats', 'b', 2);
    await storage.setPublishedPos('rabbit', 'a', 1);
    expect(await storage.publishedPositions('nats')).toEqual(
      new Map([
        ['a', 5],
        ['b', 2],
      ]),
    );
    expect(await storage.publishedPositions('rabbit')).toEqual(new Map([['a', 1]]));
  });

  it('never moves a published position back: a publisher that lost its lock cannot rewind (6)', async () => {
    const storage = current();
    await storage.setPublishedPos('nats', 'a', 7);
    await storage.setPublishedPos('nats', 'a', 3);
    expect((await storage.publishedPositions('nats')).get('a')).toBe(7);
    await storage.setPublishedPos('nats', 'a', 9);
    expect((await storage.publishedPositions('nats')).get('a')).toBe(9);
  });

  it('keeps published positions across a reopen (6)', async () => {
    const again = reopen();
    if (again === undefined) return;
    await current().setPublishedPos('nats', 's', 4);
    const storage = await again();
    expect(await storage.publishedPositions('nats')).toEqual(new Map([['s', 4]]));
  });

  it("grants a publisher's lock, and grants it again once released", async () => {
    const storage = current();
    const lock = await storage.lockPublisher('nats');
    expect(lock).toBeDefined();
    await lock!.release();
    const again = await storage.lockPublisher('nats');
    expect(again).toBeDefined();
    await again!.release();
  });
}
