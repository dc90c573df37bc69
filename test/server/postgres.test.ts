/**
 * postgresStorage beyond the conformance suite: several storage instances (several servers) on
 * one database. Dense unique positions under concurrent ingests, appends heard across instances
 * through LISTEN/NOTIFY, the schema created once and versioned, close() releasing connections.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvent, makeEvents } from './events.ts';
import { waitFor } from './helpers.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { dropSchema, freshSchema } from './postgres-helpers.ts';

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

async function sql<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

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
    expect(rows).toEqual([{ version: 1 }]);
    await sql(`UPDATE ${schema}.schema_version SET version = 99`);
    await expect(instance().openSpace('s')).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
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

  it('reports an unreachable database as STORAGE_UNAVAILABLE, on first use', async () => {
    schema = freshSchema();
    const storage = postgresStorage('postgres://postgres@127.0.0.1:1/none', { schema });
    opened.push(storage);
    await expect(storage.openSpace('s')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  });

  it('stores events as JSON text, exactly as sent', async () => {
    schema = freshSchema();
    const log = await instance().openSpace('s');
    const [event] = makeEvents(1);
    await log.ingest([event!]);
    const [row] = await sql<{ body: string; kind: string }>(
      `SELECT body, pg_typeof(body)::text AS kind FROM ${schema}.events`,
    );
    expect(row).toEqual({ body: JSON.stringify(event), kind: 'text' });
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
