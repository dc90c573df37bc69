import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.ts';
import {
  DEFAULT_SNAPSHOT_EVERY,
  decideCatchUp,
  defineProjection,
  type FoldProgress,
  NO_PROGRESS,
  type ProjectionDefinition,
  type SnapshotPoint,
  snapshotCandidates,
  snapshotDue,
  snapshotIsValid,
} from '../../src/core/projection.ts';
import { arbCursorParts } from './fixtures.ts';

const count: ProjectionDefinition<number, unknown> = {
  name: 'count',
  version: 1,
  initial: () => 0,
  apply: (n) => n + 1,
};

function pathOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).path;
  }
  throw new Error('expected a ValidationError');
}

describe('defineProjection', () => {
  it('fills in the default snapshot interval and copies the queries', () => {
    const queries = { total: (n: number) => n };
    const p = defineProjection({ ...count, queries });
    expect(p.name).toBe('count');
    expect(p.version).toBe(1);
    expect(p.snapshotEvery).toBe(DEFAULT_SNAPSHOT_EVERY);
    expect(p.initial()).toBe(0);
    expect(p.queries.total).toBe(queries.total);
    expect(p.queries).not.toBe(queries);
    expect(defineProjection(count).queries).toEqual({});
    expect(defineProjection({ ...count, snapshotEvery: 0 }).snapshotEvery).toBe(0);
  });

  it('rejects a bad name, version, initial, apply or snapshotEvery, naming the field', () => {
    const bad = (patch: Record<string, unknown>) => () =>
      defineProjection({ ...count, ...patch } as unknown as ProjectionDefinition<number, unknown>);
    expect(pathOf(bad({ name: '' }))).toBe('projection.name');
    expect(pathOf(bad({ name: 'n'.repeat(257) }))).toBe('projection.name');
    expect(pathOf(bad({ name: 3 }))).toBe('projection.name');
    for (const version of [0, -1, 1.5, Number.NaN, '1']) {
      expect(pathOf(bad({ version }))).toBe('projection.version');
    }
    expect(pathOf(bad({ initial: 0 }))).toBe('projection.initial');
    expect(pathOf(bad({ apply: undefined }))).toBe('projection.apply');
    for (const snapshotEvery of [-1, 1.5, Number.POSITIVE_INFINITY]) {
      expect(pathOf(bad({ snapshotEvery }))).toBe('projection.snapshotEvery');
    }
    expect(() => defineProjection({ ...count, name: 'n'.repeat(256) })).not.toThrow();
  });

  it('says a snapshot is due every snapshotEvery folded events, never when it is 0', () => {
    const every3 = defineProjection({ ...count, snapshotEvery: 3 }) as Parameters<
      typeof snapshotDue
    >[0];
    expect([0, 1, 2, 3, 4].map((n) => snapshotDue(every3, n))).toEqual([
      false,
      false,
      false,
      true,
      true,
    ]);
    const off = defineProjection({ ...count, snapshotEvery: 0 }) as Parameters<
      typeof snapshotDue
    >[0];
    expect(snapshotDue(off, 10_000)).toBe(false);
  });
});

describe('decideCatchUp', () => {
  const progress: FoldProgress = { cursor: 'm', pos: 10 };

  it('is up to date when nothing was received since the fold', () => {
    expect(decideCatchUp(progress, 10, undefined)).toEqual({ kind: 'up-to-date' });
    expect(decideCatchUp(progress, 9, 'a')).toEqual({ kind: 'up-to-date' });
    expect(decideCatchUp(NO_PROGRESS, 0, undefined)).toEqual({ kind: 'up-to-date' });
  });

  it('advances when everything received since sorts after the fold', () => {
    expect(decideCatchUp(progress, 12, 'n')).toEqual({ kind: 'advance', head: 12 });
    expect(decideCatchUp(NO_PROGRESS, 3, 'a')).toEqual({ kind: 'advance', head: 3 });
  });

  it('projection invariant 2: rebases before a late event that sorts before the fold', () => {
    expect(decideCatchUp(progress, 12, 'c')).toEqual({ kind: 'rebase', head: 12, before: 'c' });
  });

  it('advances incomplete progress (a snapshot taken mid-fold) even when nothing new arrived', () => {
    const partial: FoldProgress = { cursor: 'm', pos: 10, complete: false };
    expect(decideCatchUp(partial, 10, undefined)).toEqual({ kind: 'advance', head: 10 });
    expect(decideCatchUp(partial, 12, 'n')).toEqual({ kind: 'advance', head: 12 });
    expect(decideCatchUp(partial, 12, 'c')).toEqual({ kind: 'rebase', head: 12, before: 'c' });
    expect(decideCatchUp({ ...partial, complete: true }, 10, undefined)).toEqual({
      kind: 'up-to-date',
    });
  });
});

