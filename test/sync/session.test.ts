/**
 * Peer sessions over memoryTransportPair: RELIABILITY.md sync cases 13, 15, 16, 17 and 20, a
 * fault-injecting peer, refusals and limits. Invariant numbers are those of src/sync/session.ts
 * (S) and src/sync/protocol.ts (P).
 */
import { describe, expect, it } from 'vitest';
import type { SyncLog } from '../../src/sync/log.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import { storeSyncLog } from '../../src/sync/store-log.ts';
import { memoryTransportPair } from '../../src/sync/transports/memory.ts';
import { DAY_MS } from './fixtures.ts';
import { helloFrom, idsInOrder, linkSessions, memoryReplica, rawPeer, until } from './helpers.ts';

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

/**
 * A holding `count` events of a third replica, which B cannot tell A holds from A's hello alone
 * (as it can A's own), and an empty B.
 */
async function holdingThirdPartyEvents(count: number) {
  const { internals: a } = await memoryReplica();
  const { internals: b } = await memoryReplica();
  const { internals: c } = await memoryReplica();
  await c.append('s', ...Array.from({ length: count }, (_, i) => i));
  const link = await linkSessions(c, a, memoryTransportPair());
  await until(() => link.b.stats().caughtUp);
  link.close();
  return { a, b };
}

