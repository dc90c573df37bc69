/**
 * The trimming part of the storage conformance suite (src/storage/adapter.ts invariant 6, T6):
 * a partial replica drops the bodies of events at or below a horizon and keeps what the log's
 * rules need (docs/storage-growth.md). storageConformance calls it for the adapters that trim
 * (memory, IndexedDB, the SQLite replica, the sealed view). Imports only vitest, src and
 * test/fixtures.
 */
import { describe, expect, it } from 'vitest';
import { ConcurrencyError, IdempotencyError } from '../../src/core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { EventId, ReplicaId } from '../../src/core/ids.ts';
import type { EventLog, StorageAdapter, TrimResult } from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';

const REMOTE = ReplicaId.parse('trimremote000001');
const LATE = ReplicaId.parse('trimlate00000001');
const NOW = 1_700_000_000_000;

async function append(
  log: EventLog,
  stream: string,
  n: number,
  ids?: string[],
): Promise<LocalRecord[]> {
  const result = await log.appendLocal({
    stream,
    events: Array.from({ length: n }, (_, i) => {
      const id = ids?.[i];
      return {
        type: 'Added',
        data: { i },
        schema: 1,
        ...(id === undefined ? {} : { id: EventId.parse(id) }),
      };
    }),
    expectedVersion: 'any',
    now: NOW,
  });
  if (result.kind !== 'written') throw new Error('expected a write');
  return result.records;
}

function trim(log: EventLog, horizon: string, limit = 1_000, maxPos?: number): Promise<TrimResult> {
  if (log.trim === undefined) throw new Error('this adapter does not trim');
  return maxPos === undefined ? log.trim(horizon, limit) : log.trim(horizon, limit, maxPos);
}

/** Whether each (replica, seq) of `events` was trimmed here (adapter.ts trimmedSlots). */
function trimmedSlots(
  log: EventLog,
  events: readonly { replica: string; seq: number }[],
): Promise<boolean[]> {
  if (log.trimmedSlots === undefined) throw new Error('this adapter does not tell trimmed slots');
  return log.trimmedSlots(events.map(({ replica, seq }) => ({ replica, seq })));
}

/**
 * Events 1..count of REMOTE in stream 'r', stamped `start` + 100 × seq, with the custom ids
 * given by seq (canonical ids elsewhere).
 */
function remoteRun(
  count: number,
  start: number,
  customIds: Readonly<Record<number, string>> = {},
): StoredEventRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const seq = i + 1;
    const id = customIds[seq];
    return storedEvent({
      replica: REMOTE,
      seq,
      wall: start + seq * 100,
      stream: 'r',
      ...(id === undefined ? {} : { id }),
    });
  });
}

const ids = (records: readonly (LocalRecord | undefined)[]) =>
  records.map((r) => r?.event.id ?? null);

