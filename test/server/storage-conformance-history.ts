/**
 * ServerStorage conformance, history in the total order (storage.ts SpaceLog.readByCursor;
 * docs/storage-growth.md part 3): the meaning of a replica's readByCursor (storage/adapter.ts
 * invariants 4 and 5) over whatever the storage keeps (rows, blocks, both). Written for every
 * storage that serves history; `settle` moves what it can into its compact form (SQLite: seals).
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import type { SpaceLog } from '../../src/server/storage.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import { makeEvent } from './events.ts';

export interface HistoryFixture {
  openSpace(space: string): Promise<SpaceLog>;
  /** Seals (or otherwise compacts) what the storage would in time; a no-op where nothing does. */
  settle(): Promise<void>;
}

/** The model: `events` sorted by cursor, the query applied (adapter.ts invariant 4). */
export function modelRead(events: readonly StoredEventRecord[], query: CursorQuery): string[] {
  const sorted = [...events]
    .filter((e) => query.stream === undefined || e.stream === query.stream)
    .sort((a, b) => (a.cursor < b.cursor ? -1 : 1));
  if (query.reverse) sorted.reverse();
  return sorted
    .filter((e) =>
      query.reverse
        ? (query.after === undefined || e.cursor < query.after) &&
          (query.until === undefined || e.cursor >= query.until)
        : (query.after === undefined || e.cursor > query.after) &&
          (query.until === undefined || e.cursor <= query.until),
    )
    .slice(0, query.limit)
    .map((e) => e.id);
}

async function read(log: SpaceLog, query: CursorQuery): Promise<LocalRecord[]> {
  const page = await log.readByCursor!(query);
  expect(page.length).toBeLessThanOrEqual(query.limit);
  return page;
}

/** Every page of `query` (its `limit` the page size), following `after`, concatenated. */
async function pageAll(log: SpaceLog, query: CursorQuery): Promise<string[]> {
  const ids: string[] = [];
  let after = query.after;
  for (;;) {
    const page = await read(log, after === undefined ? query : { ...query, after });
    ids.push(...page.map((r) => r.event.id));
    if (page.length < query.limit) return ids;
    after = page[page.length - 1]!.event.cursor;
  }
}

let replicaCount = 0;

/** `count` events of a fresh replica, walls rising from `wall`, streams cycling through `streams`. */
function run(count: number, wall: number, streams = ['a', 'b', 'c']): StoredEventRecord[] {
  replicaCount += 1;
  const replica = `hist${String(replicaCount).padStart(12, '0')}`;
  return Array.from({ length: count }, (_, i) =>
    makeEvent({
      replica,
      seq: i + 1,
      wall: wall + i * 1000,
      stream: streams[i % streams.length] ?? 's',
      id: `${replica}-${i + 1}`,
    }),
  );
}

