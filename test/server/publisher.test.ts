/**
 * The broker publisher's own rules (publisher.ts), with a sink in memory that fails on demand:
 * the broker's side (dedupe, order on the wire) is tested against nats-server in
 * publish-nats.test.ts.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/server/metrics.ts';
import type { BrokerSink, PublishedEvent } from '../../src/server/publish-sink.ts';
import { Publisher } from '../../src/server/publisher.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvent, makeEvents } from './events.ts';
import { tempDir, waitFor } from './helpers.ts';

/** A broker in memory: what it took, by space; `failures` calls reject before it takes any. */
class MemorySink implements BrokerSink {
  readonly name = 'memory';
  readonly taken = new Map<string, PublishedEvent[]>();
  readonly batches: number[] = [];
  failures = 0;
  acked: Map<string, number> | undefined;

  async publish(space: string, events: readonly PublishedEvent[]): Promise<void> {
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('broker down');
    }
    this.batches.push(events.length);
    this.taken.set(space, [...(this.taken.get(space) ?? []), ...events]);
  }

  acknowledged?(space: string): Promise<number | undefined>;

  async close(): Promise<void> {}

  ids(space: string): string[] {
    return (this.taken.get(space) ?? []).map((e) => e.event.id);
  }
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function storageForTest(): ServerStorage {
  const tmp = tempDir();
  const storage = sqliteStorage(join(tmp.dir, 'server.sqlite'));
  cleanups.push(async () => {
    await storage.close();
    tmp.cleanup();
  });
  return storage;
}

function start(storage: ServerStorage, sink: BrokerSink, logs: LogEntry[] = [], batchSize = 10) {
  const publisher = new Publisher(
    storage,
    { sink, batchSize, retryMs: 5, maxRetryMs: 20, rescanMs: 50 },
    { log: (entry) => logs.push(entry) },
  );
  publisher.start();
  cleanups.push(() => publisher.close());
  return publisher;
}

async function idsInLog(storage: ServerStorage, space: string): Promise<string[]> {
  return ((await (await storage.openSpace(space)).readByPos(0, 10_000)) ?? []).map(
    (r) => r.event.id,
  );
}

describe('Publisher', () => {
  it('hands the sink bounded batches, in log order, and records each position after the sink resolved (1)', async () => {
    const storage = storageForTest();
    await (await storage.openSpace('s')).ingest(makeEvents(35));
    const sink = new MemorySink();
    start(storage, sink);
    await waitFor(() => sink.ids('s').length === 35);
    expect(sink.ids('s')).toEqual(await idsInLog(storage, 's'));
    expect(sink.batches).toEqual([10, 10, 10, 5]);
    await waitFor(async () => (await storage.publishedPositions('default')).get('s') === 35);
  });

  it('retries a failing broker forever, logging the outage once when it begins and once when it ends (4)', async () => {
    const storage = storageForTest();
    await (await storage.openSpace('s')).ingest(makeEvents(12));
    const sink = new MemorySink();
    sink.failures = 6;
    const logs: LogEntry[] = [];
    const publisher = start(storage, sink, logs);
    await waitFor(() => sink.ids('s').length === 12);
    expect(sink.ids('s')).toEqual(await idsInLog(storage, 's'));
    expect(logs.filter((e) => e.event === 'publish_failed')).toHaveLength(1);
    expect(logs.filter((e) => e.event === 'publish_recovered')).toMatchObject([{ attempts: 6 }]);
    expect(publisher.failuresTotal).toBe(6);
  });

  it('resumes from the greater of its durable position and what the sink says the broker acknowledged (2)', async () => {
    const storage = storageForTest();
    await (await storage.openSpace('a')).ingest(makeEvents(20));
    await (await storage.openSpace('b')).ingest(makeEvents(20));
    await storage.setPublishedPos('default', 'a', 15);
    await storage.setPublishedPos('default', 'b', 5);
    const sink = new MemorySink();
    const acked = new Map([
      ['a', 3],
      ['b', 12],
    ]);
    sink.acknowledged = async (space) => acked.get(space);
    start(storage, sink);
    await waitFor(() => sink.ids('a').length === 5 && sink.ids('b').length === 8);
    expect(sink.taken.get('a')!.map((e) => e.pos)).toEqual([16, 17, 18, 19, 20]);
    expect(sink.taken.get('b')![0]!.pos).toBe(13);
  });

  it('skips the holes of copies that lost, and publishes the winning copy at its new position (1)', async () => {
    const storage = storageForTest();
    const log = await storage.openSpace('s');
    // A held copy that loses to an earlier one of its id leaves a hole (core/copies.ts).
    const later = makeEvent({ id: 'x', replica: 'later', wall: 1_700_000_500_000 });
    await log.ingest([later]);
    await log.ingest(makeEvents(3, { replica: 'other' }));
    const earlier = makeEvent({ id: 'x', replica: 'earlier', wall: 1_700_000_000_000 });
    await log.ingest([earlier]);
    const sink = new MemorySink();
    const publisher = start(storage, sink);
    await waitFor(() => sink.ids('s').length === 4);
    expect(sink.taken.get('s')!.map((e) => e.pos)).toEqual([2, 3, 4, 5]);
    expect(sink.taken.get('s')![3]!.event.replica).toBe('earlier');
    await waitFor(() => publisher.lag() === 0);
  });

  it('publishes nothing while another publisher of its name holds the lock', async () => {
    const storage = storageForTest();
    await (await storage.openSpace('s')).ingest(makeEvents(3));
    const held = { lost: new Promise<void>(() => {}), release: async () => {} };
    let free = false;
    const locking: ServerStorage = Object.create(storage) as ServerStorage;
    locking.lockPublisher = async () => (free ? held : undefined);
    const sink = new MemorySink();
    const logs: LogEntry[] = [];
    const publisher = new Publisher(
      locking,
      { sink, lockRetryMs: 20 },
      { log: (e) => logs.push(e) },
    );
    publisher.start();
    cleanups.push(() => publisher.close());
    await waitFor(() => logs.some((e) => e.event === 'publish_standby'));
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(sink.ids('s')).toEqual([]);
    expect(publisher.leading).toBe(false);
    free = true;
    await waitFor(() => sink.ids('s').length === 3);
    expect(publisher.leading).toBe(true);
  });
});
