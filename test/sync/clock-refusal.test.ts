/**
 * The clock tolerance on the wire (issue 12 defect 5): a receiver refuses an event stamped beyond
 * its clock + tolerance alone, on the per-event refusal seam (protocol invariants 6, 7); a
 * sender holds such an event back rather than leave it out. Cites session-receiver.ts (R4),
 * session-sender.ts (S9), core/clock-skew.ts (K1-K3).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_CLOCK_AHEAD_MS } from '../../src/core/clock-skew.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import { helloFrom, idsInOrder, memoryReplica, rawPeer, until } from './helpers.ts';

const MINUTE = 60_000;
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('clock tolerance on the wire', () => {
  it('refuses alone an event stamped beyond its clock + tolerance, stores nothing of its batch, and takes the resend without it (R4, K1)', async () => {
    const now = 1e12;
    const { internals: b } = await memoryReplica({ clock: () => now });
    const { internals: other } = await memoryReplica({ clock: () => now });
    const [early] = await other.append('s', 'now');
    const { internals: fast } = await memoryReplica({ clock: () => now + 10 * MINUTE });
    const [ahead] = await fast.append('s', 'ten minutes ahead');
    const { peer, errors } = await rawPeer(b);
    peer.send(helloFrom(other.replicaId, { head: 2, time: now, limits: DEFAULT_SYNC_LIMITS }));
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 0, to: 2, toId: ahead!.id, events: [early, ahead] });
    await until(() => peer.of('error').length === 1);
    await settle();
    expect(peer.of('error')[0]).toMatchObject({
      code: 'CLOCK_SKEW',
      eventId: ahead!.id,
      refused: {
        from: 0,
        reason: {
          kind: 'clock-ahead',
          wall: now + 10 * MINUTE,
          limit: now + DEFAULT_MAX_CLOCK_AHEAD_MS,
        },
      },
    });
    expect(peer.of('error')[0]!.fatal).toBeUndefined();
    expect(peer.of('ack')).toEqual([]);
    expect(await idsInOrder(b)).toEqual([]);
    // Its clock did not move toward the refused event (K2).
    expect((await b.log.clock()).wall).toBeLessThanOrEqual(now);
    peer.send({ type: 'events', from: 0, to: 2, toId: ahead!.id, events: [early] });
    await until(() => peer.of('ack').some((m) => m.to === 2));
    expect(await idsInOrder(b)).toEqual([early!.id]);
    expect(errors).toEqual([expect.objectContaining({ code: 'CLOCK_SKEW', fatal: false })]);
  });

  it('takes from a server whatever it sends: the server checked it against its own clock, the authority (R4)', async () => {
    const now = 1e12;
    const { internals: b } = await memoryReplica({ clock: () => now - 2 * 60 * MINUTE });
    const { internals: server } = await memoryReplica({ clock: () => now });
    const [event] = await server.append('s', 'server time');
    const { peer } = await rawPeer(b);
    peer.send(
      helloFrom(server.replicaId, {
        head: 1,
        time: now,
        server: true,
        limits: DEFAULT_SYNC_LIMITS,
      }),
    );
    await until(() => peer.of('pull').length === 1);
    peer.send({ type: 'events', from: 0, to: 1, toId: event!.id, events: [event] });
    await until(() => peer.of('ack').length === 1);
    expect(await idsInOrder(b)).toEqual([event!.id]);
  });

  it('holds back an event the peer refused for the clock instead of leaving it out, and sends it once the peer can take it (S9, K3)', async () => {
    let now = 1e12;
    let skew = 0;
    const { internals: a } = await memoryReplica({ clock: () => now + skew });
    const [first] = await a.append('s', 'on time');
    const { peer, errors } = await rawPeer(a);
    peer.send(helloFrom('rawpeer0000000001', { time: now, limits: DEFAULT_SYNC_LIMITS }));
    peer.send({ type: 'pull' });
    await until(() => peer.of('events').length === 1);
    peer.send({ type: 'ack', to: 1 });
    // Its clock runs ten minutes ahead mid-session: its horizon of the peer moves with it.
    skew = 10 * MINUTE;
    const [ahead] = await a.append('s', 'ahead');
    await until(() => peer.of('events').length === 2);
    expect(peer.of('events')[1]!.events.map((e) => e.id)).toEqual([ahead!.id]);
    peer.send({
      type: 'error',
      code: 'CLOCK_SKEW',
      message: 'ahead',
      eventId: ahead!.id,
      refused: {
        from: 1,
        reason: { kind: 'clock-ahead', wall: now + skew, limit: now + DEFAULT_MAX_CLOCK_AHEAD_MS },
      },
    });
    await until(() => errors.some((e) => e.code === 'CLOCK_SKEW'));
    await a.append('s', 'also ahead');
    await settle();
    // Held, not left out: nothing past it went, and it is not reported as skipped.
    expect(
      peer
        .of('events')
        .slice(2)
        .flatMap((m) => m.events),
    ).toEqual([]);
    expect(errors.find((e) => e.code === 'CLOCK_SKEW')).toMatchObject({
      eventId: ahead!.id,
      heldForClock: { wall: now + skew, limit: now + DEFAULT_MAX_CLOCK_AHEAD_MS },
    });
    expect(errors.find((e) => e.code === 'CLOCK_SKEW')?.skipped).toBeUndefined();
    // Time passes: the peer's clock reaches the event, and the stream goes on from it.
    now += 11 * MINUTE;
    await a.append('s', 'later');
    await until(() => peer.of('events').some((m) => m.events.some((e) => e.id === ahead!.id)));
    const resent = peer.of('events').find((m) => m.events.some((e) => e.id === ahead!.id))!;
    expect(resent.from).toBe(1);
    expect(first).toBeDefined();
  });
});
