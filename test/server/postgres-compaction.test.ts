/**
 * postgresStorage's compactor (issue 18: postgres-compactor.ts, postgres-blocks.ts): sealed
 * events are read, deduplicated and resolved as rows are; several servers compact one database;
 * a compactor killed mid-way loses nothing; a database of layout 2 moves to layout 3.
 * The conformance suite also runs with everything sealed (storage.test.ts).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { EventId, type ReplicaId, Seq } from '../../src/core/ids.ts';
import { type PostgresStorageOptions, postgresStorage } from '../../src/server/postgres.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { makeEvent, makeEvents } from './events.ts';
import { exited } from './local-services.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema, queryRows } from './postgres-helpers.ts';

let server: PostgresServer | undefined;
let url = '';
let schema = '';
const opened: ServerStorage[] = [];

beforeAll(async () => {
  server = await startPostgres();
  url = server.url;
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const storage of opened.splice(0)) await storage.close().catch(() => {});
  await dropSchema(url, schema);
});

/** A storage on this test's schema; sealing only when told (compact()), unless `options` say. */
function instance(options: PostgresStorageOptions = {}): ServerStorage {
  const storage = postgresStorage(url, {
    schema,
    poolSize: 4,
    compaction: { tailEvents: 10, eager: true, idleMs: 60_000 },
    ...options,
  });
  opened.push(storage);
  return storage;
}

const sql = <R extends pg.QueryResultRow>(text: string) => queryRows<R>(url, text);

/** Rows and sealed events of the schema: where each event is. */
async function where(): Promise<{ rows: number; sealed: number; blocks: number }> {
  const [r] = await sql<{ rows: number; sealed: number; blocks: number }>(
    `SELECT (SELECT count(*)::int FROM ${schema}.events) AS rows,
            (SELECT coalesce(sum(n), 0)::int FROM ${schema}.event_blocks) AS sealed,
            (SELECT count(*)::int FROM ${schema}.event_blocks) AS blocks`,
  );
  return r!;
}

/** Events with canonical ids (as stores append them), of `replica`, seqs from `first`. */
function canonicalEvents(count: number, replica: string, first = 1): StoredEventRecord[] {
  return Array.from({ length: count }, (_, i) =>
    makeEvent({
      replica,
      seq: first + i,
      id: EventId.canonical(replica as ReplicaId, Seq.make(first + i)),
    }),
  );
}

async function readAll(log: SpaceLog, page = 1000): Promise<{ pos: number; id: string }[]> {
  const out: { pos: number; id: string }[] = [];
  for (;;) {
    const records = await log.readByPos(out.at(-1)?.pos ?? 0, page);
    if (records.length === 0) return out;
    out.push(...records.map((r) => ({ pos: r.pos, id: r.event.id })));
  }
}