export function historyConformance(current: () => HistoryFixture): void {
  /** A log of 400 events in 4 batches plus 30 late ones (cursor far below their position). */
  async function lateLog(log: SpaceLog): Promise<StoredEventRecord[]> {
    const all: StoredEventRecord[] = [];
    for (let b = 0; b < 4; b++) {
      const batch = run(100, 1_700_000_000_000 + b * 1_000_000);
      await log.ingest(batch);
      all.push(...batch);
    }
    // Late: written last, sorted among the first events (a replica back from weeks offline).
    const late = run(30, 1_700_000_000_500);
    await log.ingest(late);
    all.push(...late);
    await current().settle();
    return all;
  }

  it('reads the whole log in cursor order, late events among the first, forward and in reverse (adapter 4)', async () => {
    const log = await current().openSpace('h');
    const all = await lateLog(log);
    const forward = await read(log, { limit: 1000 });
    expect(forward.map((r) => r.event.id)).toEqual(modelRead(all, { limit: 1000 }));
    // Whole records, positions included.
    const byPos = new Map((await log.readByPos(0, 1000)).map((r) => [r.event.id, r]));
    for (const record of forward) expect(record).toEqual(byPos.get(record.event.id));
    const reverse = await read(log, { limit: 1000, reverse: true });
    expect(reverse.map((r) => r.event.id)).toEqual(modelRead(all, { limit: 1000, reverse: true }));
  });

  it('pages by cursor with a limit, forward and in reverse, reaching every event once (adapter 4, 5)', async () => {
    const log = await current().openSpace('h');
    const all = await lateLog(log);
    expect(await pageAll(log, { limit: 7 })).toEqual(modelRead(all, { limit: 10_000 }));
    expect(await pageAll(log, { limit: 13, reverse: true })).toEqual(
      modelRead(all, { limit: 10_000, reverse: true }),
    );
  });

  it('takes `after` as exclusive and `until` as inclusive, in both directions', async () => {
    const log = await current().openSpace('h');
    const all = await lateLog(log);
    const sorted = [...all].sort((a, b) => (a.cursor < b.cursor ? -1 : 1));
    const after = sorted[50]!.cursor;
    const until = sorted[250]!.cursor;
    const forward = await read(log, { after, until, limit: 1000 });
    expect(forward.map((r) => r.event.id)).toEqual(sorted.slice(51, 251).map((e) => e.id));
    const reverse = await read(log, { after: until, until: after, reverse: true, limit: 1000 });
    expect(reverse.map((r) => r.event.id)).toEqual(
      sorted
        .slice(50, 250)
        .reverse()
        .map((e) => e.id),
    );
    expect(await read(log, { after: until, until: after, limit: 10 })).toEqual([]);
  });

  it('restricts a read to one stream, paged both ways', async () => {
    const log = await current().openSpace('h');
    const all = await lateLog(log);
    for (const stream of ['a', 'c']) {
      expect(await pageAll(log, { stream, limit: 9 })).toEqual(
        modelRead(all, { stream, limit: 10_000 }),
      );
      expect(await pageAll(log, { stream, limit: 9, reverse: true })).toEqual(
        modelRead(all, { stream, limit: 10_000, reverse: true }),
      );
    }
    expect(await read(log, { stream: 'none', limit: 10 })).toEqual([]);
  });

  it('skips the hole a lost copy leaves and reads the winning copy at its cursor (storage 3)', async () => {
    const log = await current().openSpace('h');
    const first = run(200, 1_700_000_000_000);
    await log.ingest(first);
    await current().settle();
    // A copy of the 100th event sorting before it: it wins, the held one becomes a hole.
    const held = first[99]!;
    const winner = makeEvent({
      replica: held.replica,
      seq: held.seq,
      wall: 1_699_000_000_000,
      id: held.id,
      stream: held.stream,
    });
    const { removed } = (await log.ingest([winner])) as { removed?: unknown[] };
    expect(removed?.length ?? 1).toBe(1);
    await current().settle();
    const ids = (await read(log, { limit: 1000 })).map((r) => r.event.cursor);
    expect(ids).toHaveLength(200);
    expect(ids[0]).toBe(winner.cursor);
    expect(ids).not.toContain(held.cursor);
  });

  it('reads a log whose blocks all overlap (16 writers interleaved), paged both ways', async () => {
    const log = await current().openSpace('h');
    const all: StoredEventRecord[] = [];
    // Same walls for every writer: each batch (a block, once sealed) spans the whole log.
    for (let w = 0; w < 16; w++) {
      const batch = run(128, 1_700_000_000_000 + w);
      await log.ingest(batch);
      all.push(...batch);
    }
    await current().settle();
    expect(await pageAll(log, { limit: 300 })).toEqual(modelRead(all, { limit: 10_000 }));
    expect(await pageAll(log, { stream: 'b', limit: 50, reverse: true })).toEqual(
      modelRead(all, { stream: 'b', limit: 10_000, reverse: true }),
    );
  });

  it('keeps spaces apart (storage 1)', async () => {
    const one = await current().openSpace('one');
    const two = await current().openSpace('two');
    await one.ingest(run(50, 1_700_000_000_000));
    await current().settle();
    expect(await read(two, { limit: 100 })).toEqual([]);
    expect(await read(one, { limit: 100 })).toHaveLength(50);
  });

  it('equals sorting the model by cursor for random logs with late events and random queries (property)', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            count: fc.integer({ min: 1, max: 60 }),
            // Batches written later may sort anywhere: late events.
            wall: fc.integer({ min: 0, max: 1_000_000 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(
          fc.record({
            from: fc.option(fc.nat(), { nil: undefined }),
            to: fc.option(fc.nat(), { nil: undefined }),
            stream: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
            reverse: fc.boolean(),
            limit: fc.integer({ min: 1, max: 300 }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (batches, queries) => {
          round += 1;
          const log = await current().openSpace(`p${round}`);
          const all: StoredEventRecord[] = [];
          for (const { count, wall } of batches) {
            const batch = run(count, 1_700_000_000_000 + wall * 1000);
            await log.ingest(batch);
            all.push(...batch);
          }
          await current().settle();
          const cursors = all.map((e) => e.cursor).sort();
          const at = (i: number | undefined) =>
            i === undefined ? undefined : cursors[i % cursors.length];
          for (const q of queries) {
            const query: CursorQuery = { reverse: q.reverse, limit: q.limit };
            const after = at(q.from);
            const until = at(q.to);
            if (after !== undefined) query.after = after;
            if (until !== undefined) query.until = until;
            if (q.stream !== undefined) query.stream = q.stream;
            const page = await read(log, query);
            expect(page.map((r) => r.event.id)).toEqual(modelRead(all, query));
          }
        },
      ),
      { numRuns: 25 },
    );
  });
}
