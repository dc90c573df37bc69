/**
 * A property test for adapters that pack the log (IndexedDB segments, issue 3): random appends
 * (long and short, several streams), group commits of several streams (issue 14) and ingests (remote events that sort among stored ones,
 * duplicates), then every kind of read, compared with the memory adapter, which keeps one entry
 * per event. Imports only vitest, fast-check, src and test/fixtures (which imports only src), so
 * that it also runs in a browser.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { EventId, ReplicaId } from '../../src/core/ids.ts';
import type { CursorQuery, EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { storedEvent } from '../fixtures/events.ts';

const DAY = 24 * 60 * 60 * 1000;
const REMOTES = [ReplicaId.parse('remote0000000001'), ReplicaId.parse('remote0000000002')];
const STREAMS = ['a', 'b', 'c'];

type Op =
  | { kind: 'append'; stream: string; count: number; now: number }
  | { kind: 'group'; units: { stream: string; count: number }[][]; now: number }
  | { kind: 'ingest'; events: { replica: number; wall: number; stream: string }[]; again: number }
  | { kind: 'trim'; at: number; limit: number };

// Local walls are even, remote walls odd: no local event shares an HLC with a remote one, so the
// total order does not depend on the two adapters' different (random) local replica ids.
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('append' as const),
    stream: fc.constantFrom(...STREAMS),
    count: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 100, max: 300 })),
    now: fc.integer({ min: 1, max: 40 }).map((n) => n * 2),
  }),
  // A group commit (EventLog.appendGroup): units of several streams, one segment for them all.
  fc.record({
    kind: fc.constant('group' as const),
    units: fc.array(
      fc.array(
        fc.record({
          stream: fc.constantFrom(...STREAMS),
          count: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 60, max: 140 })),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      { minLength: 1, maxLength: 4 },
    ),
    now: fc.integer({ min: 1, max: 40 }).map((n) => n * 2),
  }),
  fc.record({
    kind: fc.constant('ingest' as const),
    events: fc.array(
      fc.record({
        replica: fc.integer({ min: 0, max: 1 }),
        wall: fc.integer({ min: 0, max: 40 }).map((n) => n * 2 + 1),
        stream: fc.constantFrom(...STREAMS),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    again: fc.integer({ min: 0, max: 3 }),
  }),
  // Trimming below a horizon (adapter.ts invariant 6), for adapters that trim: later ingests
  // then land inside husks and re-send trimmed events.
  fc.record({
    kind: fc.constant('trim' as const),
    at: fc.nat(),
    limit: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 100, max: 400 })),
  }),
);

const arbRead = fc.record({
  after: fc.option(fc.nat(), { nil: undefined }),
  until: fc.option(fc.nat(), { nil: undefined }),
  stream: fc.option(fc.constantFrom(...STREAMS), { nil: undefined }),
  reverse: fc.boolean(),
  limit: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 100, max: 400 })),
});

async function run(log: EventLog, ops: Op[], trims: boolean): Promise<void> {
  const seqs = [0, 0];
  const sent: StoredEventRecord[] = [];
  let ids = 0;
  const newEvents = (count: number) =>
    Array.from({ length: count }, () => ({
      id: EventId.parse(`local-${++ids}`),
      type: 'Added',
      data: { n: ids },
      schema: 1,
    }));
  for (const op of ops) {
    if (op.kind === 'trim') {
      if (!trims || log.trim === undefined) continue;
      const all = await log.readByCursor({ limit: 100_000 });
      if (all.length > 0) await log.trim(all[op.at % all.length]!.event.cursor, op.limit);
      continue;
    }
    if (op.kind === 'group') {
      await log.appendGroup({
        units: op.units.map((unit) =>
          unit.map((part) => ({
            stream: part.stream,
            events: newEvents(part.count),
            expectedVersion: 'any' as const,
          })),
        ),
        now: op.now,
      });
      continue;
    }
    if (op.kind === 'append') {
      await log.appendLocal({
        stream: op.stream,
        events: newEvents(op.count),
        expectedVersion: 'any',
        now: op.now,
      });
      continue;
    }
    const events = op.events.map((f) => {
      const replica = REMOTES[f.replica]!;
      const seq = ++seqs[f.replica]!;
      return storedEvent({
        replica,
        seq,
        wall: f.wall,
        stream: f.stream,
        id: `${replica}-${seq}`,
        type: 'Remote',
        data: { seq },
      });
    });
    // Some events sent before come again (ingest skips them).
    const again = sent.slice(0, op.again);
    sent.push(...events);
    await log.ingest({ events: [...again, ...events], now: 1, maxClockDriftMs: DAY });
  }
}

/** What a read returned, with the local replica id (random per adapter) replaced. */
function normal(log: EventLog, value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null).replaceAll(log.replicaId, 'LOCAL'));
}

type ReadSpec = typeof arbRead extends fc.Arbitrary<infer T> ? T : never;

async function reads(log: EventLog, queries: ReadSpec[]) {
  const all = await log.readByCursor({ limit: 100_000 });
  const cursorAt = (i: number | undefined) =>
    i === undefined || all.length === 0 ? undefined : all[i % all.length]!.event.cursor;
  const out: unknown[] = [];
  for (const q of queries) {
    const query: CursorQuery = { limit: q.limit, reverse: q.reverse };
    const after = cursorAt(q.after);
    const until = cursorAt(q.until);
    if (after !== undefined) query.after = after;
    if (until !== undefined) query.until = until;
    if (q.stream !== undefined) query.stream = q.stream;
    out.push(await log.readByCursor(query));
    const pos = (q.after ?? 0) % (all.length + 2);
    out.push(await log.readByPos(pos, q.limit));
    out.push(await log.minCursorSince(pos));
  }
  const picked = [0, 17, 150, 299].map((i) => all[i % Math.max(1, all.length)]?.event.id ?? 'x');
  out.push(await log.getByIds([...picked, 'unknown']));
  out.push(await log.headPos(), await log.ownSeq(), all);
  for (const s of STREAMS) out.push(await log.streamVersion(s));
  out.push(await log.conflictStreams());
  out.push((await log.horizon?.()) ?? null);
  return normal(log, out);
}

export function againstMemory(name: string, factory: () => StorageAdapter, runs = 25): void {
  it(`${name} reads what the memory adapter reads after random appends and ingests (property)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbOp, { minLength: 1, maxLength: 8 }),
        fc.array(arbRead, { minLength: 1, maxLength: 8 }),
        async (ops, queries) => {
          const expected = await memoryStorage().open();
          const actual = await factory().open();
          try {
            // The memory adapter trims too: both trim only when the one under test does.
            const trims = actual.trim !== undefined;
            await run(expected, ops, trims);
            await run(actual, ops, trims);
            expect(await reads(actual, queries)).toEqual(await reads(expected, queries));
          } finally {
            await actual.close();
            await expected.close();
          }
        },
      ),
      { numRuns: runs },
    );
  }, 120_000);
}