describe('postgresStorage compaction: reads of sealed events', () => {
  it('reads across the block/tail boundary the same as before sealing, from any position and page size', async () => {
    schema = freshSchema();
    const writer = await instance().openSpace('s');
    const events = [
      ...canonicalEvents(150, 'replicaaaaaaaaaa'),
      ...makeEvents(150, { replica: 'replicabbbbbbbbb' }),
    ];
    await writer.ingest(events);
    const before = await readAll(await instance({ compaction: false }).openSpace('s'));
    expect((await instance().compact!()).events).toBe(290);
    expect(await where()).toEqual({ rows: 10, sealed: 290, blocks: 3 });
    // Another instance: its reads come from the database, not from the writer's recent records.
    const reader = await instance().openSpace('s');
    expect(await readAll(reader)).toEqual(before);
    for (const [after, limit] of [
      [0, 1],
      [0, 128],
      [127, 2],
      [128, 300],
      [250, 50],
      [285, 10],
      [289, 3],
      [299, 5],
    ] as const) {
      const page = await reader.readByPos(after, limit);
      expect(page.map((r) => r.pos)).toEqual(before.slice(after, after + limit).map((r) => r.pos));
      expect(page.map((r) => r.event)).toEqual(events.slice(after, after + limit));
    }
    expect(await reader.idAtPos(1)).toBe(events[0]!.id);
    expect(await reader.idAtPos(200)).toBe(events[199]!.id);
    expect(await reader.idAtPos(295)).toBe(events[294]!.id);
    expect(await reader.eventAtSlot('replicaaaaaaaaaa', 3)).toEqual(events[2]);
    expect(await reader.eventAtSlot('replicaaaaaaaaaa', 151)).toBeUndefined();
    expect(await reader.eventAtSlot('replicabbbbbbbbb', 140)).toEqual(events[289]);
  });

  it('recognises an old id re-sent after its event was sealed, canonical or custom, and stores it once', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    const canonical = canonicalEvents(40, 'replicaaaaaaaaaa');
    const custom = makeEvents(40, { replica: 'replicabbbbbbbbb' });
    await log.ingest([...canonical, ...custom]);
    await instance().compact!();
    expect((await where()).sealed).toBe(70);
    // Through another server, in one batch with a new event, and reversed.
    const other = await instance().openSpace('s');
    const fresh = makeEvent({ replica: 'replicacccccccc' });
    const again = await other.ingest([fresh, ...canonical, ...custom].reverse());
    expect(again.written.map((r) => r.event.id)).toEqual([fresh.id]);
    expect(await other.headPos()).toBe(81);
    // Another copy of a sealed canonical id, at another (replica, seq), later: it loses.
    const copy = makeEvent({
      id: canonical[3]!.id,
      replica: 'replicaddddddddd',
      seq: 1,
      wall: 1_800_000_000_000,
    });
    const lost = await other.ingest([copy]);
    expect(lost.written).toEqual([]);
    expect(lost.lost?.map((l) => [l.code, l.event.id, l.held])).toEqual([
      ['ID_CONFLICT', copy.id, false],
    ]);
    // A re-sent old event is still held as itself: its owner may send it back.
    const ids = (await readAll(other)).map((r) => r.id);
    expect(ids).toHaveLength(81);
    expect(new Set(ids).size).toBe(81);
  });

  it("recognises a sealed custom id that is another slot's canonical id, when that slot's event arrives", async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    // "replicaeeeeeeeee.7" as a custom id, on another replica's event.
    const lookalike = makeEvent({
      replica: 'replicabbbbbbbbb',
      seq: 1,
      id: EventId.canonical('replicaeeeeeeeee' as ReplicaId, Seq.make(7)),
    });
    await log.ingest([lookalike, ...makeEvents(20, { replica: 'replicabbbbbbbbb', firstSeq: 2 })]);
    await instance().compact!();
    expect((await where()).sealed).toBe(11);
    const [owner] = canonicalEvents(1, 'replicaeeeeeeeee', 7);
    const result = await (await instance().openSpace('s')).ingest([owner!]);
    expect(result.written).toEqual([]);
    expect(result.lost?.map((l) => [l.code, l.event.replica, l.held])).toEqual([
      ['ID_CONFLICT', 'replicaeeeeeeeee', false],
    ]);
  });

  it('refuses an event reusing a sealed (replica, seq) under another id, and reports the slot', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    const events = canonicalEvents(30, 'replicaaaaaaaaaa');
    await log.ingest(events);
    await instance().compact!();
    const reuse = makeEvent({ replica: 'replicaaaaaaaaaa', seq: 5, wall: 1_800_000_000_000 });
    await expect(log.ingest([reuse])).rejects.toMatchObject({ code: 'SEQ_CONFLICT' });
    expect(await log.headPos()).toBe(30);
  });

  it('takes a held copy that lost out of its block; the winner takes the head and the loser leaves a hole', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    const events = makeEvents(40);
    await log.ingest(events);
    await instance().compact!();
    expect((await where()).sealed).toBe(30);
    // Another copy of the third event's id, whose cursor sorts first: it wins (core/copies.ts).
    const loser = events[2]!;
    const winner = makeEvent({
      id: loser.id,
      replica: 'replica0aaaaaaaa',
      seq: 1,
      wall: 1_600_000_000_000,
    });
    const result = await log.ingest([winner]);
    expect(result.written.map((r) => r.pos)).toEqual([41]);
    expect(result.lost?.map((l) => [l.event, l.held])).toEqual([[loser, true]]);
    const reader = await instance().openSpace('s');
    const all = await readAll(reader);
    expect(all.map((r) => r.pos)).toEqual([1, 2, ...Array.from({ length: 38 }, (_, i) => i + 4)]);
    expect(all.filter((r) => r.id === loser.id)).toEqual([{ pos: 41, id: loser.id }]);
    expect((await reader.readByPos(40, 1))[0]!.event).toEqual(winner);
    expect(await reader.idAtPos(3)).toBeUndefined();
    expect(await reader.eventAtSlot(loser.replica, loser.seq)).toBeUndefined();
    // And the loser, re-sent, stays out.
    expect((await reader.ingest([loser])).written).toEqual([]);
    expect(await where()).toEqual({ rows: 11, sealed: 29, blocks: 1 });
  });
});