export function trimConformance(
  fresh: () => Promise<{ adapter: StorageAdapter; log: EventLog }>,
  reopen: (adapter: StorageAdapter) => Promise<EventLog>,
): void {
  describe('trimming below a horizon (partial replicas, issue 18, T6)', () => {
    it('takes the bodies at or below the horizon out of every read, and keeps positions and counters', async () => {
      const { log } = await fresh();
      const old = await append(log, 'a', 3);
      const kept = await append(log, 'a', 2);
      const horizon = old[2]!.event.cursor;
      expect(await trim(log, horizon)).toEqual({ trimmed: 3, horizon, more: false });
      expect(await log.horizon?.()).toBe(horizon);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual(ids(kept));
      expect(ids(await log.readByCursor({ limit: 10, stream: 'a', reverse: true }))).toEqual(
        ids([...kept].reverse()),
      );
      expect(ids(await log.readByPos(0, 10))).toEqual(ids(kept));
      expect(ids(await log.getByIds([old[0]!.event.id, kept[0]!.event.id]))).toEqual([
        null,
        kept[0]!.event.id,
      ]);
      expect(await log.eventsAtSlots([{ replica: log.replicaId, seq: old[1]!.event.seq }])).toEqual(
        [undefined],
      );
      expect(await log.headPos()).toBe(5);
      expect(await log.ownSeq()).toBe(5);
      // Trimmed slots are told from slots never held (a chain's link to one is no gap).
      expect(
        await trimmedSlots(log, [
          ...[...old, ...kept].map((r) => r.event),
          { replica: log.replicaId, seq: 6 },
          { replica: REMOTE, seq: 1 },
        ]),
      ).toEqual([true, true, true, false, false, false, false]);
    });

    it('trims in steps of at most `limit` events, and the horizon is the last cursor trimmed', async () => {
      const { log } = await fresh();
      const records = await append(log, 'a', 5);
      const step = await trim(log, records[3]!.event.cursor, 2);
      expect(step).toEqual({ trimmed: 2, horizon: records[1]!.event.cursor, more: true });
      const rest = await trim(log, records[3]!.event.cursor, 2);
      expect(rest).toEqual({ trimmed: 2, horizon: records[3]!.event.cursor, more: false });
      // The horizon never moves back.
      expect((await trim(log, records[0]!.event.cursor)).horizon).toBe(records[3]!.event.cursor);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual(ids([records[4]]));
    });

    it('trims only events at positions <= maxPos: one received later stays whole whatever its cursor', async () => {
      const { log } = await fresh();
      const records = await append(log, 'a', 3);
      // Received after the first three, stamped before them: a late event at position 4.
      const late = storedEvent({ replica: REMOTE, seq: 1, wall: 5, stream: 'late' });
      await log.ingest({ events: [late], now: NOW, maxClockDriftMs: 60_000 });
      const horizon = records[2]!.event.cursor;
      expect(await trim(log, horizon, 1_000, 3)).toEqual({ trimmed: 3, horizon, more: false });
      expect(ids(await log.readByPos(0, 10))).toEqual([late.id]);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual([late.id]);
      const step = await trim(log, horizon, 1, 2);
      expect(step).toEqual({ trimmed: 0, horizon, more: false });
    });

    it('recognises a trimmed id arriving again and stores nothing (ingest dedupe)', async () => {
      const { log } = await fresh();
      const remote = [1, 2, 3].map((seq) =>
        storedEvent({ replica: REMOTE, seq, wall: NOW - 10_000 + seq, stream: 'r' }),
      );
      await log.ingest({ events: remote, now: NOW, maxClockDriftMs: 60_000 });
      await trim(log, remote[1]!.cursor);
      const again = await log.ingest({
        events: [remote[0]!, remote[1]!],
        now: NOW,
        maxClockDriftMs: 60_000,
      });
      expect(again.written).toEqual([]);
      // A new id at a trimmed (replica, seq) is not stored either.
      const reused = storedEvent({
        replica: REMOTE,
        seq: 2,
        wall: NOW - 5_000,
        stream: 'r',
        id: 'another-id',
      });
      expect(
        (await log.ingest({ events: [reused], now: NOW, maxClockDriftMs: 60_000 })).written,
      ).toEqual([]);
      expect(await log.headPos()).toBe(3);
      expect(ids(await log.readByPos(0, 10))).toEqual([remote[2]!.id]);
    });

    it('refuses an append that names a trimmed custom id (IdempotencyError "trimmed")', async () => {
      const { log } = await fresh();
      const [first] = await append(log, 'a', 1, ['invoice-1']);
      await trim(log, first!.event.cursor);
      const error = await log
        .appendLocal({
          stream: 'a',
          events: [{ id: EventId.parse('invoice-1'), type: 'Added', data: { i: 0 }, schema: 1 }],
          expectedVersion: 'any',
          now: NOW,
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IdempotencyError);
      expect((error as IdempotencyError).reason).toBe('trimmed');
    });

    it('keeps stream versions: appends after trimming take the next version, and expectedVersion still holds', async () => {
      const { log } = await fresh();
      const records = await append(log, 'a', 3);
      await trim(log, records[2]!.event.cursor);
      expect(await log.streamVersion('a')).toBe(3);
      const stale = log.appendLocal({
        stream: 'a',
        events: [{ type: 'Added', data: null, schema: 1 }],
        expectedVersion: 2,
        now: NOW,
      });
      await expect(stale).rejects.toBeInstanceOf(ConcurrencyError);
      const [next] = await append(log, 'a', 1);
      expect(next!.event.version).toBe(4);
    });

    it('flags a conflict for a remote event at a version only trimmed events held', async () => {
      const { log } = await fresh();
      const records = await append(log, 'shared', 2);
      await trim(log, records[1]!.event.cursor);
      const rival = storedEvent({
        replica: REMOTE,
        seq: 1,
        wall: NOW + 5,
        stream: 'shared',
        version: 2,
      });
      await log.ingest({ events: [rival], now: NOW + 10, maxClockDriftMs: 60_000 });
      expect(await log.conflictStreams()).toEqual(['shared']);
      expect(await log.streamVersion('shared')).toBe(2);
    });

    it('stores a late event below the horizon, reads it back, and trims it in the next pass', async () => {
      const { log } = await fresh();
      const records = await append(log, 'a', 3);
      const horizon = records[2]!.event.cursor;
      await trim(log, horizon);
      const late = storedEvent({ replica: REMOTE, seq: 1, wall: 5, stream: 'late' });
      const result = await log.ingest({ events: [late], now: NOW, maxClockDriftMs: 60_000 });
      expect(ids(result.written)).toEqual([late.id]);
      expect(await log.horizon?.()).toBe(horizon);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual([late.id]);
      expect((await trim(log, horizon)).trimmed).toBe(1);
      expect(await log.readByCursor({ limit: 10 })).toEqual([]);
    });

    it('splits trimmed runs around a late event that sorts inside them, and still recognises every trimmed id and slot', async () => {
      const { log } = await fresh();
      const run = remoteRun(5, 0, { 3: 'custom-3' });
      await log.ingest({ events: run, now: NOW, maxClockDriftMs: 60_000 });
      await trim(log, run[3]!.cursor);
      const late = storedEvent({ replica: LATE, seq: 1, wall: 250, stream: 'r', version: 9 });
      expect(
        ids((await log.ingest({ events: [late], now: NOW, maxClockDriftMs: 60_000 })).written),
      ).toEqual([late.id]);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual([late.id, run[4]!.id]);
      expect(ids(await log.readByCursor({ limit: 10, stream: 'r', reverse: true }))).toEqual([
        run[4]!.id,
        late.id,
      ]);
      const again = await log.ingest({
        events: run.slice(0, 4),
        now: NOW,
        maxClockDriftMs: 60_000,
      });
      expect(again.written).toEqual([]);
      expect(await log.streamVersion('r')).toBe(9);
      expect(await trim(log, run[3]!.cursor)).toEqual({
        trimmed: 1,
        horizon: run[3]!.cursor,
        more: false,
      });
      const after = await log.ingest({
        events: [late, run[2]!],
        now: NOW,
        maxClockDriftMs: 60_000,
      });
      expect(after.written).toEqual([]);
      expect(ids(await log.readByPos(0, 10))).toEqual([run[4]!.id]);
      expect(await log.headPos()).toBe(6);
      expect(await trimmedSlots(log, [...run, late, { replica: LATE, seq: 2 }])).toEqual([
        true,
        true,
        true,
        true,
        false,
        true,
        false,
      ]);
    });

    it('lets a copy that sorts first take the place of a trimmed copy, by id or by (replica, seq), and keeps a trimmed winner (core/trimmed-copies.ts)', async () => {
      const { adapter, log } = await fresh();
      const drift = { now: NOW, maxClockDriftMs: 60_000 };
      const run = remoteRun(4, 1_000, { 2: 'shared' });
      await log.ingest({ events: run, ...drift });
      await trim(log, run[3]!.cursor);
      // The same id appended offline elsewhere, stamped after the trimmed copy: it loses.
      const later = storedEvent({ replica: LATE, seq: 1, wall: 1_250, stream: 'o', id: 'shared' });
      const lost = await log.ingest({ events: [later], ...drift });
      expect(lost.written).toEqual([]);
      expect(lost.lostTrimmed ?? []).toEqual([]);
      expect(lost.lost.map((l) => [l.code, l.event.cursor, l.held, l.keptId])).toEqual([
        ['ID_CONFLICT', later.cursor, false, 'shared'],
      ]);
      // Stamped before it: the copies' rule keeps this one, below the horizon, where it was.
      const first = storedEvent({ replica: LATE, seq: 2, wall: 1_150, stream: 'o', id: 'shared' });
      const won = await log.ingest({ events: [first], ...drift });
      expect(won.written.map((r) => [r.event.cursor, r.pos])).toEqual([[first.cursor, 5]]);
      expect(won.lostTrimmed).toEqual([
        {
          code: 'ID_CONFLICT',
          id: 'shared',
          cursor: run[1]!.cursor,
          keptId: 'shared',
          keptReplica: LATE,
        },
      ]);
      expect(ids(await log.getByIds([EventId.parse('shared')]))).toEqual(['shared']);
      expect((await log.getByIds([EventId.parse('shared')]))[0]!.event.cursor).toBe(first.cursor);
      // The trimmed copy's slot is free of it; its neighbours' stay trimmed.
      expect(await trimmedSlots(log, run)).toEqual([true, false, true, true]);
      // Both copies again: the winner is held, the trimmed loser is news no more than a repeat.
      const again = await log.ingest({ events: [run[1]!, first], ...drift });
      expect(again.written).toEqual([]);
      expect(again.lostTrimmed ?? []).toEqual([]);
      // A new id at a trimmed (replica, seq), stamped first: SEQ_CONFLICT, it takes the slot.
      const reused = storedEvent({
        replica: REMOTE,
        seq: 3,
        wall: 1_050,
        stream: 'r',
        id: 'thief',
      });
      const taken = await log.ingest({ events: [reused], ...drift });
      expect(ids(taken.written)).toEqual(['thief']);
      expect(taken.lostTrimmed).toEqual([
        {
          code: 'SEQ_CONFLICT',
          id: run[2]!.id,
          cursor: run[2]!.cursor,
          keptId: 'thief',
          keptReplica: REMOTE,
        },
      ]);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual(['thief', 'shared']);
      // Another handle (a tab), and the database reopened, see the same.
      const other = await reopen(adapter);
      expect(ids(await other.readByCursor({ limit: 10 }))).toEqual(['thief', 'shared']);
      expect(
        (await other.ingest({ events: [run[0]!, run[3]!, reused], ...drift })).written,
      ).toEqual([]);
      expect(await trimmedSlots(other, run)).toEqual([true, false, false, true]);
    });

    it('weighs a copy against a trimmed custom id after a late event split its trimmed run', async () => {
      const { log } = await fresh();
      const drift = { now: NOW, maxClockDriftMs: 60_000 };
      const run = remoteRun(5, 0, { 1: 'custom-1', 4: 'custom-4' });
      await log.ingest({ events: run, ...drift });
      await trim(log, run[4]!.cursor);
      // Sorts between seq 2 and 3: the run's trace is cut in two there.
      const late = storedEvent({ replica: LATE, seq: 1, wall: 250, stream: 'l' });
      expect(ids((await log.ingest({ events: [late], ...drift })).written)).toEqual([late.id]);
      // custom-4 now sits in the second part, custom-1 in the first: each is weighed by its own
      // cursor (a copy stamped between the two would lose to custom-1's and beat custom-4's).
      const rival1 = storedEvent({ replica: LATE, seq: 2, wall: 350, stream: 'l', id: 'custom-1' });
      const rival4 = storedEvent({ replica: LATE, seq: 3, wall: 350, stream: 'l', id: 'custom-4' });
      const met = await log.ingest({ events: [rival1, rival4], ...drift });
      expect(ids(met.written)).toEqual(['custom-4']);
      expect(met.lost.map((l) => l.event.id)).toEqual(['custom-1']);
      expect(met.lostTrimmed?.map((l) => [l.id, l.cursor])).toEqual([['custom-4', run[3]!.cursor]]);
      expect(ids(await log.readByCursor({ limit: 10 }))).toEqual([late.id, 'custom-4']);
      expect(await trimmedSlots(log, run)).toEqual([true, true, true, false, true]);
    });

    it('is seen by another handle on the same database (two tabs), and after reopening', async () => {
      const { adapter, log } = await fresh();
      const other = await reopen(adapter);
      const records = await append(log, 'a', 3);
      await trim(log, records[1]!.event.cursor);
      expect(await other.horizon?.()).toBe(records[1]!.event.cursor);
      expect(ids(await other.readByCursor({ limit: 10 }))).toEqual(ids([records[2]]));
      await log.close();
      const again = await reopen(adapter);
      expect(ids(await again.readByPos(0, 10))).toEqual(ids([records[2]]));
      expect(
        await trimmedSlots(
          other,
          records.map((r) => r.event),
        ),
      ).toEqual([true, true, false]);
      expect(
        await trimmedSlots(
          again,
          records.map((r) => r.event),
        ),
      ).toEqual([true, true, false]);
      const [next] = await append(again, 'a', 1);
      expect(next!.event.version).toBe(4);
    });
  });
}