describe('peer session', () => {
  it('two replicas exchange what each lacks and converge on one order', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s1', 1, 2, 3);
    await b.append('s2', 'x', 'y');
    const link = await linkSessions(a, b, memoryTransportPair());
    await until(() => link.a.stats().caughtUp && link.b.stats().caughtUp);
    expect(await idsInOrder(a)).toEqual(await idsInOrder(b));
    expect(await idsInOrder(a)).toHaveLength(5);
    await a.append('s1', 4);
    await until(async () => (await idsInOrder(b)).length === 6);
    expect(await idsInOrder(a)).toEqual(await idsInOrder(b));
    expect(link.errors).toEqual([]);
  });

  it('does not send a peer back the events it sent (S5)', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 20 }, (_, i) => i));
    const link = await linkSessions(a, b, memoryTransportPair());
    await until(() => link.a.stats().peerCaughtUp && link.b.stats().peerCaughtUp);
    expect(link.a.stats().eventsSent).toBe(20);
    expect(link.b.stats().eventsSent).toBe(0);
  });

  it('does not echo what a read in flight finds while the batch it belongs to is being stored (S5)', async () => {
    const { a, b } = await holdingThirdPartyEvents(20);
    const real = storeSyncLog(b);
    // B's first read is held until its first ingest has written, and resolves while the session
    // still stores that batch (as a read on another pooled database connection can).
    let written = () => {};
    const firstIngest = new Promise<void>((resolve) => {
      written = resolve;
    });
    const log: SyncLog = {
      ...real,
      async readByPos(afterPos, limit) {
        await firstIngest;
        return real.readByPos(afterPos, limit);
      },
      async ingest(events) {
        const result = await real.ingest(events);
        written();
        await settle();
        return result;
      },
    };
    const link = await linkSessions(a, b, memoryTransportPair(), { b: { log } });
    await until(() => link.a.stats().peerCaughtUp && link.b.stats().peerCaughtUp);
    expect(await idsInOrder(b)).toEqual(await idsInOrder(a));
    expect(link.b.stats().eventsSent).toBe(0);
    expect(link.errors).toEqual([]);
  });

  it('counts the peer caught up when the positions past the last event sent hold nothing to read (session-sender.ts 16)', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s', 1, 2, 3, 4, 5);
    const real = storeSyncLog(a);
    // The log's last two events are gone from reads (retention trimmed them, or they were held
    // copies that lost), though the head stays at 5: no batch can end on either position.
    const log: SyncLog = {
      ...real,
      async readByPos(afterPos, limit) {
        return (await real.readByPos(afterPos, limit)).filter((r) => r.pos <= 3);
      },
    };
    const link = await linkSessions(a, b, memoryTransportPair(), { a: { log } });
    await until(async () => (await idsInOrder(b)).length === 3);
    await until(() => link.a.stats().peerCaughtUp);
    expect(link.a.stats().eventsSent).toBe(3);
    expect(link.errors).toEqual([]);
  });

  it('covers what it received without reading it back from its log (S5)', async () => {
    const { a, b } = await holdingThirdPartyEvents(30);
    const real = storeSyncLog(b);
    let recordsRead = 0;
    const log: SyncLog = {
      ...real,
      async readByPos(afterPos, limit) {
        const records = await real.readByPos(afterPos, limit);
        recordsRead += records.length;
        return records;
      },
    };
    const link = await linkSessions(a, b, memoryTransportPair(), {
      a: { limits: { maxBatchEvents: 7 } },
      b: { log },
    });
    await until(() => link.a.stats().peerCaughtUp && link.b.stats().peerCaughtUp);
    expect(await idsInOrder(b)).toEqual(await idsInOrder(a));
    expect(recordsRead).toBe(0);
    expect(link.b.stats().eventsSent).toBe(0);
    // A's checkpoint of B's log still moved to B's head.
    expect((await storeSyncLog(a).getCheckpoint(b.replicaId))?.pos).toBe(30);
    await b.append('s', 'after');
    await until(async () => (await idsInOrder(a)).length === 31);
    expect(link.errors).toEqual([]);
  });

  it('stores and applies every event once when every frame is delivered twice (case 13)', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 30 }, (_, i) => i));
    await b.append('t', 'b1', 'b2');
    const seen: string[] = [];
    b.onChange(() => {});
    const pair = memoryTransportPair({ faults: { duplicate: 1 } });
    const link = await linkSessions(a, b, pair, { a: { limits: { maxBatchEvents: 4 } } });
    await until(() => link.a.stats().peerCaughtUp && link.b.stats().caughtUp);
    await a.append('s', 'live');
    await until(async () => (await idsInOrder(b)).length === 33);
    await settle();
    const ids = await idsInOrder(b);
    for (const id of ids) seen.push(id);
    expect(new Set(seen).size).toBe(33);
    expect(ids).toEqual(await idsInOrder(a));
    expect(link.errors).toEqual([]);
  });

  it('resumes at the first missing event after the connection dies mid-batch (case 15)', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 40 }, (_, i) => i));
    const pair = memoryTransportPair();
    let batches = 0;
    const link = await linkSessions(a, b, pair, {
      a: { limits: { maxBatchEvents: 5 } },
      b: {
        validateIncoming: async () => {
          batches += 1;
          // The third batch is being stored when the network dies.
          if (batches === 3) pair[0].kill('test');
          return undefined;
        },
      },
    });
    await until(() => link.a.stats().closed && link.b.stats().closed);
    await settle();
    const checkpoint = await storeSyncLog(b).getCheckpoint(a.replicaId);
    const held = (await idsInOrder(b)).length;
    // The checkpoint never passes what is durable (S2: receiver invariant 1).
    expect(checkpoint?.pos ?? 0).toBeLessThanOrEqual(held);
    expect(held).toBeLessThan(40);

    const again = await linkSessions(a, b, memoryTransportPair(), {
      a: { limits: { maxBatchEvents: 5 } },
    });
    await until(() => again.b.stats().caughtUp);
    expect(again.a.stats().startPos).toBe(checkpoint?.pos ?? 0);
    expect(await idsInOrder(b)).toEqual(await idsInOrder(a));
    expect(again.errors).toEqual([]);
  });

  it('acks nothing and keeps its checkpoint when storing fails; a reconnect recovers', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s', 1, 2, 3);
    b.failNextIngests = 1;
    const link = await linkSessions(a, b, memoryTransportPair());
    await until(() => link.b.stats().closed);
    expect(link.errors.map((e) => `${e.side}:${e.error.code}`)).toContain('b:STORAGE');
    expect(await storeSyncLog(b).getCheckpoint(a.replicaId)).toBeUndefined();
    expect(link.a.stats().ackedPos).toBe(0);
    const again = await linkSessions(a, b, memoryTransportPair());
    await until(() => again.b.stats().caughtUp);
    expect(await idsInOrder(b)).toEqual(await idsInOrder(a));
  });

  it('refuses a batch that skips positions with GAP and stores nothing (case 16, P3)', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1, 2, 3);
    const { peer, errors } = await rawPeer(b);
    peer.send(helloFrom(other.replicaId, { head: 10 }));
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 4, to: 7, toId: events[2]!.id, events });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'GAP', fatal: true });
    expect(errors[0]?.code).toBe('GAP');
    expect(await idsInOrder(b)).toEqual([]);
  });

  it('acks a replayed batch again and stores nothing twice', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1, 2);
    const { peer } = await rawPeer(b);
    peer.send(helloFrom(other.replicaId, { head: 2 }));
    await until(() => peer.of('pull').length === 1);
    const batch = { type: 'events', from: 0, to: 2, toId: events[1]!.id, events };
    peer.send(batch);
    peer.send(batch);
    await until(() => peer.of('ack').length === 2);
    expect(peer.of('ack').map((m) => m.to)).toEqual([2, 2]);
    expect(await idsInOrder(b)).toHaveLength(2);
  });

  it('re-uploads what a peer restored from an older backup lost (case 17, P4)', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: live } = await memoryReplica();
    const { internals: backup } = await memoryReplica();
    // Both stand for one server replica: the same id and epoch, `backup` holding less.
    const asServer = (log: ReturnType<typeof storeSyncLog>) => ({
      ...log,
      replicaId: 'serverreplica',
      epoch: async () => 'server-epoch',
    });
    await a.append('s', ...Array.from({ length: 10 }, (_, i) => i));
    await live.append('t', 'l1', 'l2', 'l3');
    const first = await linkSessions(a, live, memoryTransportPair(), {
      b: { log: asServer(storeSyncLog(live)) },
    });
    await until(() => first.a.stats().caughtUp && first.a.stats().peerCaughtUp);
    first.close();
    // A holds the server's log up to its head: 3 own events, then A's 10 (sent back as empty
    // ranges, S5).
    expect((await storeSyncLog(a).getCheckpoint('serverreplica'))?.pos).toBe(13);

    await backup.append('t', 'old');
    const second = await linkSessions(a, backup, memoryTransportPair(), {
      b: { log: asServer(storeSyncLog(backup)) },
    });
    await until(() => second.b.stats().caughtUp && second.a.stats().caughtUp);
    // The backup's head (1) is below A's checkpoint (13): A pulled from 0; the backup's checkpoint
    // of A is older, so A uploads again everything the backup lost.
    expect(second.b.stats().eventsReceived).toBe(10 + 3);
    expect(await idsInOrder(backup)).toEqual(await idsInOrder(a));
  });

  it('restarts from 0 when the checkpoint id does not match the sender log (P4)', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s', 1, 2, 3);
    await storeSyncLog(b).setCheckpoint(a.replicaId, {
      epoch: a.log.epoch,
      pos: 2,
      id: 'not-this',
    });
    const link = await linkSessions(a, b, memoryTransportPair());
    await until(() => link.b.stats().caughtUp);
    expect(link.a.stats().peerRestarted).toBe(true);
    expect(await idsInOrder(b)).toEqual(await idsInOrder(a));
  });

  it('with a clock a day fast that then goes back: its HLC stays monotonic, nothing crosses the tolerance, both sides report CLOCK_SKEW, nothing is fatal (case 20)', async () => {
    let fastNow = Date.now() + DAY_MS + 60 * 60 * 1000;
    const { internals: a } = await memoryReplica({ clock: () => fastNow });
    const { internals: b } = await memoryReplica();
    await a.append('s', 'fast-1', 'fast-2');
    fastNow -= 2 * DAY_MS; // the clock jumps back two days
    await a.append('s', 'back-1');
    await b.append('s', 'b-1');
    const own = (await a.all()).filter((e) => e.replica === a.replicaId);
    expect(own.map((e) => e.data)).toEqual(['fast-1', 'fast-2', 'back-1']); // HLC stays monotonic
    const link = await linkSessions(a, b, memoryTransportPair());
    await until(() => link.a.stats().caughtUp && link.b.stats().caughtUp);
    // Each is beyond the other's clock + tolerance: each stream waits (sender invariant 9).
    expect(link.a.stats().heldForClock).toBe(own[0]!.id);
    expect(link.b.stats().heldForClock).toBeDefined();
    expect((await b.all()).map((e) => e.data)).toEqual(['b-1']);
    expect((await a.all()).map((e) => e.data)).toEqual(['fast-1', 'fast-2', 'back-1']);
    expect(link.errors.some((e) => e.side === 'a' && e.error.code === 'CLOCK_SKEW')).toBe(true);
    expect(link.errors.some((e) => e.side === 'b' && e.error.code === 'CLOCK_SKEW')).toBe(true);
    expect(link.errors.every((e) => !e.error.fatal)).toBe(true);
    await link.close();
  });

  it('keeps at most maxInFlightBatches unacknowledged batches in flight', async () => {
    const { internals: a } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 20 }, (_, i) => i));
    const { peer } = await rawPeer(a, { limits: { maxBatchEvents: 2, maxInFlightBatches: 3 } });
    peer.send(helloFrom('rawpeer'));
    await until(() => peer.of('hello').length === 1);
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').length === 3);
    await settle();
    expect(peer.of('events')).toHaveLength(3);
    peer.send({ type: 'ack', to: peer.of('events')[1]!.to });
    await until(() => peer.of('events').length === 5);
    await settle();
    expect(peer.of('events')).toHaveLength(5);
  });

  it('skips sending a peer its own events below the seq it announced', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const theirs = await other.append('s', 1, 2, 3);
    await a.ingest(theirs);
    await a.append('s', 'mine');
    const { peer } = await rawPeer(a);
    peer.send(helloFrom(other.replicaId, { seq: 2 }));
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').some((m) => m.caughtUp));
    const sent = peer.of('events').flatMap((m) => m.events.map((e) => e.data));
    expect(sent).toEqual([3, 'mine']);
  });
});

