/**
 * Three `chronicle-server` processes on one PostgreSQL database (postgresStorage), clients spread
 * over them with the list of their URLs (sync/transports/websocket.ts invariant 5). Appends through
 * one server reach the clients of the others (postgres.ts invariant 5); under continuous appends a
 * server is SIGKILLed, its clients fail over, the others' clients carry on, and a restarted server
 * serves clients again without reading the log (it reads the database only per connection, from
 * the client's checkpoint: postgres-space.ts). At the end every client and the database hold the
 * same events, each once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { webSocketTransport } from '../../src/index.ts';
import { postgresStorage } from '../../src/server/postgres.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { median } from '../bench/results.ts';
import { SECRET, waitFor } from './helpers.ts';
import {
  type Client,
  countingProxy,
  databaseIds,
  freshDatabase,
  logBytes,
  openClient,
  startServers,
  tokenFor,
} from './multi-server.ts';
import { type PostgresServer, startPostgres } from './postgres-cluster.ts';
import { connectSession, MemorySyncLog } from './session-client.ts';

const cleanups: (() => void | Promise<void>)[] = [];
let cluster: PostgresServer | undefined;
let database = '';
let servers: Awaited<ReturnType<typeof startServers>>;
const clients: Client[] = [];

/**
 * Each client's own order of the three servers (what the transport's shuffle makes at random,
 * pinned here): two clients start on each server, and the clients of a killed server go on to
 * different ones.
 */
const ORDERS = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 2, 0],
  [1, 0, 2],
  [2, 0, 1],
  [2, 1, 0],
];

beforeAll(async () => {
  cluster = await startPostgres();
  database = await freshDatabase(cluster.url, cleanups);
  servers = await startServers(database, 3, cleanups);
  const urls = servers.urls();
  for (const [i, order] of ORDERS.entries()) {
    const client = await openClient(
      `client-${i}`,
      order.map((s) => urls[s]!),
    );
    clients.push(client);
    cleanups.push(() => client.store.close());
  }
}, 120_000);

afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await cluster?.stop();
}, 60_000);

const serverOf = (client: Client) => servers.urls().indexOf(client.transport.currentUrl());

async function readIds(client: Client): Promise<string[]> {
  return (await client.store.read()).map((e) => e.id);
}