describe('postgresStorage compaction: several servers, crashes, layouts', () => {
  it('keeps every event once when two servers ingest and compact one space at once', async () => {
    schema = freshSchema();
    const eager = { compaction: { tailEvents: 0, eager: true, idleMs: 0 } };
    const one = instance(eager);
    const two = instance(eager);
    const [a, b] = await Promise.all([one.openSpace('s'), two.openSpace('s')]);
    const events = [
      ...canonicalEvents(200, 'replicaaaaaaaaaa'),
      ...makeEvents(200, { replica: 'replicabbbbbbbbb' }),
    ];
    const batches: StoredEventRecord[][] = [];
    for (let i = 0; i < events.length; i += 9) batches.push(events.slice(i, i + 15));
    let compacting = true;
    const compactors = [one, two].map(async (storage) => {
      while (compacting) await storage.compact!();
    });
    const results = await Promise.all(
      batches.flatMap((batch, i) => [
        a!.ingest(batch),
        b!.ingest(i % 2 === 0 ? [...batch].reverse() : batch),
      ]),
    );
    compacting = false;
    await Promise.all(compactors);
    const written = results.flatMap((r) => r.written);
    expect(written.map((r) => r.pos).sort((x, y) => x - y)).toEqual(
      Array.from({ length: events.length }, (_, i) => i + 1),
    );
    await one.compact!();
    const place = await where();
    expect(place.rows + place.sealed).toBe(events.length);
    expect(place.sealed).toBeGreaterThan(0);
    const all = await readAll(await instance().openSpace('s'), 97);
    expect(all.map((r) => r.pos)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
    expect(new Set(all.map((r) => r.id))).toEqual(new Set(events.map((e) => e.id)));
    // And every one of them is still recognised.
    expect((await b!.ingest(events)).written).toEqual([]);
  });

  it('loses nothing when the compacting server is SIGKILLed mid-way, again and again', async () => {
    schema = freshSchema();
    const log = await instance({ compaction: false }).openSpace('s');
    // Enough blocks that the child is still at it when killed, however fast it seals.
    const events = makeEvents(24_000);
    for (let i = 0; i < events.length; i += 1000) await log.ingest(events.slice(i, i + 1000));
    let sealedBefore = 0;
    for (let round = 0; round < 6; round++) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/server/postgres-compact-child.ts', url, schema],
        { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const lines = createInterface({ input: child.stdout! });
      await new Promise<void>((resolve) => lines.once('line', () => resolve()));
      // Killed once it sealed a few blocks more than the round before: mid-way, mid-step maybe.
      for (;;) {
        const { sealed } = await where();
        if (sealed >= sealedBefore + 256) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      // At another point of a step each round.
      await new Promise((r) => setTimeout(r, round * 3));
      child.kill('SIGKILL');
      await exited(child);
      expect(child.signalCode).toBe('SIGKILL');
      const place = await where();
      expect(place.rows + place.sealed).toBe(events.length);
      expect(place.rows).toBeGreaterThan(0);
      sealedBefore = place.sealed;
    }
    expect(sealedBefore).toBeGreaterThan(0);
    const reader = await instance().openSpace('s');
    const all = await readAll(reader);
    expect(all.map((r) => r.id)).toEqual(events.map((e) => e.id));
    expect(all.map((r) => r.pos)).toEqual(events.map((_, i) => i + 1));
  });

  it('the compact command works on the schema --postgres-schema names', async () => {
    schema = freshSchema();
    const log = await instance({ compaction: false }).openSpace('s');
    // The command keeps the default tail as rows and seals the rest.
    const events = makeEvents(2_000);
    for (let i = 0; i < events.length; i += 1000) await log.ingest(events.slice(i, i + 1000));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/server/cli.ts', 'compact', '--postgres', url],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        env: { ...process.env, CHRONICLE_POSTGRES_SCHEMA: schema },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let printed = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
    });
    await exited(child);
    expect(child.exitCode).toBe(0);
    const report = JSON.parse(printed) as { storage: string; events: number };
    expect(report.storage.endsWith(`/${schema}`)).toBe(true);
    expect(report.events).toBeGreaterThan(0);
    expect(await where()).toMatchObject({ sealed: report.events, rows: 2_000 - report.events });
    const [other] = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = 'chronicle'`,
    );
    expect(other!.n).toBe(0);
  });

  it('moves a database of layout 2 to layout 3 when servers start on it at once, and seals its events', async () => {
    schema = freshSchema();
    const old = instance({ compaction: false });
    const events = makeEvents(300);
    await (await old.openSpace('s')).ingest(events);
    await old.close();
    // What a server of layout 2 made: no tables for blocks.
    await sql(`DROP TABLE ${schema}.event_blocks, ${schema}.event_runs`);
    expect(await sql(`SELECT version FROM ${schema}.schema_version`)).toEqual([{ version: 2 }]);
    // One that does not compact leaves it at layout 2, and reads it as it is.
    const cautious = instance({ compaction: false });
    expect(await readAll(await cautious.openSpace('s'))).toHaveLength(300);
    expect(await sql(`SELECT version FROM ${schema}.schema_version`)).toEqual([{ version: 2 }]);
    const servers = [instance(), instance(), instance()];
    const logs = await Promise.all(servers.map((s) => s.openSpace('s')));
    expect(await sql(`SELECT version FROM ${schema}.schema_version`)).toEqual([{ version: 3 }]);
    expect((await servers[0]!.compact!()).events).toBe(290);
    for (const log of logs) {
      expect((await readAll(log)).map((r) => r.id)).toEqual(events.map((e) => e.id));
    }
    expect((await logs[1]!.ingest(events.slice(0, 50))).written).toEqual([]);
  });

  it('seals by itself in the background after appends, down to the tail', async () => {
    schema = freshSchema();
    const storage = instance({ compaction: { tailEvents: 100, idleMs: 0 } });
    const log = await storage.openSpace('s');
    const sealedReaches = async (n: number) => {
      const deadline = Date.now() + 20_000;
      while ((await where()).sealed < n && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      return where();
    };
    for (let i = 0; i < 5; i++) await log.ingest(makeEvents(100, { firstSeq: 1 + i * 100 }));
    // Full blocks only (BLOCK_EVENTS = 128), none within the last 100 positions.
    expect(await sealedReaches(384)).toEqual({ rows: 116, sealed: 384, blocks: 3 });
    // Later appends wake it again.
    await log.ingest(makeEvents(300, { firstSeq: 501 }));
    expect(await sealedReaches(640)).toEqual({ rows: 160, sealed: 640, blocks: 5 });
  });
});
