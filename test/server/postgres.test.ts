/**
 * postgresStorage beyond the conformance suite: several storage instances (several servers) on
 * one database. Dense unique positions under concurrent ingests, appends heard across instances
 * through LISTEN/NOTIFY, the schema created once and versioned, close() releasing connections.
 */
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../../src/core/errors.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { dataTextOf } from '../../src/sync/event-codec.ts';
import { makeEvent, makeEvents } from './events.ts';
import { waitFor } from './helpers.ts';
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

/** A storage instance on this test's schema, as another server process would open it. */
function instance(poolSize = 4): ServerStorage {
  const storage = postgresStorage(url, { schema, poolSize });
  opened.push(storage);
  return storage;
}

/** The test database's name, as an identifier. */
function dbName(): string {
  return new URL(url).pathname.slice(1) || 'postgres';
}

const sql = <R extends pg.QueryResultRow>(text: string) => queryRows<R>(url, text);

describe('postgresStorage: several instances on one database', () => {
  it('keeps positions dense and unique, each event once, under concurrent ingests from two instances', async () => {
    schema = freshSchema();
    const [a, b] = await Promise.all([instance().openSpace('s'), instance().openSpace('s')]);
    expect(b!.replicaId).toBe(a!.replicaId);
    expect(await b!.epoch()).toBe(await a!.epoch());
    // 3 replicas x 60 events, sent in overlapping batches by both instances at once: every event
    // arrives at least twice, some batches race on the same ids.
    const events = [
      ...makeEvents(60, { replica: 'one' }),
      ...makeEvents(60, { replica: 'two' }),
      ...makeEvents(60, { replica: 'three' }),
    ];
    const batches: (typeof events)[] = [];
    for (let i = 0; i < events.length; i += 7) batches.push(events.slice(i, i + 12));
    const results = await Promise.all(
      batches.flatMap((batch, i) => [
        a!.ingest(batch),
        b!.ingest(i % 2 === 0 ? [...batch].reverse() : batch),
      ]),
    );
    const written = results.flatMap((r) => r.written);
    expect(written.map((r) => r.pos).sort((x, y) => x - y)).toEqual(
      Array.from({ length: events.length }, (_, i) => i + 1),
    );
    expect(new Set(written.map((r) => r.event.id)).size).toBe(events.length);
    for (const log of [a!, b!]) {
      expect(await log.headPos()).toBe(events.length);
      const all = await log.readByPos(0, 1000);
      expect(all.map((r) => r.pos)).toEqual(written.map((r) => r.pos).sort((x, y) => x - y));
      expect(new Set(all.map((r) => r.event.id))).toEqual(new Set(events.map((e) => e.id)));
    }
    const [count] = await sql<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.events`);
    expect(Number(count!.n)).toBe(events.length);
  });

  it('wakes an onAppend listener on instance B for an append through instance A (LISTEN/NOTIFY)', async () => {
    schema = freshSchema();
    const a = await instance().openSpace('s');
    const b = await instance().openSpace('s');
    const other = await instance().openSpace('other');
    const heardB: number[] = [];
    const heardOther: number[] = [];
    b.onAppend((head) => heardB.push(head));
    other.onAppend((head) => heardOther.push(head));
    await a.ingest(makeEvents(3));
    await waitFor(() => heardB.length > 0, 5000);
    expect(heardB).toEqual([3]);
    await a.ingest(makeEvents(2, { replica: 'second', firstSeq: 1 }));
    await waitFor(() => heardB.length > 1, 5000);
    expect(heardB).toEqual([3, 5]);
    // And the head B was told of is readable through B.
    expect((await b.readByPos(3, 10)).map((r) => r.pos)).toEqual([4, 5]);
    expect(heardOther).toEqual([]);
  });

  it('still hears appends made while its LISTEN connection was down (reconnect, then catch up)', async () => {
    schema = freshSchema();
    const a = await instance().openSpace('s');
    const b = await instance().openSpace('s');
    const heard: number[] = [];
    b.onAppend((head) => heard.push(head));
    await sql(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN chronicle_${schema}%'`,
    );
    await a.ingest(makeEvents(4));
    await waitFor(() => heard.includes(4), 10_000);
  });

  it('carries on after the database terminated all its connections (pool and LISTEN)', async () => {
    schema = freshSchema();
    const a = await instance().openSpace('s');
    const b = await instance().openSpace('s');
    const heard: number[] = [];
    b.onAppend((head) => heard.push(head));
    await a.ingest(makeEvents(2));
    await waitFor(() => heard.includes(2), 5000);
    await sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chronicle'",
    );
    // A connection may be found dead on first use; the call fails as a StorageError, never as a
    // half write, and the next one gets a fresh connection.
    const ingestOnce = async (events: ReturnType<typeof makeEvents>) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await a.ingest(events);
        } catch (error) {
          expect(error).toBeInstanceOf(StorageError);
          if (attempt > 3) throw error;
        }
      }
    };
    await ingestOnce(makeEvents(3, { replica: 'after', firstSeq: 1 }));
    expect(await a.headPos()).toBe(5);
    await waitFor(() => heard.includes(5), 10_000);
    expect((await b.readByPos(0, 10)).map((r) => r.pos)).toEqual([1, 2, 3, 4, 5]);
  });

  it('creates the schema once when instances start together, with a version row, and refuses a newer layout', async () => {
    schema = freshSchema();
    await Promise.all([1, 2, 3].map(() => instance().openSpace('s')));
    const rows = await sql<{ version: number }>(`SELECT version FROM ${schema}.schema_version`);
    expect(rows).toEqual([{ version: 3 }]);
    await sql(`UPDATE ${schema}.schema_version SET version = 99`);
    await expect(instance().openSpace('s')).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
  });

  it('moves a layout 1 database to the current layout (strict_heads, blocks) when it opens it, keeping its events', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    await log.ingest(makeEvents(2));
    await sql(`DROP TABLE ${schema}.strict_heads`);
    await sql(`UPDATE ${schema}.schema_version SET version = 1`);
    const again = await instance().openSpace('s');
    expect(await sql(`SELECT version FROM ${schema}.schema_version`)).toEqual([{ version: 3 }]);
    expect((await again.readByPos(0, 10)).length).toBe(2);
    expect(await sql(`SELECT count(*)::int AS n FROM ${schema}.strict_heads`)).toEqual([{ n: 0 }]);
  });

  it('keeps strings PostgreSQL TEXT cannot hold: U+0000 and lone surrogates, distinct and exact', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('sp\u0000ace\ud800');
    const [one, two] = [
      makeEvent({ id: 'id\ud800', stream: 's\u0000', replica: 'r\u0000\udc00' }),
      makeEvent({ id: 'id\ud801', stream: 's\u0000', replica: 'r\u0000\udc00' }),
    ];
    expect(await log.claimOrigins('sub\u0000\udfff', [one!, two!])).toEqual({ ok: true });
    expect(await log.ownerOf('r\u0000\udc00')).toBe('sub\u0000\udfff');
    expect((await log.ingest([one!, two!])).written.map((r) => r.pos)).toEqual([1, 2]);
    expect((await log.readByPos(0, 10)).map((r) => r.event)).toEqual([one, two]);
    expect(await log.idAtPos(1)).toBe('id\ud800');
    expect((await log.ingest([two!])).written).toEqual([]);
    // The server's peer keys are `${sub}\u0000${replica}`.
    await log.setCheckpoint('alice\u0000peer', { epoch: 'e', pos: 2 });
    expect(await log.getCheckpoint('alice\u0000peer')).toEqual({ epoch: 'e', pos: 2 });
    expect(await log.getCheckpoint('alice')).toBeUndefined();
  });

  it('writes the ingests handed over in one turn, of several spaces, in one transaction (10)', async () => {
    schema = freshSchema();
    const storage = instance();
    const logs = await Promise.all(['a', 'b', 'c'].map((s) => storage.openSpace(s)));
    const transactions = async () =>
      Number(
        (
          await sql<{ n: string }>(`SELECT count(DISTINCT xmin::text) AS n FROM ${schema}.events`)
        )[0]!.n,
      );
    await Promise.all(logs.map((log, i) => log.ingest(makeEvents(3, { replica: `r${i}` }))));
    expect(await transactions()).toBe(1);
    // One after the other, each is a group (and a transaction) of its own.
    for (const [i, log] of logs.entries()) {
      await log.ingest(makeEvents(2, { replica: `r${i}`, firstSeq: 4 }));
    }
    expect(await transactions()).toBe(4);
    for (const log of logs) expect(await log.headPos()).toBe(5);
  });

  it('writes groups larger than one INSERT (1000 rows, prepared once per connection) whole and in order (10)', async () => {
    schema = freshSchema();
    const log = await instance(1).openSpace('s');
    const events = makeEvents(4600);
    // Two groups of 2300 events: 1000 + 1000 + 300 rows each, on the pool's one connection.
    for (const half of [events.slice(0, 2300), events.slice(2300)]) {
      const batches = [half.slice(0, 1500), half.slice(1500)];
      await Promise.all(batches.map((batch) => log.ingest(batch)));
    }
    const again = await instance().openSpace('s'); // reads the database, not the recent records
    const stored = await again.readByPos(0, 5000);
    expect(stored.map((r) => r.pos)).toEqual(events.map((_, i) => i + 1));
    expect(stored.map((r) => r.event)).toEqual(events);
  });

  it('rolls back only the ingest of a group holding a value PostgreSQL refuses; the others commit, heard by other instances (10)', async () => {
    schema = freshSchema();
    const storage = instance();
    const [a, b] = await Promise.all([storage.openSpace('a'), storage.openSpace('b')]);
    const watcher = await instance().openSpace('a');
    const heard: number[] = [];
    watcher.onAppend((head) => heard.push(head));
    const tooBig = { ...makeEvent({ replica: 'bad', seq: 3 }), seq: (2 ** 64) as never }; // > BIGINT
    const results = await Promise.allSettled([
      a.ingest(makeEvents(2, { replica: 'one' })),
      a.ingest([...makeEvents(2, { replica: 'bad' }), tooBig]),
      b.ingest(makeEvents(1, { replica: 'two' })),
      a.ingest(makeEvents(2, { replica: 'three' })),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect(results[1]).toMatchObject({ reason: { code: 'STORAGE' } });
    expect(results[3]).toMatchObject({ value: { written: [{ pos: 3 }, { pos: 4 }] } });
    expect((await watcher.readByPos(0, 10)).map((r) => r.event.replica)).toEqual([
      'one',
      'one',
      'three',
      'three',
    ]);
    await waitFor(() => heard.includes(4), 5000);
    expect(await b.headPos()).toBe(1);
  });

  it('never deadlocks when instances write groups of the same spaces in opposite orders, and keeps positions dense (2)', async () => {
    schema = freshSchema();
    // A deadlock would be found only after this long, and its group written again: the test sees
    // it as time lost (the default, 1 s, could pass unnoticed on a slow machine). Superuser only.
    const slowed = await sql(`ALTER DATABASE ${dbName()} SET deadlock_timeout = '10s'`).then(
      () => true,
      () => false,
    );
    try {
      const started = Date.now();
      const spaces = ['s1', 's2', 's3', 's4'];
      const [one, two] = [instance(), instance()];
      const logsOne = await Promise.all(spaces.map((s) => one.openSpace(s)));
      const logsTwo = (await Promise.all(spaces.map((s) => two.openSpace(s)))).reverse();
      const rounds = 12;
      const writes: Promise<unknown>[] = [];
      for (let round = 0; round < rounds; round++) {
        const firstSeq = round * 5 + 1;
        for (const log of logsOne)
          writes.push(log.ingest(makeEvents(5, { replica: 'x', firstSeq })));
        for (const log of logsTwo)
          writes.push(log.ingest(makeEvents(5, { replica: 'y', firstSeq })));
        if (round % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(writes);
      for (const log of logsOne) {
        const stored = await log.readByPos(0, 1000);
        expect(stored.map((r) => r.pos)).toEqual(
          Array.from({ length: rounds * 10 }, (_, i) => i + 1),
        );
        expect(new Set(stored.map((r) => r.event.id)).size).toBe(rounds * 10);
      }
      if (slowed) expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      if (slowed) await sql(`ALTER DATABASE ${dbName()} RESET deadlock_timeout`);
    }
  });

  it('reports an unreachable database as STORAGE_UNAVAILABLE, on first use', async () => {
    schema = freshSchema();
    const storage = postgresStorage('postgres://postgres@127.0.0.1:1/none', { schema });
    opened.push(storage);
    await expect(storage.openSpace('s')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  });

  it('stores events as JSON text, exactly as sent (4)', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    const [event] = makeEvents(1);
    await log.ingest([event!]);
    const [row] = await sql<{ body: string; kind: string }>(
      `SELECT body, pg_typeof(body)::text AS kind FROM ${schema}.events`,
    );
    expect(row).toEqual({ body: JSON.stringify(event), kind: 'text' });
  });

  it("keeps the data's JSON text of what it wrote, so that forwarding it stringifies nothing (4)", async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    const [event] = makeEvents(1, { data: { nested: { list: [1, 'two'] } } });
    await log.ingest([event!]);
    const [record] = await log.readByPos(0, 1); // the recent records: the object ingested
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      expect(dataTextOf(record!.event)).toBe('{"nested":{"list":[1,"two"]}}');
      expect(stringify).not.toHaveBeenCalled();
    } finally {
      stringify.mockRestore();
    }
  });

  it('keeps the pool within poolSize, and close() ends the pool and the LISTEN connection', async () => {
    schema = freshSchema();
    const storage = instance(2);
    const log = await storage.openSpace('s');
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => log.ingest(makeEvents(1, { firstSeq: i + 1 }))),
    );
    expect(await log.headPos()).toBe(20);
    const clients = async () =>
      Number(
        (
          await sql<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
          )
        )[0]!.n,
      );
    // At most 2 pooled connections plus the LISTEN one.
    expect(await clients()).toBeLessThanOrEqual(3);
    await storage.close();
    await waitFor(async () => (await clients()) === 0, 5000);
  });
});