describe('peer session refusals', () => {
  it.each([
    ['invalid JSON', '{"type":', 'PROTOCOL'],
    ['an unknown type', '{"type":"gimme"}', 'PROTOCOL'],
    [
      'a message over maxMessageBytes',
      JSON.stringify({ type: 'ping', time: 1, pad: 'x'.repeat(2000) }),
      'LIMIT_EXCEEDED',
    ],
    [
      'another protocol version',
      JSON.stringify({ ...helloFrom('peer'), protocol: 99 }),
      'PROTOCOL_VERSION',
    ],
    ['a pull before hello', '{"type":"pull"}', 'PROTOCOL'],
  ])('answers %s with a fatal error and closes', async (_name, text, code) => {
    const { internals: a } = await memoryReplica();
    const { peer, errors } = await rawPeer(a, { limits: { maxMessageBytes: 1000 } });
    peer.sendText(text);
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code, fatal: true });
    expect(errors[0]?.code).toBe(code);
  });

  it('refuses a batch with an invalid event, naming it, and stores nothing of the batch', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1, 2);
    const { peer } = await rawPeer(b);
    peer.send(helloFrom(other.replicaId, { head: 2 }));
    await until(() => peer.of('pull').length === 1);
    // Nested deeper than the 64 levels an event's data may have.
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    const bad = { ...events[1]!, data: deep };
    peer.send({ type: 'events', from: 0, to: 2, toId: bad.id, events: [events[0], bad] });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'VALIDATION', eventId: bad.id, fatal: true });
    expect(await idsInOrder(b)).toEqual([]);
  });

  it('refuses a batch that validateIncoming rejects, storing nothing', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1);
    const { peer } = await rawPeer(b, {
      validateIncoming: async () => ({ code: 'FORBIDDEN', message: 'read-only token' }),
    });
    peer.send(helloFrom(other.replicaId, { head: 1 }));
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 0, to: 1, toId: events[0]!.id, events });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'FORBIDDEN' });
    expect(await idsInOrder(b)).toEqual([]);
  });

  it('refuses more events in a batch than maxBatchEvents', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1, 2, 3);
    const { peer } = await rawPeer(b, { limits: { maxBatchEvents: 2 } });
    peer.send(helloFrom(other.replicaId, { head: 3 }));
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 0, to: 3, toId: events[2]!.id, events });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'LIMIT_EXCEEDED' });
  });

  it('refuses `rejected` from a peer that is not a server: a lying peer cannot make it take its events out (P8)', async () => {
    const { internals: a } = await memoryReplica();
    const [own] = await a.append('s', 1);
    const rejected: unknown[] = [];
    const { peer } = await rawPeer(a, { onRejected: (events) => void rejected.push(...events) });
    peer.send(helloFrom('peer'));
    await until(() => peer.of('pull').length === 1);
    peer.send({
      type: 'rejected',
      events: [
        {
          id: own!.id,
          replica: own!.replica,
          seq: own!.seq,
          stream: 's',
          version: 1,
          reason: 'stale',
          head: { version: 1, id: 'x' },
        },
      ],
    });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'PROTOCOL', fatal: true });
    expect(rejected).toEqual([]);
    expect(await idsInOrder(a)).toEqual([own!.id]);
  });

  it('hands a server’s `rejected` to onRejected, and refuses a malformed one (P8)', async () => {
    const { internals: a } = await memoryReplica();
    const order: string[] = [];
    const { peer } = await rawPeer(a, {
      onRejected: async (events) => {
        await settle();
        order.push(`rejected ${events.map((e) => e.id).join()}`);
      },
    });
    peer.send({ ...helloFrom('server0000000001'), server: true });
    await until(() => peer.of('pull').length === 1);
    peer.send({
      type: 'rejected',
      events: [
        {
          id: 'e1',
          replica: a.replicaId,
          seq: 1,
          stream: 's',
          version: 1,
          reason: 'stale',
          head: { version: 1, id: 'w' },
        },
      ],
    });
    await until(() => order.length === 1);
    expect(order).toEqual(['rejected e1']);
    peer.send({ type: 'rejected', events: [{ id: 'e2', seq: 'two' }] });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'PROTOCOL', fatal: true });
  });

  it('tells a replica at its hello the rejections it may have missed, in messages it takes (P8)', async () => {
    const { internals: server } = await memoryReplica();
    const asked: number[] = [];
    const rejections = Array.from({ length: 5 }, (_, i) => ({
      id: `e${i + 1}`,
      replica: 'client0000000001',
      seq: i + 1,
      stream: 's',
      version: 2,
      reason: 'stale' as const,
      head: { version: 1, id: 'w' },
    }));
    const { peer } = await rawPeer(server, {
      isServer: true,
      rejectionsFor: async (hello) => {
        asked.push(hello.seq);
        return rejections.filter((r) => r.seq > hello.seq);
      },
    });
    peer.send(
      helloFrom('client0000000001', {
        seq: 0,
        limits: { ...DEFAULT_SYNC_LIMITS, maxBatchEvents: 2 },
      }),
    );
    await until(() => peer.of('pull').length === 1);
    expect(asked).toEqual([0]);
    // Before the pull, two at a time: the peer takes at most two events a batch.
    const kinds = peer.received.map((m) => m.type);
    expect(kinds.indexOf('pull')).toBeGreaterThan(kinds.lastIndexOf('rejected'));
    expect(peer.of('rejected').map((m) => m.events.map((e) => e.id))).toEqual([
      ['e1', 'e2'],
      ['e3', 'e4'],
      ['e5'],
    ]);
  });

  it('ignores an exact duplicate hello and refuses a different second hello (S6)', async () => {
    const { internals: a } = await memoryReplica();
    const { peer } = await rawPeer(a);
    const hello = helloFrom('peer');
    peer.send(hello);
    peer.send(hello);
    await until(() => peer.of('pull').length === 1);
    await settle();
    expect(peer.closed()).toBe(false);
    peer.send({ ...hello, head: 5 });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'PROTOCOL' });
  });
});
