/**
 * Partial replicas (docs/storage-growth.md parts 2 and 3): retention trims only what the server
 * holds and a snapshot covers (core/retention.ts 1-4, store/retention.ts 1-4), and reads, time
 * travel and late events below the horizon go through the server's history
 * (store/history-reads.ts, projection-runtime.ts 11-12).
 */
import { describe, expect, it } from 'vitest';
import { HistoryUnavailableError } from '../../src/core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { memoryStorage } from '../../src/index.ts';
import type { CursorQuery, EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';
import { partialReplica, type SeenEvents, seenProjection, T0 } from './retention-harness.ts';

type Ev = SeenEvents;

const seen = seenProjection(2);

const foldAll = (records: readonly LocalRecord[]) =>
  records.map((r) => (r.event.data as { n: number }).n);

/**
 * A memory storage whose log runs `beforeNextRead` (once) before its next readByCursor: another
 * tab's trim committing between a read's horizon and its log read.
 */
function racingStorage() {
  const inner = memoryStorage();
  let raw: EventLog | undefined;
  let beforeNextRead: (() => Promise<unknown>) | undefined;
  const storage: StorageAdapter = {
    name: inner.name,
    async open(options) {
      const log = await inner.open(options);
      raw = log;
      return new Proxy(log, {
        get(target, key) {
          if (key === 'readByCursor') {
            return async (query: CursorQuery) => {
              const run = beforeNextRead;
              beforeNextRead = undefined;
              await run?.();
              return target.readByCursor(query);
            };
          }
          const value = Reflect.get(target, key) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
  return {
    storage,
    raw: () => raw!,
    beforeNextRead(run: () => Promise<unknown>) {
      beforeNextRead = run;
    },
  };
}

async function appendN(
  store: Awaited<ReturnType<typeof partialReplica<Ev>>>['store'],
  clock: Awaited<ReturnType<typeof partialReplica<Ev>>>['clock'],
  from: number,
  count: number,
) {
  for (let n = from; n < from + count; n++) {
    clock.advance(1_000);
    await store.append('s', { type: 't', data: { n } });
  }
}

/**
 * An event another replica wrote, stamped `at` ms after T0 (events n are stamped T0 + n × 1,000:
 * appendN), that the device receives.
 */
async function lateBelowHorizon(
  r: { remote(events: StoredEventRecord[]): Promise<void> },
  at = 1_500,
) {
  const late = storedEvent({
    replica: 'remote0000000003',
    seq: 1,
    wall: T0 + at,
    stream: 'x',
    type: 't',
    data: { n: 100 },
  });
  await r.remote([late]);
  return late;
}

describe('retention (partial replicas, issue 18)', () => {
  it('trims nothing the server has not acknowledged, and only what the policy lets go (core/retention.ts 1, 2)', async () => {
    const r = await partialReplica<Ev>({ events: 3 }, [seen]);
    await appendN(r.store, r.clock, 1, 10);
    expect((await r.retain()).trimmed).toBe(0);
    await r.sync(5);
    const outcome = await r.retain();
    expect(outcome.trimmed).toBe(5);
    // Every trimmed position is <= the checkpoint; everything after it is held in full.
    expect((await r.log.readByPos(0, 100)).map((x) => x.pos)).toEqual([6, 7, 8, 9, 10]);
    await r.sync();
    expect((await r.retain()).trimmed).toBe(2);
    expect((await r.log.readByPos(0, 100)).map((x) => x.pos)).toEqual([8, 9, 10]);
    expect(await r.store.state(seen)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await r.store.close();
  });

  it('trims nothing without a policy, and keeps the last `days` days', async () => {
    const none = await partialReplica<Ev>(undefined, [seen]);
    await appendN(none.store, none.clock, 1, 4);
    await none.sync();
    expect((await none.retain()).trimmed).toBe(0);
    await none.store.close();

    const r = await partialReplica<Ev>({ days: 1 }, [seen]);
    await appendN(r.store, r.clock, 1, 3);
    r.clock.advance(2 * 24 * 60 * 60 * 1000);
    await appendN(r.store, r.clock, 4, 2);
    await r.sync();
    expect((await r.retain()).trimmed).toBe(3);
    expect(foldAll(await r.log.readByCursor({ limit: 10 }))).toEqual([4, 5]);
    await r.store.close();
  });

  it('recognises an old id arriving again after its event was trimmed: not stored twice, projections unchanged', async () => {
    const r = await partialReplica<Ev>({ events: 1 }, [seen]);
    const old = [1, 2, 3].map((n) =>
      storedEvent({
        replica: 'remote0000000001',
        seq: n,
        wall: T0 + n,
        stream: 'r',
        type: 't',
        data: { n },
      }),
    );
    await r.remote(old);
    await appendN(r.store, r.clock, 4, 2);
    await r.sync();
    expect((await r.retain()).trimmed).toBe(4);
    const head = await r.log.headPos();
    const written = await r.internals.ingest(old, { vouchedByServer: true });
    expect(written.written).toEqual([]);
    expect(await r.log.headPos()).toBe(head);
    expect(await r.store.state(seen)).toEqual([1, 2, 3, 4, 5]);
    await r.store.close();
  });

  it('keeps stream versions and conflict detection after trimming', async () => {
    const r = await partialReplica<Ev>({ events: 0 }, [seen]);
    await appendN(r.store, r.clock, 1, 3);
    await r.sync();
    expect((await r.retain()).trimmed).toBe(3);
    await expect(
      r.store.append('s', { type: 't', data: { n: 9 } }, { expectedVersion: 2 }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY' });
    const [next] = await r.store.append('s', { type: 't', data: { n: 4 } }, { expectedVersion: 3 });
    expect(next!.version).toBe(4);
    // Another replica's append at version 2, which only a trimmed event holds here.
    await r.remote([
      storedEvent({
        replica: 'remote0000000002',
        seq: 1,
        wall: r.clock.now() + 1,
        stream: 's',
        version: 2,
        type: 't',
        data: { n: 7 },
      }),
    ]);
    expect(await r.log.conflictStreams()).toEqual(['s']);
    await r.store.close();
  });

  it('rebases on a late event below the horizon from history: the state equals the full replica’s', async () => {
    const r = await partialReplica<Ev>({ events: 2 }, [seen]);
    await appendN(r.store, r.clock, 1, 8);
    await r.sync();
    expect(await r.store.state(seen)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await r.retain()).trimmed).toBe(6);
    // Stamped between the 2nd and 3rd events: below the horizon.
    await lateBelowHorizon(r, 2_500);
    const full = foldAll(await r.full());
    expect(full).toEqual([1, 2, 100, 3, 4, 5, 6, 7, 8]);
    expect(await r.store.state(seen)).toEqual(full);
    expect(r.historyReads).toBeGreaterThan(0);
    await r.store.close();
  });

  it('offline, keeps a late event below the horizon and a stale state, and rebases when history answers again', async () => {
    const r = await partialReplica<Ev>({ events: 2 }, [seen]);
    await appendN(r.store, r.clock, 1, 6);
    await r.sync();
    expect(await r.store.state(seen)).toEqual([1, 2, 3, 4, 5, 6]);
    await r.retain();
    r.setOnline(false);
    const late = await lateBelowHorizon(r);
    await appendN(r.store, r.clock, 7, 1);
    // Stale: the late event waits for history, what follows it is folded.
    expect(await r.store.state(seen)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await r.log.getByIds([late.id]))[0]?.event.id).toBe(late.id);
    r.setOnline(true);
    await r.sync();
    const full = foldAll(await r.full());
    expect(full).toEqual([1, 100, 2, 3, 4, 5, 6, 7]);
    await expect.poll(() => r.store.state(seen)).toEqual(full);
    await r.store.close();
  });

  it('a background pass that needs history while offline fails quietly and trims nothing (retention.ts 4)', async () => {
    const r = await partialReplica<Ev>({ events: 2 }, [seen]);
    await appendN(r.store, r.clock, 1, 6);
    await r.sync();
    await r.retain();
    r.setOnline(false);
    await lateBelowHorizon(r);
    await appendN(r.store, r.clock, 7, 3);
    await r.sync();
    const horizon = await r.log.horizon?.();
    // The server link says its checkpoint moved: the pass runs in the background, and needs
    // history to write the snapshots at the new horizon. Thrown from there, HISTORY_OFFLINE was
    // an uncaught exception, which ends a Node process.
    r.setOnline(false);
    await expect(r.retain()).rejects.toMatchObject({ code: 'HISTORY_OFFLINE' });
    expect(await r.log.horizon?.()).toBe(horizon);
    r.setOnline(true);
    await expect.poll(() => r.store.state(seen)).toEqual(foldAll(await r.full()));
    await r.store.close();
  });

  it('reads every event when the horizon moves under a read (another tab trims): history-reads.ts 6', async () => {
    const race = racingStorage();
    const r = await partialReplica<Ev>({ events: 4 }, [seen], race.storage);
    await appendN(r.store, r.clock, 1, 10);
    await r.sync(3);
    await r.retain();
    expect(await r.log.trimmedPos?.()).toBe(3);
    await r.sync();
    // Events 4 to 10 are held: the third is event 6.
    const upTo = (await r.log.readByCursor({ limit: 10 }))[2]!.event.cursor;
    // The read takes the horizon after event 3; before its log read, event 6's trim commits.
    race.beforeNextRead(() => race.raw().trim!(upTo, 512, 10));
    const all = await r.store.read({});
    expect(await r.log.trimmedPos?.()).toBe(6);
    expect(all.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await r.store.close();
  });

  it('reads and travels in time past the horizon through the history source; offline they reject with HISTORY_OFFLINE', async () => {
    const r = await partialReplica<Ev>({ events: 2 }, [seen]);
    await appendN(r.store, r.clock, 1, 6);
    await r.sync();
    await r.retain();
    expect((await r.log.readByCursor({ limit: 10 })).length).toBe(2);
    const all = await r.store.read({});
    expect(all.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6]);
    const reversed = await r.store.read({ reverse: true, limit: 5 });
    expect(reversed.map((e) => (e.data as { n: number }).n)).toEqual([6, 5, 4, 3, 2]);
    expect(await r.store.state(seen, { at: T0 + 3_000 })).toEqual([1, 2, 3]);
    r.setOnline(false);
    const offline = await r.store.state(seen, { at: T0 + 2_000 }).catch((e: unknown) => e);
    expect(offline).toBeInstanceOf(HistoryUnavailableError);
    expect((offline as HistoryUnavailableError).code).toBe('HISTORY_OFFLINE');
    await expect(r.store.read({})).rejects.toMatchObject({ code: 'HISTORY_OFFLINE' });
    // What the device holds reads offline.
    const recent = await r.store.read({ reverse: true, limit: 2 });
    expect(recent.map((e) => (e.data as { n: number }).n)).toEqual([6, 5]);
    await r.store.close();
  });
});
