/**
 * worker/history-relay.ts: a tab that does not lead reads the server's history through the
 * leader's worker, over a BroadcastChannel (Node's, between relays of one process as between
 * workers of one origin). Cites its invariants by number.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { HistoryUnavailableError, SyncError } from '../../src/index.ts';
import type { HistorySource } from '../../src/store/history-source.ts';
import { HistoryRelay, MAX_PENDING_ASKS } from '../../worker/history-relay.ts';

const open: HistoryRelay[] = [];
let names = 0;

afterEach(() => {
  for (const relay of open.splice(0)) relay.close();
});

/** Relays on one fresh channel: `leads` and `history` per relay. */
function relays(...workers: { leads: boolean; history?: HistorySource; takenMs?: number }[]) {
  const name = `relay-${++names}`;
  return workers.map((w) => {
    const relay = new HistoryRelay({
      name,
      leads: () => w.leads,
      history: () => w.history,
      takenMs: w.takenMs ?? 2_000,
    });
    open.push(relay);
    return relay;
  });
}

const records = [
  { id: 'e1', stream: 's', type: 't', data: { n: 1 }, cursor: 'c1' },
  { id: 'e2', stream: 's', type: 't', data: { n: 2 }, cursor: 'c2' },
] as unknown as StoredEventRecord[];

describe('HistoryRelay', () => {
  it("answers a follower's read with the leader's own history, for the asked query (1)", async () => {
    const read = vi.fn(async () => records);
    const [, follower, other] = relays(
      { leads: true, history: { read } },
      { leads: false },
      {
        leads: false,
        history: { read: async () => [] },
      },
    );
    expect(await follower!.read({ after: 'c0', limit: 2 })).toEqual(records);
    expect(read).toHaveBeenCalledTimes(1);
    expect(read).toHaveBeenCalledWith({ after: 'c0', limit: 2 });
    // Another follower is not asked, and its own reads are answered by the leader too (3).
    expect(await other!.read({ limit: 1 })).toEqual(records);
    expect(read).toHaveBeenCalledTimes(2);
  });

  it("passes the leader's error on with its class and code: an offline leader's is HISTORY_OFFLINE (1)", async () => {
    const [, follower] = relays(
      {
        leads: true,
        history: {
          read: async (q) => {
            if (q.limit === 1) throw new HistoryUnavailableError('no session', { horizon: 'h' });
            throw new SyncError('PROTOCOL', 'a page out of range');
          },
        },
      },
      { leads: false },
    );
    const offline = await follower!.read({ limit: 1 }).catch((e: unknown) => e);
    expect(offline).toBeInstanceOf(HistoryUnavailableError);
    expect(offline).toMatchObject({ code: 'HISTORY_OFFLINE', details: { horizon: 'h' } });
    const protocol = await follower!.read({ limit: 2 }).catch((e: unknown) => e);
    expect(protocol).toBeInstanceOf(SyncError);
    expect(protocol).toMatchObject({ code: 'PROTOCOL' });
  });

  it('rejects with HISTORY_OFFLINE when the leader has no controller loaded (1)', async () => {
    const [, follower] = relays({ leads: true }, { leads: false });
    await expect(follower!.read({ limit: 1 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
      message: expect.stringContaining('not connected'),
    });
  });

  it('rejects with HISTORY_OFFLINE when no leader takes the read in time (2)', async () => {
    const silent = vi.fn(async () => records);
    const [follower] = relays(
      { leads: false, takenMs: 50 },
      { leads: false, history: { read: silent } },
    );
    await expect(follower!.read({ limit: 1 })).rejects.toBeInstanceOf(HistoryUnavailableError);
    expect(silent).not.toHaveBeenCalled();
  });

  it('never asks when it leads itself: its read rejects at once (3)', async () => {
    const read = vi.fn(async () => records);
    const [leader] = relays({ leads: true, takenMs: 60_000 }, { leads: true, history: { read } });
    await expect(leader!.read({ limit: 1 })).rejects.toMatchObject({ code: 'HISTORY_OFFLINE' });
    expect(read).not.toHaveBeenCalled();
  });

  it(`refuses more than ${MAX_PENDING_ASKS} waiting reads, and settles every one when closed (2)`, async () => {
    let asked = 0;
    const [, follower] = relays(
      {
        leads: true,
        history: {
          read: () => {
            asked++;
            return new Promise<never>(() => {});
          },
        },
      },
      { leads: false },
    );
    const waiting = Array.from({ length: MAX_PENDING_ASKS }, () =>
      follower!.read({ limit: 1 }).catch((e: unknown) => e),
    );
    await expect(follower!.read({ limit: 1 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
      message: expect.stringContaining(`${MAX_PENDING_ASKS} reads`),
    });
    await vi.waitFor(() => expect(asked).toBe(MAX_PENDING_ASKS));
    follower!.close();
    for (const outcome of await Promise.all(waiting)) {
      expect(outcome).toBeInstanceOf(HistoryUnavailableError);
    }
    await expect(follower!.read({ limit: 1 })).rejects.toMatchObject({ code: 'HISTORY_OFFLINE' });
  });
});
