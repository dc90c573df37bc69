/**
 * Several servers on one PostgreSQL publishing to one broker (publisher.ts invariant 3): only the
 * holder of the publisher's lock publishes; when it is SIGKILLed, the database frees its lock,
 * another server takes over and resumes from the durable position: a JetStream consumer ends
 * with every event once, in log order.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spaceToken, tempDir, waitFor } from './helpers.ts';
import { type NatsBroker, startNats } from './nats-broker.ts';
import { idsOf, readStream, streamCount } from './nats-consumer.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { storedRecords } from './postgres-helpers.ts';
import { exited, type ProcessLogEntry, startServerProcess } from './server-process.ts';
import { connectSession, MemorySyncLog } from './session-client.ts';

let broker: NatsBroker;
let pgServer: PostgresServer;
beforeAll(async () => {
  [broker, pgServer] = await Promise.all([startNats(), startPostgres()]);
});
afterAll(async () => {
  await broker?.stop();
  await pgServer?.stop();
});

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** A database of its own: the CLI's servers use the default schema. */
async function freshDatabase(): Promise<string> {
  const name = `pub_${process.pid}_${Date.now()}`;
  await query(pgServer.url, `CREATE DATABASE ${name}`);
  cleanups.push(async () => {
    await query(pgServer.url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  return pgServer.url.replace(/\/[^/]*$/, `/${name}`);
}

const token = (space: string) => spaceToken(space);

const saw = (entries: ProcessLogEntry[], event: string) => entries.some((e) => e.event === event);

describe('publishing from several servers on one PostgreSQL', () => {
  it('publishes from one server at a time; when it is SIGKILLed another takes over: every event once, in order', async () => {
    const url = await freshDatabase();
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const stream = 'pg';
    const args = ['--postgres', url, '--publish', broker.url, '--publish-stream', stream];
    const a = await startServerProcess(join(tmp.dir, 'unused-a.sqlite'), cleanups, 0, args);
    await waitFor(() => saw(a.entries, 'publish_leading'), 20_000);
    const b = await startServerProcess(join(tmp.dir, 'unused-b.sqlite'), cleanups, 0, args);
    await waitFor(() => saw(b.entries, 'publish_standby'), 20_000);
    expect(saw(b.entries, 'publish_leading')).toBe(false);

    // Clients of server b append in chunks, before, during and after a's death.
    const spaces = ['space-a', 'space-b'];
    const writers = spaces.map(() => new MemorySyncLog());
    for (const [i, space] of spaces.entries()) {
      const client = await connectSession(b.url, token(space), writers[i]!);
      cleanups.push(() => client.close());
    }
    const CHUNKS = 50;
    const PER_CHUNK = 40;
    let appending = true;
    const appended = (async () => {
      for (let i = 0; i < CHUNKS; i++) {
        for (const writer of writers) writer.append(PER_CHUNK);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      appending = false;
    })();
    const total = spaces.length * CHUNKS * PER_CHUNK;

    // a (the lock holder) publishes what b's clients appended; then it dies mid-stream.
    await waitFor(async () => (await streamCount(broker.url, stream)) >= 200, 30_000);
    expect(appending).toBe(true);
    a.child.kill('SIGKILL');
    await exited(a.child);
    await waitFor(() => saw(b.entries, 'publish_leading'), 30_000);
    await appended;
    await waitFor(async () => (await streamCount(broker.url, stream)) >= total, 60_000);

    const messages = await readStream(broker.url, stream);
    expect(messages.length).toBe(total);
    expect(new Set(messages.map((m) => m.msgId)).size).toBe(total);
    for (const space of spaces) {
      // Rows and sealed blocks alike (issue 18: the servers compact as they go).
      const records = await storedRecords(url, space);
      expect(idsOf(messages, space)).toEqual(records.map((r) => r.event.id));
    }
    b.child.kill('SIGTERM');
    await exited(b.child);
  }, 120_000);
});