describe('snapshotIsValid', () => {
  it('projection invariant 3: a snapshot is valid until something received after it sorts before it', () => {
    const snap: SnapshotPoint = { cursor: 'm', pos: 5 };
    expect(snapshotIsValid(snap, undefined)).toBe(true);
    expect(snapshotIsValid(snap, 'n')).toBe(true);
    expect(snapshotIsValid(snap, 'c')).toBe(false);
  });
});

describe('snapshotCandidates', () => {
  it('returns the snapshots strictly before the bound, newest first, leaving the input alone', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 3 }), {
          maxLength: 12,
        }),
        fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 3 }),
        (cursors, bound) => {
          const snapshots = cursors.map((cursor, pos) => ({ cursor, pos, tag: `s${pos}` }));
          const before = [...snapshots];
          const result = snapshotCandidates(snapshots, bound);
          expect(snapshots).toEqual(before);
          expect(result.every((s) => s.cursor < bound)).toBe(true);
          expect(result.map((s) => s.tag).sort()).toEqual(
            snapshots
              .filter((s) => s.cursor < bound)
              .map((s) => s.tag)
              .sort(),
          );
          for (let i = 1; i < result.length; i++) {
            expect(result[i - 1]!.cursor >= result[i]!.cursor).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('excludes a snapshot taken exactly at the bound', () => {
    const snaps = [
      { cursor: 'b', pos: 1 },
      { cursor: 'd', pos: 2 },
      { cursor: 'c', pos: 3 },
    ];
    expect(snapshotCandidates(snaps, 'd')).toEqual([
      { cursor: 'c', pos: 3 },
      { cursor: 'b', pos: 1 },
    ]);
  });
});

/* --------------------- model-based catch-up, rebase and snapshots --------------------- */

interface Snapshot extends SnapshotPoint {
  state: string[];
  /** Once a snapshot is seen invalid it must stay invalid (invariant 3). */
  seenInvalid: boolean;
}

/**
 * A projection host as small as it gets: a receive-order log of cursors, a fold whose state is the
 * list of cursors folded (so order and double folds both show), snapshots taken mid-fold every
 * `snapshotEvery` events, and catch-up driven only by the functions under test.
 */
class Simulator {
  readonly log: string[] = []; // log[pos - 1] = cursor of the event at local position pos
  state: string[] = [];
  progress: FoldProgress = NO_PROGRESS;
  snapshots: Snapshot[] = [];
  rebases = 0;
  rebasesFromSnapshot = 0;
  private sinceSnapshot = 0;

  private readonly snapshotEvery: number;

  constructor(snapshotEvery: number) {
    this.snapshotEvery = snapshotEvery;
  }

  receive(cursors: string[]): void {
    this.log.push(...cursors);
  }

  /** Smallest cursor among positions in (after, head]. */
  minCursorSince(after: number, head: number): string | undefined {
    let min: string | undefined;
    for (let pos = after + 1; pos <= head; pos++) {
      const c = this.log[pos - 1]!;
      if (min === undefined || c < min) min = c;
    }
    return min;
  }

  catchUp(): void {
    const head = this.log.length;
    const decision = decideCatchUp(
      this.progress,
      head,
      this.minCursorSince(this.progress.pos, head),
    );
    switch (decision.kind) {
      case 'up-to-date':
        return;
      case 'advance':
        this.foldTo(decision.head);
        return;
      case 'rebase': {
        this.rebases++;
        const candidates = snapshotCandidates(this.snapshots, decision.before);
        const start = candidates.find((s) =>
          snapshotIsValid(s, this.minCursorSince(s.pos, decision.head)),
        );
        // invariant 2: the snapshot resumed from lies before the late event
        if (start !== undefined) expect(start.cursor < decision.before).toBe(true);
        this.state = start === undefined ? [] : [...start.state];
        this.progress =
          start === undefined ? NO_PROGRESS : { cursor: start.cursor, pos: start.pos };
        if (start !== undefined) this.rebasesFromSnapshot++;
        // invariant 3: invalid snapshots may be deleted
        this.snapshots = this.snapshots.filter((s) =>
          snapshotIsValid(s, this.minCursorSince(s.pos, head)),
        );
        this.sinceSnapshot = 0;
        this.foldTo(decision.head);
        return;
      }
      default: {
        const never: never = decision;
        throw new Error(`unknown decision ${JSON.stringify(never)}`);
      }
    }
  }

