/**
 * Peers with different limits (RELIABILITY.md case 37; issue 12, defects 6 and 7), peer to peer
 * over memoryTransportPair: limits are exchanged in hello, nothing is sent that the other side
 * will refuse, and an event a peer refuses is reported and holds nothing else back. Invariant
 * numbers: P = src/sync/protocol.ts, S = src/sync/session-sender.ts, C = src/sync/controller.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import {
  type EventStore,
  memoryStorage,
  memoryTransportPair,
  type OpenStoreOptions,
  openStore,
} from '../../src/index.ts';
import { DEFAULT_SYNC_LIMITS, type SyncLimits } from '../../src/sync/protocol.ts';
import { REFUSED_KEPT } from '../../src/sync/sync-meta.ts';
import { helloFrom, idsInOrder, linkSessions, memoryReplica, rawPeer, until } from './helpers.ts';

const KiB = 1024;
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
const stores: EventStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
});

async function store(name: string, options: Partial<OpenStoreOptions> = {}): Promise<EventStore> {
  const s = await openStore({ name, storage: memoryStorage(), ...options });
  stores.push(s);
  return s;
}

function connect(a: EventStore, b: EventStore): void {
  const [ta, tb] = memoryTransportPair();
  a.sync.connect(ta);
  b.sync.connect(tb);
}

const text = (bytes: number) => 'x'.repeat(bytes - 2); // JSON text of a string: two quotes more

describe('limits exchanged in hello (P5)', () => {
  it('a replica with maxBatchEvents 2 receives all 3 events of a default peer (defect 6)', async () => {
    const a = await store('a');
    const b = await store('b', { syncOptions: { limits: { maxBatchEvents: 2 } } });
    await a.append(
      's',
      [1, 2, 3].map((n) => ({ type: 't', data: n })),
    );
    connect(a, b);
    await until(async () => (await b.read()).length === 3);
    expect((await b.read()).map((e) => e.data)).toEqual([1, 2, 3]);
    await until(() => a.sync.status().pending === 0);
    expect(a.sync.status().lastError).toBeUndefined();
    expect(b.sync.status().lastError).toBeUndefined();
  });

  it('a sender keeps to the smaller maxInFlightBatches of the two', async () => {
    const { internals: a } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 20 }, (_, i) => i));
    const { peer } = await rawPeer(a, { limits: { maxBatchEvents: 2 } });
    peer.send(helloFrom('rawpeer', { limits: { ...DEFAULT_SYNC_LIMITS, maxInFlightBatches: 2 } }));
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').length === 2);
    await settle();
    expect(peer.of('events')).toHaveLength(2);
  });

  it('a sender keeps to the smaller maxInFlightBytes of the two', async () => {
    const { internals: a } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 6 }, () => text(3 * KiB)));
    const { peer } = await rawPeer(a, { limits: { maxBatchEvents: 1 } });
    const limits: SyncLimits = { ...DEFAULT_SYNC_LIMITS, maxInFlightBytes: 5 * KiB };
    peer.send(helloFrom('rawpeer', { limits }));
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').length === 2);
    await settle();
    // Two 3 KiB batches pass 5 KiB: the window stops adding (the first always goes).
    expect(peer.of('events')).toHaveLength(2);
  });

  it('a sender keeps to the smaller maxMessageBytes and maxBatchEvents of the two', async () => {
    const { internals: a } = await memoryReplica();
    await a.append('s', ...Array.from({ length: 12 }, () => text(2 * KiB)));
    const { peer } = await rawPeer(a);
    const limits = { ...DEFAULT_SYNC_LIMITS, maxMessageBytes: 8 * KiB, maxBatchEvents: 5 };
    peer.send(helloFrom('rawpeer', { limits }));
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').length > 0);
    for (let i = 0; i < 12 && !peer.of('events').some((m) => m.caughtUp); i++) {
      const last = peer.of('events').at(-1)!;
      peer.send({ type: 'ack', to: last.to });
      await settle();
    }
    const batches = peer.of('events');
    expect(batches.flatMap((m) => m.events)).toHaveLength(12);
    expect(Math.max(...batches.map((m) => m.events.length))).toBeLessThanOrEqual(3);
  });

  it('announces its own limits, and reads a hello without them as an older peer of its kind', async () => {
    const { internals: a } = await memoryReplica();
    const { peer, session } = await rawPeer(a, { limits: { maxEventBytes: 100 * KiB } });
    await until(() => peer.of('hello').length === 1);
    expect(peer.of('hello')[0]!.limits).toEqual({
      ...DEFAULT_SYNC_LIMITS,
      maxEventBytes: 100 * KiB,
    });
    peer.send(helloFrom('rawpeer', { server: true }));
    await until(() => session.stats().peerLimits !== undefined);
    expect(session.stats().peerLimits?.maxEventBytes).toBe(512 * KiB);
  });

  it.each([
    ['maxBatchEvents', 0],
    ['maxMessageBytes', 10],
    ['maxEventBytes', -1],
    ['maxInFlightBatches', 1.5],
    ['maxInFlightBytes', '4096'],
  ])('refuses a hello announcing %s = %j with PROTOCOL', async (name, value) => {
    const { internals: a } = await memoryReplica();
    const { peer } = await rawPeer(a);
    peer.send(helloFrom('rawpeer', { limits: { ...DEFAULT_SYNC_LIMITS, [name]: value } as never }));
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'PROTOCOL', fatal: true });
  });
});

describe('an event a peer refuses holds nothing back (defect 7, P6)', () => {
  it('leaves out an event over the peer maxEventBytes, reports it, and delivers the rest', async () => {
    const a = await store('a', { limits: { maxEventBytes: 1024 * KiB } });
    const b = await store('b', { syncOptions: { limits: { maxEventBytes: 512 * KiB } } });
    const [small1] = await a.append('s', { type: 't', data: 'small 1' });
    const [big] = await a.append('s', { type: 't', data: text(600 * KiB) });
    const [small2] = await a.append('s', { type: 't', data: 'small 2' });
    connect(a, b);
    await until(async () => (await b.read()).length === 2);
    expect((await b.read()).map((e) => e.id)).toEqual([small1!.id, small2!.id]);
    await until(() => a.sync.status().pending === 0 && a.sync.status().state === 'idle');
    const status = a.sync.status();
    expect(status.lastError).toMatchObject({ code: 'LIMIT_EXCEEDED', eventId: big!.id });
    expect(status.refused).toEqual([
      expect.objectContaining({ eventId: big!.id, peer: b.replicaId, code: 'LIMIT_EXCEEDED' }),
    ]);
    // Later events are not held back either.
    const [small3] = await a.append('s', { type: 't', data: 'small 3' });
    await until(async () => (await b.read()).some((e) => e.id === small3!.id));
  });

  it('lists only the last REFUSED_KEPT (100) refused events', async () => {
    const a = await store('a', { limits: { maxEventBytes: 1024 * KiB } });
    const b = await store('b', { syncOptions: { limits: { maxEventBytes: 2 * KiB } } });
    const big = Array.from({ length: 101 }, (_, i) => ({ type: 't', data: text(3 * KiB + i) }));
    const written = await a.append('s', big);
    connect(a, b);
    await until(() => a.sync.status().state === 'idle' && a.sync.status().pending === 0);
    const refused = a.sync.status().refused ?? [];
    expect(refused).toHaveLength(REFUSED_KEPT);
    expect(refused.map((r) => r.eventId)).toEqual(written.slice(1).map((e) => e.id));
    expect(await b.read()).toEqual([]);
  });

  it('refuses at append an event larger than a peer it synced with accepts', async () => {
    const a = await store('a', { limits: { maxEventBytes: 1024 * KiB } });
    const b = await store('b', { syncOptions: { limits: { maxEventBytes: 100 * KiB } } });
    await a.append('s', { type: 't', data: text(200 * KiB) }); // before it knew: accepted
    connect(a, b);
    await until(() => a.sync.status().state === 'idle');
    const refusal = a.append('s', { type: 't', data: text(200 * KiB) });
    await expect(refusal).rejects.toMatchObject({ code: 'VALIDATION', name: 'ValidationError' });
    await expect(a.append('s', { type: 't', data: text(90 * KiB) })).resolves.toHaveLength(1);
  });

  it('a receiver refuses one event of a batch; the sender resends the rest without it', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    const written = await a.append('s', 1, 2, 3, 4, 5);
    const refusedId = written[2]!.id;
    const link = await linkSessions(a, b, memoryTransportPair(), {
      a: { limits: { maxBatchEvents: 2 } },
      b: {
        validateIncoming: async (events: StoredEventRecord[]) => {
          const bad = events.find((e) => e.id === refusedId);
          if (bad === undefined) return undefined;
          return {
            code: 'VALIDATION',
            message: 'not for this peer',
            eventId: bad.id,
            reason: { kind: 'invalid', field: 'data' },
          };
        },
      },
    });
    await until(async () => (await idsInOrder(b)).length === 4 && link.b.stats().caughtUp);
    expect(await idsInOrder(b)).not.toContain(refusedId);
    await until(() => link.a.stats().peerCaughtUp);
    expect(link.a.stats().ackedOwnSeq).toBe(5);
    expect(link.errors.every((e) => !e.error.fatal)).toBe(true);
    const seen = link.errors.find((e) => e.side === 'a');
    expect(seen?.error).toMatchObject({
      code: 'VALIDATION',
      source: 'peer',
      eventId: refusedId,
      skipped: { kind: 'invalid' },
    });
  });

  it('drops the batches sent before the refusal was read, and takes the resend (P6)', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1, 2, 3);
    const big = { ...events[1]!, data: text(2 * KiB) };
    const { peer, errors } = await rawPeer(b, { limits: { maxEventBytes: KiB } });
    peer.send(helloFrom(other.replicaId, { head: 3, limits: DEFAULT_SYNC_LIMITS }));
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 0, to: 2, toId: big.id, events: [events[0], big] });
    peer.send({ type: 'events', from: 2, to: 3, toId: events[2]!.id, events: [events[2]] });
    await until(() => peer.of('error').length === 1);
    await settle();
    expect(peer.of('error')[0]).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      eventId: big.id,
      refused: { from: 0, reason: { kind: 'too-large', limit: KiB } },
    });
    expect(peer.of('error')[0]!.fatal).toBeUndefined();
    expect(peer.of('ack')).toEqual([]);
    // A repeat of the refused batch is dropped too, then the resend without it is stored.
    peer.send({ type: 'events', from: 0, to: 2, toId: big.id, events: [events[0], big] });
    peer.send({ type: 'events', from: 0, to: 2, toId: big.id, events: [events[0]] });
    peer.send({ type: 'events', from: 2, to: 3, toId: events[2]!.id, events: [events[2]] });
    await until(() => peer.of('ack').some((m) => m.to === 3));
    expect(peer.of('error')).toHaveLength(1);
    expect(peer.closed()).toBe(false);
    expect(await idsInOrder(b)).toEqual([events[0]!.id, events[2]!.id]);
    expect(errors).toEqual([expect.objectContaining({ code: 'LIMIT_EXCEEDED', fatal: false })]);
  });

  it('stays fatal to a peer that announced no limits (an older peer would not resend)', async () => {
    const { internals: b } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const events = await other.append('s', 1);
    const big = { ...events[0]!, data: text(2 * KiB) };
    const { peer } = await rawPeer(b, { limits: { maxEventBytes: KiB } });
    peer.send(helloFrom(other.replicaId, { head: 1 }));
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 0, to: 1, toId: big.id, events: [big] });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'LIMIT_EXCEEDED', fatal: true });
  });

  it('refuses with PROTOCOL a refusal naming an event the batch did not carry (S8)', async () => {
    const { internals: a } = await memoryReplica();
    await a.append('s', 1, 2);
    const { peer } = await rawPeer(a);
    peer.send(helloFrom('rawpeer', { limits: DEFAULT_SYNC_LIMITS }));
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').length === 1);
    peer.send({
      type: 'error',
      code: 'VALIDATION',
      message: 'no',
      eventId: 'not-sent',
      refused: { from: 0, reason: { kind: 'invalid', field: 'data' } },
    });
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({ code: 'PROTOCOL', fatal: true });
  });
});
