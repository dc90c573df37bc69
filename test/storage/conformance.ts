/**
 * The one storage conformance suite: every StorageAdapter (memory, fake-indexeddb, real Chromium
 * IndexedDB) runs it through describe.each. It imports only vitest, src and test/fixtures (which
 * imports only src), so that it also runs in a browser. Test names cite the invariants of src/storage/adapter.ts (A1..A5) and
 * src/core/append.ts (P1..P7).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChronicleError, ConcurrencyError, IdempotencyError } from '../../src/core/errors.ts';
import type {
  ExpectedVersion,
  JsonObject,
  JsonValue,
  LocalRecord,
  StoredEventRecord,
} from '../../src/core/events.ts';
import { decodeHlc } from '../../src/core/hlc.ts';
import { Cursor, EventId, ReplicaId } from '../../src/core/ids.ts';
import type { ValidNewEvent } from '../../src/core/validate.ts';
import type {
  EventLog,
  LocalAppendResult,
  OpenOptions,
  SnapshotRecord,
  StorageAdapter,
} from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';
import { appendGroupConformance } from './append-group-conformance.ts';
import { baseConformance } from './base-conformance.ts';
import { copyConformance } from './conformance-copies.ts';
import { discardConformance } from './discard-conformance.ts';
import { idConformance } from './id-conformance.ts';
import { restampConformance } from './restamp-conformance.ts';
import { signatureConformance } from './signature-conformance.ts';
import { trimConformance } from './trim-conformance.ts';

type NewLocal = ValidNewEvent & { id: EventId };

const DAY = 24 * 60 * 60 * 1000;
const REMOTE = ReplicaId.parse('remote0000000001');

let nextId = 0;

function newEvent(
  data: JsonValue = { n: 1 },
  extra: { id?: string; type?: string; meta?: JsonObject; schema?: number } = {},
): NewLocal {
  const event: NewLocal = {
    id: EventId.parse(extra.id ?? `evt-${++nextId}`),
    type: extra.type ?? 'Added',
    data,
    schema: extra.schema ?? 1,
  };
  if (extra.meta !== undefined) event.meta = extra.meta;
  return event;
}

function append(
  log: EventLog,
  stream: string,
  events: NewLocal | NewLocal[],
  options: { expectedVersion?: ExpectedVersion; now?: number } = {},
): Promise<LocalAppendResult> {
  return log.appendLocal({
    stream,
    events: Array.isArray(events) ? events : [events],
    expectedVersion: options.expectedVersion ?? 'any',
    now: options.now ?? 1_000,
  });
}

function written(result: LocalAppendResult): LocalRecord[] {
  if (result.kind !== 'written') throw new Error(`expected a write, got ${result.kind}`);
  return result.records;
}

function remoteEvent(fields: {
  seq: number;
  wall: number;
  counter?: number;
  stream?: string;
  version?: number;
  id?: string;
  replica?: ReplicaId;
  data?: JsonValue;
}): StoredEventRecord {
  const replica = fields.replica ?? REMOTE;
  return storedEvent({
    replica,
    seq: fields.seq,
    wall: fields.wall,
    counter: fields.counter,
    stream: fields.stream ?? 'remote-stream',
    version: fields.version,
    id: fields.id ?? `remote-${replica}-${fields.seq}`,
    data: fields.data ?? { remote: fields.seq },
  });
}

function snapshot(
  version: number,
  cursor: string,
  state: unknown,
  projection = 'todos',
): SnapshotRecord {
  return { projection, version, cursor, pos: 3, count: 7, state };
}

function sorted(list: readonly string[]): string[] {
  return [...list].sort();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

export interface ConformanceOptions {
  /**
   * The adapter stores payloads in a form the suite does not write (sealed: store/sealed-log.ts).
   * Which of two copies at one cursor wins is decided on the stored form, so the suite checks
   * that both orders keep the same copy, not which one.
   */
  opaquePayloads?: boolean;
  /** The adapter trims below a horizon (adapter.ts invariant 6): run trim-conformance.ts. */
  trims?: boolean;
  /** The adapter installs a server snapshot as a base (adapter.ts invariant 7). */
  bases?: boolean;
}