describe('three sync server processes on one PostgreSQL database', () => {
  it('delivers an event appended through one server to the clients of the others', async () => {
    await waitFor(() => clients.every((c) => c.store.sync.status().state === 'idle'), 30_000);
    expect(clients.map(serverOf)).toEqual([0, 0, 1, 1, 2, 2]);
    const [event] = await clients[0]!.store.append('greetings', {
      type: 'Said',
      data: { text: 'hello from server 0' },
    });
    await waitFor(async () => {
      for (const c of clients) if (!(await readIds(c)).includes(event!.id)) return false;
      return true;
    }, 20_000);
  });

  it('fails the clients of a SIGKILLed server over under load, loses and doubles nothing, and takes the restarted server back', async () => {
    const appended = new Map<string, string[]>(clients.map((c) => [c.name, []]));
    let loading = true;
    const load = clients.map(async (c, i) => {
      for (let n = 0; loading; n++) {
        const [e] = await c.store.append(`stream-${i}`, { type: 'Tick', data: { n } });
        appended.get(c.name)!.push(e!.id);
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    });
    const failovers: number[] = [];
    try {
      // Every server dies once, in turn, and comes back.
      for (const victim of [0, 1, 2]) {
        // Let the load run a while on all three.
        const before = clients.map((c) => c.acks.length);
        await waitFor(() => clients.every((c, i) => c.acks.length >= before[i]! + 5), 30_000);
        const moved = clients.filter((c) => serverOf(c) === victim);
        const stayed = clients.filter((c) => serverOf(c) !== victim);
        expect(moved.length).toBeGreaterThan(0);
        expect(stayed.length).toBeGreaterThan(0);
        const closesBefore = stayed.map((c) => c.closes);
        const killedAt = performance.now();
        await servers.kill(victim);
        // A moved client's next acknowledged push comes through another server.
        await waitFor(
          () =>
            moved.every(
              (c) =>
                c.closedAt > killedAt &&
                c.acks.some((t) => t > c.closedAt) &&
                serverOf(c) !== victim,
            ),
          30_000,
        );
        for (const c of moved) failovers.push(c.acks.find((t) => t > c.closedAt)! - killedAt);
        // The others' clients carried on over the same connections.
        await waitFor(() => stayed.every((c) => c.acks.some((t) => t > killedAt)), 30_000);
        expect(stayed.map((c) => c.closes)).toEqual(closesBefore);
        await servers.restart(victim);
      }
    } finally {
      loading = false;
      await Promise.all(load);
    }

    const total = [...appended.values()].reduce((n, ids) => n + ids.length, 0) + 1;
    await waitFor(async () => {
      for (const c of clients) {
        if (c.store.sync.status().pending !== 0) return false;
        if ((await readIds(c)).length !== total) return false;
      }
      return true;
    }, 60_000);
    const inDatabase = await databaseIds(database);
    expect(inDatabase).toHaveLength(total);
    expect(new Set(inDatabase).size).toBe(total);
    const expected = new Set(inDatabase);
    for (const ids of appended.values()) for (const id of ids) expect(expected.has(id)).toBe(true);
    for (const c of clients) {
      const ids = await readIds(c);
      expect(ids).toHaveLength(total);
      expect(new Set(ids)).toEqual(expected);
    }

    // The last server restarted has served nobody since: an up-to-date client connecting to it
    // alone costs it reads bounded by what that client lacks (nothing), not by the log.
    const last = servers.slots[2]!;
    last.counter.reset();
    const probe = clients[0]!.store.sync.connect(
      webSocketTransport(last.url, { token: tokenFor('client-0'), WebSocket: WebSocket as never }),
    );
    await waitFor(() => probe.status().state === 'idle', 20_000);
    await probe.close();
    const bytes = await logBytes(database);
    console.log(
      `multi-server: failover (SIGKILL → next acked push) median ${Math.round(median(failovers))} ms ` +
        `over ${failovers.length} moves [${failovers.map(Math.round).join(', ')}]; ` +
        `${total} events, log ${bytes} bytes; restarted server read ${last.counter.fromDatabase} bytes ` +
        'from the database to serve a client',
    );
    expect(last.counter.fromDatabase).toBeGreaterThan(0);
    expect(last.counter.fromDatabase).toBeLessThan(bytes / 10);
  }, 240_000);
});

describe('servers in this process on one database', () => {
  /** A server in this process on the database at `url`. */
  async function start(url: string): Promise<SyncServer> {
    const server = await createSyncServer({
      storage: postgresStorage(url, { poolSize: 2 }),
      auth: { secret: SECRET },
      log: () => {},
      // For the light, unsigned logs of session clients (helpers.ts startTestServer).
      requireSignatures: false,
    });
    cleanups.push(() => server.close());
    return server;
  }

  /** Two servers in this process on a database of their own. */
  async function twoServers(): Promise<[SyncServer, SyncServer]> {
    const url = await freshDatabase(cluster!.url, cleanups);
    return [await start(url), await start(url)];
  }

  const synced = (c: Client, count: number) => async () =>
    c.connection.status().state === 'idle' &&
    c.connection.status().pending === 0 &&
    (await readIds(c)).length === count;

  it('resumes on the second server from the checkpoint taken on the first: one replica id and epoch, nothing sent again either way', async () => {
    const [a, b] = await twoServers();
    const writer = await openClient('writer', [a.url]);
    const mover = await openClient('mover', [a.url]);
    cleanups.push(
      () => writer.store.close(),
      () => mover.store.close(),
    );
    await mover.store.append(
      'mine',
      Array.from({ length: 200 }, (_, n) => ({ type: 'Mine', data: { n } })),
    );
    await writer.store.append(
      'theirs',
      Array.from({ length: 100 }, (_, n) => ({ type: 'Theirs', data: { n } })),
    );
    await waitFor(synced(mover, 300), 20_000);
    await waitFor(synced(writer, 300), 20_000);
    await mover.connection.close();
    // Appended while the mover is away: all it may receive on the other server.
    await writer.store.append('theirs', [{ type: 'Theirs', data: { n: 100 } }]);
    await waitFor(synced(writer, 301), 20_000);

    const moved = await openClient('mover', [b.url], mover.store);
    await waitFor(synced(moved, 301), 20_000);
    expect(moved.hellos[0]).toEqual(mover.hellos[0]);
    expect(moved.eventsReceived).toBe(1);
    expect(moved.eventsSent).toBe(0);
    // And it goes on pushing through the second server.
    await mover.store.append('mine', [{ type: 'Mine', data: { n: 200 } }]);
    await waitFor(synced(moved, 302), 20_000);
    await waitFor(synced(writer, 302), 20_000);
    expect(moved.eventsSent).toBe(1);
  });

  it('fans an append made through another server out to all connections of a server with a few database reads, not some per connection', async () => {
    const url = await freshDatabase(cluster!.url, cleanups);
    const db = new URL(url);
    const proxy = await countingProxy({ host: db.hostname, port: Number(db.port) }, cleanups);
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const a = await start(url);
    const b = await start(viaProxy.toString());
    const READERS = 30;
    const writer = new MemorySyncLog();
    const readers = Array.from({ length: READERS }, () => new MemorySyncLog());
    // How far server b acknowledged each reader's log: past a run, its checkpoint is written.
    const acked = new Map<MemorySyncLog, number>();
    for (const [i, log] of [writer, ...readers].entries()) {
      const session = await connectSession(i === 0 ? a.url : b.url, tokenFor(`s${i}`), log, {
        onStatus: (s) => acked.set(log, Math.max(acked.get(log) ?? 0, s.ackedPos)),
      });
      cleanups.push(() => session.close());
    }
    writer.append(1);
    await waitFor(() => readers.every((r) => r.records.length === 1), 20_000);
    proxy.counter.reset();
    writer.append(1);
    await waitFor(() => readers.every((r) => r.records.length === 2 && acked.get(r) === 2), 20_000);
    const { statements, queries } = proxy.counter;
    const checkpointWrites = queries.filter((q) => q.includes('.checkpoints')).length;
    console.log(
      `multi-server: ${statements} statements (${checkpointWrites} checkpoint writes) to fan one append out to ${READERS} connections`,
    );
    // Before: about ten per connection (a head read and a select, an ownership transaction for
    // the run the client sends back, its checkpoint, a key lookup): 300 (postgres-space.ts 11).
    // The reads are shared; the checkpoints of runs arriving while one write is out go together.
    expect(queries.filter((q) => q.includes('FOR UPDATE'))).toEqual([]);
    expect(statements - checkpointWrites).toBeLessThanOrEqual(READERS / 3);
    expect(checkpointWrites).toBeLessThanOrEqual(READERS / 3);
  });
});