  /** Folds, in cursor order, every event at a position <= head whose cursor is past progress. */
  private foldTo(head: number): void {
    const todo = this.log
      .slice(0, head)
      .filter((c) => c > this.progress.cursor)
      .sort();
    for (const cursor of todo) {
      this.state = [...this.state, cursor];
      this.progress = { cursor, pos: head };
      this.sinceSnapshot++;
      if (this.sinceSnapshot >= this.snapshotEvery) {
        // a snapshot mid-fold records (K, head): the fold of everything <= K among positions <= head
        this.snapshots.push({ cursor, pos: head, state: [...this.state], seenInvalid: false });
        this.sinceSnapshot = 0;
      }
    }
    this.progress = { cursor: this.progress.cursor, pos: head };
  }

  /**
   * A restart: in-memory state is lost and the projection resumes from its newest valid snapshot,
   * whose progress may be incomplete (it may have been taken mid-fold).
   */
  restart(): void {
    const head = this.log.length;
    const start = snapshotCandidates(this.snapshots, '\uffff').find((s) =>
      snapshotIsValid(s, this.minCursorSince(s.pos, head)),
    );
    this.state = start === undefined ? [] : [...start.state];
    this.progress =
      start === undefined ? NO_PROGRESS : { cursor: start.cursor, pos: start.pos, complete: false };
    this.sinceSnapshot = 0;
  }

  checkSnapshotsStayInvalid(): void {
    const head = this.log.length;
    for (const s of this.snapshots) {
      const valid = snapshotIsValid(s, this.minCursorSince(s.pos, head));
      if (s.seenInvalid) expect(valid).toBe(false);
      if (!valid) s.seenInvalid = true;
    }
  }
}

describe('catch-up under random delivery (model-based)', () => {
  it('projection invariants 1-3: state always equals the fold, in cursor order, of every event delivered, across rebases and restarts', () => {
    const stats = { rebases: 0, fromSnapshot: 0 };
    fc.assert(
      fc.property(
        fc
          .uniqueArray(arbCursorParts, { selector: (p) => p.cursor, minLength: 1, maxLength: 40 })
          .chain((all) =>
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
          ),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }),
        // what happens after each chunk arrives: catch-ups and restarts, in any number and order
        fc.array(fc.array(fc.constantFrom('catch-up', 'restart' as const), { maxLength: 3 }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.integer({ min: 1, max: 5 }),
        (shuffled, chunkSizes, afterChunk, snapshotEvery) => {
          const receiveOrder = shuffled.map((p) => p.cursor);
          const sim = new Simulator(snapshotEvery);
          const catchUpAndCheck = () => {
            sim.catchUp();
            const delivered = sim.log.slice().sort();
            expect(sim.state).toEqual(delivered);
            expect(sim.progress).toEqual({ cursor: delivered.at(-1), pos: sim.log.length });
          };
          let offset = 0;
          for (let chunk = 0; offset < receiveOrder.length; chunk++) {
            const size = chunkSizes[chunk % chunkSizes.length]!;
            sim.receive(receiveOrder.slice(offset, offset + size));
            offset += size;
            sim.checkSnapshotsStayInvalid();
            for (const action of afterChunk[chunk % afterChunk.length]!) {
              if (action === 'restart') sim.restart();
              else catchUpAndCheck();
            }
          }
          catchUpAndCheck();
          // a second catch-up with nothing new changes nothing
          catchUpAndCheck();
          stats.rebases += sim.rebases;
          stats.fromSnapshot += sim.rebasesFromSnapshot;
        },
      ),
      { numRuns: 300 },
    );
    // the generator must actually exercise late events and snapshot resumes
    expect(stats.rebases).toBeGreaterThan(50);
    expect(stats.fromSnapshot).toBeGreaterThan(10);
  });
});