export function storageConformance(
  name: string,
  factory: () => StorageAdapter,
  options: ConformanceOptions = {},
): void {
  describe(`${name} storage adapter`, () => {
    copyConformance(factory, options);

    const opened: EventLog[] = [];

    async function open(adapter: StorageAdapter, options?: OpenOptions): Promise<EventLog> {
      const log = await adapter.open(options);
      opened.push(log);
      return log;
    }

    async function fresh(): Promise<{ adapter: StorageAdapter; log: EventLog }> {
      const adapter = factory();
      return { adapter, log: await open(adapter) };
    }

    afterEach(async () => {
      for (const log of opened.splice(0)) await log.close();
    });

    restampConformance(async () => (await fresh()).log);
    discardConformance(fresh, open);
    appendGroupConformance(fresh);
    idConformance(async () => (await fresh()).log);
    signatureConformance(fresh);
    if (options.trims === true) trimConformance(fresh, open);
    if (options.bases === true) baseConformance(fresh, open);

    describe('appendLocal', () => {
      it('assigns dense seq, positions and stream versions starting at 1 (P2, P4, P7, A3)', async () => {
        const { log } = await fresh();
        const a = written(await append(log, 'a', [newEvent(), newEvent()]));
        const b = written(await append(log, 'b', newEvent()));
        const c = written(await append(log, 'a', newEvent()));
        const all = [...a, ...b, ...c];
        expect(all.map((r) => r.pos)).toEqual([1, 2, 3, 4]);
        expect(all.map((r) => r.event.seq)).toEqual([1, 2, 3, 4]);
        expect(all.map((r) => [r.event.stream, r.event.version])).toEqual([
          ['a', 1],
          ['a', 2],
          ['b', 1],
          ['a', 3],
        ]);
        expect(all.every((r) => r.event.replica === log.replicaId)).toBe(true);
        expect(await log.headPos()).toBe(4);
        expect(await log.streamVersion('a')).toBe(3);
        expect(await log.streamVersion('b')).toBe(1);
        expect(await log.streamVersion('none-yet')).toBe(0);
      });

      it('gives events cursors that sort in append order, even when the wall clock goes back (P3)', async () => {
        const { log } = await fresh();
        const records = [
          ...written(await append(log, 's', [newEvent(), newEvent()], { now: 5_000 })),
          ...written(await append(log, 's', newEvent(), { now: 4_000 })),
          ...written(await append(log, 's', newEvent(), { now: 6_000 })),
        ];
        const cursors = records.map((r) => r.event.cursor);
        expect(sorted(cursors)).toEqual(cursors);
        expect(new Set(cursors).size).toBe(cursors.length);
        for (const r of records) {
          expect(r.event.cursor).toBe(Cursor.make(r.event.hlc, r.event.replica, r.event.seq));
          expect(r.event.time).toBe(decodeHlc(r.event.hlc).wall);
        }
        expect((await log.clock()).wall).toBe(6_000);
      });

      it('stores events as plain data that reads back equal to what was written', async () => {
        const { log } = await fresh();
        const event = newEvent(
          { nested: { list: [1, 'two', null, true, { deep: [] }] }, unicode: 'é✓😀', n: -0.5 },
          { type: 'Rich', meta: { user: 'ada', tags: ['x'] }, schema: 3 },
        );
        const [record] = written(await append(log, 'rich', event));
        expect(record!.event).toMatchObject({
          id: event.id,
          type: 'Rich',
          data: event.data,
          meta: event.meta,
          schema: 3,
        });
        const plain = written(await append(log, 'rich', newEvent(null)))[0]!.event;
        expect('schema' in plain).toBe(false);
        expect('meta' in plain).toBe(false);
        expect((await log.getByIds([event.id]))[0]).toEqual(record);
        expect(await log.readByPos(0, 10)).toEqual([record, { pos: 2, event: plain }]);
      });

      it("accepts expectedVersion 'none' on a new stream and rejects it on an existing one, writing nothing", async () => {
        const { log } = await fresh();
        written(await append(log, 's', newEvent(), { expectedVersion: 'none' }));
        const error = await rejection(append(log, 's', newEvent(), { expectedVersion: 'none' }));
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(error).toMatchObject({
          code: 'CONCURRENCY',
          stream: 's',
          expectedVersion: 'none',
          actualVersion: 1,
        });
        expect(await log.headPos()).toBe(1);
        expect(await log.streamVersion('s')).toBe(1);
      });

      it('rejects a stale numeric expectedVersion with the expected and actual versions, writing nothing (RELIABILITY 3)', async () => {
        const { log } = await fresh();
        written(await append(log, 's', [newEvent(), newEvent()], { expectedVersion: 0 }));
        const stale = newEvent();
        const error = await rejection(append(log, 's', stale, { expectedVersion: 1 }));
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(error).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
        const ahead = await rejection(append(log, 's', newEvent(), { expectedVersion: 5 }));
        expect(ahead).toMatchObject({ code: 'CONCURRENCY', expectedVersion: 5, actualVersion: 2 });
        expect(await log.headPos()).toBe(2);
        expect(await log.getByIds([stale.id])).toEqual([undefined]);
        // The failed appends consumed no seq: the next write takes 3.
        const [next] = written(await append(log, 's', newEvent(), { expectedVersion: 2 }));
        expect(next).toMatchObject({ pos: 3, event: { seq: 3, version: 3 } });
      });

      it("accepts expectedVersion 'any' whatever the stream's version", async () => {
        const { log } = await fresh();
        written(await append(log, 's', newEvent(), { expectedVersion: 'any' }));
        const [r] = written(await append(log, 's', newEvent(), { expectedVersion: 'any' }));
        expect(r!.event.version).toBe(2);
      });

      it('returns the stored events for a batch stored in full and writes nothing, even with a stale expectedVersion (P5)', async () => {
        const { log } = await fresh();
        const batch = [newEvent({ a: 1, b: 2 }), newEvent({ c: [1, 2] }, { meta: { m: 1 } })];
        const first = written(await append(log, 's', batch, { now: 1_000 }));
        const reordered = [{ ...batch[0]!, data: { b: 2, a: 1 } }, batch[1]!];
        const again = await append(log, 's', reordered, { expectedVersion: 0, now: 9_000 });
        expect(again).toEqual({ kind: 'duplicate', events: first.map((r) => r.event) });
        expect(await log.headPos()).toBe(2);
        expect(await log.streamVersion('s')).toBe(2);
        expect((await log.clock()).wall).toBe(1_000);
      });

      it('rejects a stored id with a different payload with IdempotencyError and writes nothing (P5, RELIABILITY 2)', async () => {
        const { log } = await fresh();
        const event = newEvent({ v: 1 });
        written(await append(log, 's', event));
        for (const changed of [
          { ...event, data: { v: 2 } },
          { ...event, type: 'Other' },
          { ...event, schema: 2 },
          { ...event, meta: { added: true } },
        ]) {
          const error = await rejection(append(log, 's', changed));
          expect(error).toBeInstanceOf(IdempotencyError);
          expect(error).toMatchObject({ eventId: event.id, reason: 'payload-differs' });
        }
        const otherStream = await rejection(append(log, 'elsewhere', event));
        expect(otherStream).toMatchObject({ code: 'IDEMPOTENCY', reason: 'payload-differs' });
        expect(await log.headPos()).toBe(1);
        expect(await log.streamVersion('elsewhere')).toBe(0);
      });

      it('rejects a batch mixing stored and new ids with IdempotencyError before checking expectedVersion, writing nothing (P5)', async () => {
        const { log } = await fresh();
        const stored = newEvent();
        written(await append(log, 's', stored));
        const fresh1 = newEvent();
        const error = await rejection(append(log, 's', [fresh1, stored], { expectedVersion: 7 }));
        expect(error).toBeInstanceOf(IdempotencyError);
        expect(error).toMatchObject({ eventId: stored.id, reason: 'mixed-batch' });
        expect(await log.getByIds([fresh1.id])).toEqual([undefined]);
        expect(await log.headPos()).toBe(1);
      });

      it('rejects a batch that holds one id twice, writing nothing', async () => {
        const { log } = await fresh();
        const event = newEvent();
        const error = await rejection(append(log, 's', [event, event]));
        expect(error).toMatchObject({ code: 'IDEMPOTENCY', reason: 'duplicate-in-batch' });
        expect(await log.headPos()).toBe(0);
      });

      it('keeps ids idempotent across closing and reopening the database (RELIABILITY 1, 2)', async () => {
        const { adapter, log } = await fresh();
        const event = newEvent({ order: 42 });
        const [stored] = written(await append(log, 's', event));
        await log.close();
        const reopened = await open(adapter);
        expect(await append(reopened, 's', event)).toEqual({
          kind: 'duplicate',
          events: [stored!.event],
        });
        const error = await rejection(append(reopened, 's', { ...event, data: { order: 43 } }));
        expect(error).toMatchObject({ code: 'IDEMPOTENCY', reason: 'payload-differs' });
        expect(await reopened.headPos()).toBe(1);
      });
    });

    describe('two handles on one database (two tabs)', () => {
      it('agree on the replica id and epoch when opened at the same time', async () => {
        const adapter = factory();
        const [a, b] = await Promise.all([open(adapter), open(adapter)]);
        expect(a.replicaId).toBe(b.replicaId);
        expect(a.epoch).toBe(b.epoch);
        expect(ReplicaId.isValid(a.replicaId)).toBe(true);
        expect(a.epoch.length).toBeGreaterThan(0);
        const other = await open(factory());
        expect(other.replicaId).not.toBe(a.replicaId);
        expect(other.epoch).not.toBe(a.epoch);
      });

      it('never hand out the same seq, position or stream version when appending concurrently (A2)', async () => {
        const adapter = factory();
        const [a, b] = await Promise.all([open(adapter), open(adapter)]);
        const calls: Promise<LocalAppendResult>[] = [];
        for (let i = 0; i < 20; i++) {
          const log = i % 2 === 0 ? a : b;
          calls.push(append(log, i % 3 === 0 ? 'x' : 'y', [newEvent(), newEvent()]));
        }
        const records = (await Promise.all(calls)).flatMap(written);
        const n = records.length;
        const range = Array.from({ length: n }, (_, i) => i + 1);
        expect(records.map((r) => r.event.seq).sort((p, q) => p - q)).toEqual(range);
        expect(records.map((r) => r.pos).sort((p, q) => p - q)).toEqual(range);
        for (const stream of ['x', 'y']) {
          const versions = records
            .filter((r) => r.event.stream === stream)
            .map((r) => r.event.version)
            .sort((p, q) => p - q);
          expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
          expect(await a.streamVersion(stream)).toBe(versions.length);
        }
        expect(await b.headPos()).toBe(n);
      });

      it('let exactly one of two appends with the same expectedVersion win (RELIABILITY 4)', async () => {
        const adapter = factory();
        const [a, b] = await Promise.all([open(adapter), open(adapter)]);
        written(await append(a, 'race', newEvent()));
        const outcomes = await Promise.allSettled([
          append(a, 'race', newEvent(), { expectedVersion: 1 }),
          append(b, 'race', newEvent(), { expectedVersion: 1 }),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o) => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({
          code: 'CONCURRENCY',
          expectedVersion: 1,
          actualVersion: 2,
        });
        expect(await b.streamVersion('race')).toBe(2);
        expect(await a.headPos()).toBe(2);
      });

      it('tell the other handle of a write, not the writer, and stop after unsubscribing', async () => {
        const adapter = factory();
        const [writer, reader] = await Promise.all([open(adapter), open(adapter)]);
        const heard: number[] = [];
        const echoed: number[] = [];
        const unsubscribe = reader.onRemoteWrite((head) => heard.push(head));
        writer.onRemoteWrite((head) => echoed.push(head));
        written(await append(writer, 's', [newEvent(), newEvent()]));
        await vi.waitFor(() => expect(heard).toEqual([2]), { timeout: 2_000 });
        await writer.ingest({
          events: [remoteEvent({ seq: 1, wall: 500 })],
          now: 1_000,
          maxClockDriftMs: DAY,
        });
        await vi.waitFor(() => expect(heard).toEqual([2, 3]), { timeout: 2_000 });
        unsubscribe();
        written(await append(writer, 's', newEvent()));
        // A notice is asynchronous: give a late one the time to arrive before asserting silence.
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(heard).toEqual([2, 3]);
        expect(echoed).toEqual([]);
      });
    });

    describe('ingest', () => {
      it('stores new remote events at the next positions and skips ids stored already (P6)', async () => {
        const { log } = await fresh();
        written(await append(log, 'local', newEvent()));
        const e1 = remoteEvent({ seq: 1, wall: 2_000 });
        const e2 = remoteEvent({ seq: 2, wall: 2_001 });
        const first = await log.ingest({ events: [e1, e2, e1], now: 1_000, maxClockDriftMs: DAY });
        expect(first.written).toEqual([
          { pos: 2, event: e1 },
          { pos: 3, event: e2 },
        ]);
        expect(first.lost).toEqual([]);
        expect(first.removed).toEqual([]);
        expect(first.skewed).toBe(false);
        const e3 = remoteEvent({ seq: 3, wall: 2_002 });
        const again = await log.ingest({ events: [e2, e3], now: 1_000, maxClockDriftMs: DAY });
        expect(again.written).toEqual([{ pos: 4, event: e3 }]);
        expect(await log.headPos()).toBe(4);
        expect((await log.getByIds([e1.id, e3.id])).map((r) => r?.pos)).toEqual([2, 4]);
        // Remote events take no local seq: the next local event has seq 2.
        const [next] = written(await append(log, 'local', newEvent(), { now: 1_000 }));
        expect(next!.event.seq).toBe(2);
      });

      it('reports the highest own seq, moved by own events coming back (a restore)', async () => {
        const { log } = await fresh();
        expect(await log.ownSeq()).toBe(0);
        written(await append(log, 'local', [newEvent(), newEvent()]));
        expect(await log.ownSeq()).toBe(2);
        await log.ingest({
          events: [remoteEvent({ seq: 9, wall: 2_000 })],
          now: 1_000,
          maxClockDriftMs: DAY,
        });
        expect(await log.ownSeq()).toBe(2);
        const lost = remoteEvent({ seq: 7, wall: 3_000, replica: log.replicaId, id: 'own-lost-7' });
        await log.ingest({ events: [lost], now: 1_000, maxClockDriftMs: DAY });
        expect(await log.ownSeq()).toBe(7);
        const [next] = written(await append(log, 'local', newEvent(), { now: 1_000 }));
        expect(next!.event.seq).toBe(8);
      });

      it.skipIf(options.opaquePayloads)(
        'writes nothing for a batch it holds in full, and reports a changed copy that loses',
        async () => {
          const { log } = await fresh();
          const e1 = remoteEvent({ seq: 1, wall: 2_000 });
          await log.ingest({ events: [e1], now: 1_000, maxClockDriftMs: DAY });
          const changed = { ...e1, data: { tampered: true } };
          const result = await log.ingest({ events: [changed], now: 1_000, maxClockDriftMs: DAY });
          // Same cursor: the canonical JSON decides, and {"remote":1} sorts first (core/copies.ts).
          expect(result).toEqual({
            written: [],
            removed: [],
            skewed: false,
            lost: [
              {
                code: 'ID_CONFLICT',
                event: changed,
                keptId: e1.id,
                keptReplica: e1.replica,
                held: false,
              },
            ],
          });
          expect((await log.getByIds([e1.id]))[0]?.event).toEqual(e1);
          expect(await log.headPos()).toBe(1);
        },
      );

      it('moves the clock past remote events so later local events sort after them (P3)', async () => {
        const { log } = await fresh();
        const remote = remoteEvent({ seq: 1, wall: 50_000 });
        await log.ingest({ events: [remote], now: 1_000, maxClockDriftMs: DAY });
        expect(await log.clock()).toEqual({ wall: 50_000, counter: 0 });
        const [local] = written(await append(log, 's', newEvent(), { now: 1_000 }));
        expect(local!.event.cursor > remote.cursor).toBe(true);
      });

      it('reports skew and moves the clock only to now + maxClockDriftMs for an HLC too far ahead', async () => {
        const { log } = await fresh();
        const far = remoteEvent({ seq: 1, wall: 1_000 + 10 * DAY });
        const result = await log.ingest({ events: [far], now: 1_000, maxClockDriftMs: DAY });
        expect(result.skewed).toBe(true);
        expect(result.written.map((r) => r.event.id)).toEqual([far.id]);
        expect(await log.clock()).toEqual({ wall: 1_000 + DAY, counter: 0 });
      });

      it('flags a stream that receives a version it holds already as a possible conflict', async () => {
        const { log } = await fresh();
        written(await append(log, 'doc', newEvent()));
        written(await append(log, 'quiet', newEvent()));
        expect(await log.conflictStreams()).toEqual([]);
        await log.ingest({
          events: [
            remoteEvent({ seq: 1, wall: 900, stream: 'doc', version: 1 }),
            remoteEvent({ seq: 2, wall: 901, stream: 'doc', version: 2 }),
            remoteEvent({ seq: 3, wall: 902, stream: 'other', version: 1 }),
          ],
          now: 1_000,
          maxClockDriftMs: DAY,
        });
        expect(await log.conflictStreams()).toEqual(['doc']);
        expect(await log.streamVersion('doc')).toBe(2);
        expect(await log.streamVersion('other')).toBe(1);
        // The flag stays when the stream moves on.
        written(await append(log, 'doc', newEvent(), { expectedVersion: 2 }));
        expect(await log.conflictStreams()).toEqual(['doc']);
      });

      it("moves this replica's seq past its own events coming back from a restore", async () => {
        const { log } = await fresh();
        const own = remoteEvent({ seq: 5, wall: 900, replica: log.replicaId, stream: 's' });
        await log.ingest({ events: [own], now: 1_000, maxClockDriftMs: DAY });
        const [next] = written(await append(log, 's', newEvent(), { now: 1_000 }));
        expect(next!.event.seq).toBe(6);
        expect(next!.event.version).toBe(6);
      });
    });

    describe('reads', () => {
      /** Local events at wall 1000.., then a late remote event that sorts before them all. */
      async function mixedLog() {
        const { adapter, log } = await fresh();
        written(await append(log, 'a', [newEvent(), newEvent()], { now: 1_000 }));
        written(await append(log, 'b', newEvent(), { now: 1_001 }));
        written(await append(log, 'a', newEvent(), { now: 1_002 }));
        await log.ingest({
          events: [remoteEvent({ seq: 1, wall: 10, stream: 'a', version: 9 })],
          now: 1_003,
          maxClockDriftMs: DAY,
        });
        written(await append(log, 'b', newEvent(), { now: 1_004 }));
        const all = await log.readByPos(0, 100);
        const byCursor = [...all].sort((p, q) => Cursor.compare(p.event.cursor, q.event.cursor));
        return { adapter, log, all, byCursor };
      }

      const ids = (records: LocalRecord[]) => records.map((r) => r.event.id);

      it('reads in the total order, not in receive order (A4)', async () => {
        const { log, all, byCursor } = await mixedLog();
        expect(all.map((r) => r.pos)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(byCursor[0]!.pos).toBe(5);
        expect(await log.readByCursor({ limit: 100 })).toEqual(byCursor);
        expect(await log.readByCursor({ limit: 100, reverse: true })).toEqual(
          [...byCursor].reverse(),
        );
      });

      it('pages forward with after and limit, each event exactly once', async () => {
        const { log, byCursor } = await mixedLog();
        const seen: LocalRecord[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await log.readByCursor(
            after === undefined ? { limit: 4 } : { after, limit: 4 },
          );
          expect(page.length).toBeLessThanOrEqual(4);
          if (page.length === 0) break;
          seen.push(...page);
          after = page[page.length - 1]!.event.cursor;
        }
        expect(ids(seen)).toEqual(ids(byCursor));
      });

      it('pages in reverse with after as an exclusive upper bound', async () => {
        const { log, byCursor } = await mixedLog();
        const reversed = [...byCursor].reverse();
        const first = await log.readByCursor({ reverse: true, limit: 2 });
        expect(ids(first)).toEqual(ids(reversed.slice(0, 2)));
        const next = await log.readByCursor({
          reverse: true,
          after: first[1]!.event.cursor,
          limit: 10,
        });
        expect(ids(next)).toEqual(ids(reversed.slice(2)));
      });

      it('stops at until, inclusive, in both directions', async () => {
        const { log, byCursor } = await mixedLog();
        const until = byCursor[3]!.event.cursor;
        expect(ids(await log.readByCursor({ until, limit: 100 }))).toEqual(
          ids(byCursor.slice(0, 4)),
        );
        expect(
          ids(await log.readByCursor({ after: byCursor[0]!.event.cursor, until, limit: 100 })),
        ).toEqual(ids(byCursor.slice(1, 4)));
        expect(ids(await log.readByCursor({ reverse: true, until, limit: 100 }))).toEqual(
          ids(byCursor.slice(3).reverse()),
        );
        expect(
          ids(
            await log.readByCursor({
              reverse: true,
              after: byCursor[5]!.event.cursor,
              until,
              limit: 100,
            }),
          ),
        ).toEqual(ids(byCursor.slice(3, 5).reverse()));
      });

      it('returns nothing for an empty range or a zero limit', async () => {
        const { log, byCursor } = await mixedLog();
        const last = byCursor[byCursor.length - 1]!.event.cursor;
        const first = byCursor[0]!.event.cursor;
        expect(await log.readByCursor({ after: last, limit: 10 })).toEqual([]);
        expect(await log.readByCursor({ reverse: true, after: first, limit: 10 })).toEqual([]);
        expect(await log.readByCursor({ after: last, until: first, limit: 10 })).toEqual([]);
        expect(await log.readByCursor({ after: first, until: first, limit: 10 })).toEqual([]);
        expect(await log.readByCursor({ limit: 0 })).toEqual([]);
        expect(await log.readByCursor({ stream: 'nope', limit: 10 })).toEqual([]);
      });

      it('reads one stream in total order with every option', async () => {
        const { log, byCursor } = await mixedLog();
        const a = byCursor.filter((r) => r.event.stream === 'a');
        expect(a).toHaveLength(4);
        expect(await log.readByCursor({ stream: 'a', limit: 100 })).toEqual(a);
        expect(await log.readByCursor({ stream: 'a', limit: 2 })).toEqual(a.slice(0, 2));
        expect(
          await log.readByCursor({ stream: 'a', after: a[1]!.event.cursor, limit: 100 }),
        ).toEqual(a.slice(2));
        expect(
          await log.readByCursor({ stream: 'a', until: a[2]!.event.cursor, limit: 100 }),
        ).toEqual(a.slice(0, 3));
        expect(await log.readByCursor({ stream: 'a', reverse: true, limit: 3 })).toEqual(
          [...a].reverse().slice(0, 3),
        );
        expect(
          await log.readByCursor({
            stream: 'a',
            reverse: true,
            after: a[3]!.event.cursor,
            until: a[1]!.event.cursor,
            limit: 100,
          }),
        ).toEqual([a[2], a[1]]);
        // A stream whose name extends another's is not mixed in.
        written(await append(log, 'a2', newEvent(), { now: 1_000 }));
        expect(await log.readByCursor({ stream: 'a', limit: 100 })).toEqual(a);
      });

      it('pages through receive order by position (A3)', async () => {
        const { log, all } = await mixedLog();
        expect(await log.readByPos(0, 4)).toEqual(all.slice(0, 4));
        expect(await log.readByPos(4, 4)).toEqual(all.slice(4));
        expect(await log.readByPos(6, 4)).toEqual([]);
        expect(await log.readByPos(2, 0)).toEqual([]);
      });

      it('gets records by id in the order asked, undefined for unknown ids', async () => {
        const { log, all } = await mixedLog();
        const result = await log.getByIds([all[3]!.event.id, 'unknown', all[0]!.event.id]);
        expect(result).toEqual([all[3], undefined, all[0]]);
        expect(await log.getByIds([])).toEqual([]);
      });

      it('finds the smallest cursor among positions after a given one', async () => {
        const { log, all } = await mixedLog();
        expect(await log.minCursorSince(6)).toBeUndefined();
        expect(await log.minCursorSince(5)).toBe(all[5]!.event.cursor);
        // Position 5 is the late remote event: it sorts first among everything after 3.
        expect(await log.minCursorSince(3)).toBe(all[4]!.event.cursor);
        expect(await log.minCursorSince(0)).toBe(all[4]!.event.cursor);
        const { log: empty } = await fresh();
        expect(await empty.minCursorSince(0)).toBeUndefined();
        expect(await empty.headPos()).toBe(0);
        expect(await empty.clock()).toEqual({ wall: 0, counter: 0 });
      });
    });

    describe('reads across long appends and late events that sort inside them (issue 3)', () => {
      /** 300 events appended at once, another stream, then remote events sorting among them. */
      async function longLog() {
        const { log } = await fresh();
        const many = Array.from({ length: 300 }, (_, i) => newEvent({ i }));
        written(await append(log, 'a', many, { now: 1_000 }));
        written(await append(log, 'b', [newEvent(), newEvent()], { now: 1_000 }));
        const late = (seq: number, counter: number, stream: string): StoredEventRecord =>
          remoteEvent({ seq, wall: 1_000, counter, stream });
        // Receive order differs from the total order; two land in one run, one on its edge.
        await log.ingest({
          events: [late(1, 150, 'a'), late(2, 10, 'r'), late(3, 11, 'r'), late(4, 299, 'a')],
          now: 1_001,
          maxClockDriftMs: DAY,
        });
        written(await append(log, 'a', [newEvent(), newEvent()], { now: 1_002 }));
        const all = await log.readByPos(0, 1_000);
        const byCursor = [...all].sort((p, q) => Cursor.compare(p.event.cursor, q.event.cursor));
        return { log, all, byCursor };
      }

      const ids = (records: LocalRecord[]) => records.map((r) => r.event.id);

      it('keeps dense positions and reads every event once in the total order', async () => {
        const { log, all, byCursor } = await longLog();
        expect(all.map((r) => r.pos)).toEqual(Array.from({ length: 308 }, (_, i) => i + 1));
        expect(ids(await log.readByCursor({ limit: 1_000 }))).toEqual(ids(byCursor));
        expect(await log.readByCursor({ limit: 1_000, reverse: true })).toEqual(
          [...byCursor].reverse(),
        );
        expect(byCursor.findIndex((r) => r.event.id === all[302]!.event.id)).toBeLessThan(160);
      });

      it('pages with limits smaller than an append, forward and in reverse (A5)', async () => {
        const { log, byCursor } = await longLog();
        for (const limit of [1, 7, 128, 129]) {
          for (const reverse of [false, true]) {
            const seen: LocalRecord[] = [];
            let after: string | undefined;
            for (;;) {
              const page = await log.readByCursor(
                after === undefined ? { limit, reverse } : { after, limit, reverse },
              );
              expect(page.length).toBeLessThanOrEqual(limit);
              if (page.length === 0) break;
              seen.push(...page);
              after = page[page.length - 1]!.event.cursor;
            }
            const expected = reverse ? [...byCursor].reverse() : byCursor;
            expect(ids(seen)).toEqual(ids(expected));
          }
        }
      });

      it('reads ranges that start and end inside an append, and one stream of it', async () => {
        const { log, byCursor } = await longLog();
        const after = byCursor[40]!.event.cursor;
        const until = byCursor[250]!.event.cursor;
        expect(await log.readByCursor({ after, until, limit: 1_000 })).toEqual(
          byCursor.slice(41, 251),
        );
        expect(
          await log.readByCursor({ after: until, until: after, reverse: true, limit: 50 }),
        ).toEqual(byCursor.slice(200, 250).reverse());
        const a = byCursor.filter((r) => r.event.stream === 'a');
        expect(await log.readByCursor({ stream: 'a', after, limit: 20 })).toEqual(
          a.slice(a.findIndex((r) => r.event.cursor > after)).slice(0, 20),
        );
        expect(await log.readByCursor({ stream: 'r', limit: 10 })).toHaveLength(2);
        expect(
          await log.readByCursor({ stream: 'a', until: after, reverse: true, limit: 1_000 }),
        ).toEqual(a.filter((r) => r.event.cursor >= after).reverse());
      });

      it('reads positions, ids and smallest cursors from the middle of an append', async () => {
        const { log, all } = await longLog();
        const seen: LocalRecord[] = [];
        while (seen.length < all.length) seen.push(...(await log.readByPos(seen.length, 7)));
        expect(seen).toEqual(all);
        expect(await log.readByPos(99, 3)).toEqual(all.slice(99, 102));
        const wanted = [all[150]!, all[303]!, all[0]!, all[299]!];
        expect(await log.getByIds(wanted.map((r) => r.event.id))).toEqual(wanted);
        for (const pos of [0, 100, 299, 302, 303, 305, 308]) {
          const rest = all.slice(pos).map((r) => r.event.cursor);
          expect(await log.minCursorSince(pos)).toBe(
            rest.length === 0 ? undefined : rest.sort()[0],
          );
        }
      });
    });

    describe('snapshots and meta', () => {
      it('stores snapshots and lists them by projection and version in cursor order, without state', async () => {
        const { log } = await fresh();
        await log.putSnapshot(snapshot(1, 'c2', { items: [2] }));
        await log.putSnapshot(snapshot(1, 'c1', { items: [1] }));
        await log.putSnapshot(snapshot(2, 'c1', { items: ['v2'] }));
        await log.putSnapshot(snapshot(1, 'c1', { items: ['x'] }, 'other'));
        expect(await log.listSnapshots('todos', 1)).toEqual([
          { projection: 'todos', version: 1, cursor: 'c1', pos: 3, count: 7 },
          { projection: 'todos', version: 1, cursor: 'c2', pos: 3, count: 7 },
        ]);
        expect(await log.listSnapshots('todos', 3)).toEqual([]);
        expect(await log.getSnapshot('todos', 1, 'c2')).toEqual(snapshot(1, 'c2', { items: [2] }));
        expect(await log.getSnapshot('todos', 1, 'c9')).toBeUndefined();
        await log.putSnapshot(snapshot(1, 'c2', { items: ['replaced'] }));
        expect((await log.getSnapshot('todos', 1, 'c2'))?.state).toEqual({ items: ['replaced'] });
      });

      it('deletes the listed snapshots, or every version of a projection', async () => {
        const { log } = await fresh();
        for (const [v, c] of [
          [1, 'c1'],
          [1, 'c2'],
          [2, 'c1'],
        ] as const) {
          await log.putSnapshot(snapshot(v, c, { v, c }));
        }
        await log.putSnapshot(snapshot(1, 'c1', null, 'other'));
        await log.deleteSnapshots('todos', [{ version: 1, cursor: 'c1' }]);
        expect((await log.listSnapshots('todos', 1)).map((s) => s.cursor)).toEqual(['c2']);
        await log.deleteSnapshots('todos');
        expect(await log.listSnapshots('todos', 1)).toEqual([]);
        expect(await log.listSnapshots('todos', 2)).toEqual([]);
        expect(await log.listSnapshots('other', 1)).toHaveLength(1);
      });

      it('gets and sets meta values as JSON, apart from the replica bookkeeping', async () => {
        const { log } = await fresh();
        expect(await log.getMeta('checkpoint')).toBeUndefined();
        await log.setMeta('checkpoint', { peer: 'server', pos: 12, list: [1, null] });
        expect(await log.getMeta('checkpoint')).toEqual({
          peer: 'server',
          pos: 12,
          list: [1, null],
        });
        await log.setMeta('checkpoint', 13);
        expect(await log.getMeta('checkpoint')).toBe(13);
        for (const key of ['replicaId', 'epoch', 'counters', 'seq', 'sys:counters']) {
          await log.setMeta(key, 'not a counter');
        }
        const [r] = written(await append(log, 's', newEvent()));
        expect(r!.event.seq).toBe(1);
        expect(await log.getMeta('sys:counters')).toBe('not a counter');
      });
    });

    describe('close and reopen', () => {
      it('rejects every call after close with a closed-store error', async () => {
        const { log } = await fresh();
        written(await append(log, 's', newEvent()));
        await log.close();
        const calls: Promise<unknown>[] = [
          append(log, 's', newEvent()),
          log.ingest({ events: [remoteEvent({ seq: 1, wall: 5 })], now: 1, maxClockDriftMs: DAY }),
          log.readByCursor({ limit: 10 }),
          log.readByPos(0, 10),
          log.getByIds(['x']),
          log.headPos(),
          log.minCursorSince(0),
          log.streamVersion('s'),
          log.conflictStreams(),
          log.clock(),
          log.putSnapshot(snapshot(1, 'c', null)),
          log.listSnapshots('todos', 1),
          log.getSnapshot('todos', 1, 'c'),
          log.deleteSnapshots('todos'),
          log.getMeta('k'),
          log.setMeta('k', 1),
        ];
        for (const outcome of await Promise.allSettled(calls)) {
          expect(outcome.status).toBe('rejected');
          const error = (outcome as PromiseRejectedResult).reason;
          expect(error).toBeInstanceOf(ChronicleError);
          expect(['STORE_CLOSED', 'STORAGE']).toContain((error as ChronicleError).code);
        }
        await log.close();
      });

      it('keeps events, counters, versions, conflicts, snapshots and meta across close and reopen (durability)', async () => {
        const { adapter, log } = await fresh();
        const before = written(await append(log, 's', [newEvent(), newEvent()], { now: 2_000 }));
        await log.ingest({
          events: [remoteEvent({ seq: 1, wall: 1_500, stream: 's', version: 1 })],
          now: 2_000,
          maxClockDriftMs: DAY,
        });
        await log.putSnapshot(snapshot(1, 'c1', { kept: true }));
        await log.setMeta('checkpoint', 3);
        const replicaId = log.replicaId;
        const epoch = log.epoch;
        await log.close();

        const reopened = await open(adapter);
        expect(reopened.replicaId).toBe(replicaId);
        expect(reopened.epoch).toBe(epoch);
        expect(await reopened.headPos()).toBe(3);
        expect((await reopened.readByPos(0, 10)).slice(0, 2)).toEqual(before);
        expect(await reopened.streamVersion('s')).toBe(2);
        expect(await reopened.conflictStreams()).toEqual(['s']);
        expect((await reopened.getSnapshot('todos', 1, 'c1'))?.state).toEqual({ kept: true });
        expect(await reopened.getMeta('checkpoint')).toBe(3);
        expect((await reopened.clock()).wall).toBe(2_000);
        const [next] = written(await append(reopened, 's', newEvent(), { now: 1_000 }));
        expect(next).toMatchObject({ pos: 4, event: { seq: 3, version: 3 } });
        expect(next!.event.cursor > before[1]!.event.cursor).toBe(true);
      });
    });
  });
}
