/**
 * src/server/sqlite-compactor.ts invariant 2, on a stand-in for the storage's steps (the steps
 * themselves are sqlite-blocks.test.ts's): the compactor waits for a server quiet for reads as
 * well as commits, and a server never quiet still seals, in step with what it commits, never in
 * a burst that starves the traffic.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type CompactionWork, SqliteCompactor } from '../../src/server/sqlite-compactor.ts';

const BLOCK = 128;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A log of `committed` events of which `sealed` are sealed, by blocks, past a tail of 0. */
function fakeWork() {
  const state = { committed: 0, sealed: 0, steps: 0 };
  const work: CompactionWork = {
    spaces: () => ['s'],
    seal(_space, tail, partial) {
      const left = state.committed - tail - state.sealed;
      const n = partial ? Math.min(BLOCK, left) : left >= BLOCK ? BLOCK : 0;
      state.sealed += n;
      state.steps += 1;
      return n;
    },
    vacuum: () => 0,
  };
  return { state, work };
}

let compactor: SqliteCompactor | undefined;
afterEach(() => compactor?.close());

function commit(c: SqliteCompactor, state: { committed: number }, events: number) {
  c.touch('s', events);
  state.committed += events;
  c.afterCommit();
}

describe('the SQLite compactor’s schedule (invariant 2)', () => {
  it('waits while clients read, and seals once reads and commits stop for idleMs', async () => {
    const { state, work } = fakeWork();
    compactor = new SqliteCompactor(work, { tailEvents: 0, idleMs: 40, maxDelayMs: 60_000 });
    commit(compactor, state, 10 * BLOCK);
    for (let i = 0; i < 20; i++) {
      await sleep(10);
      compactor.noteRead();
    }
    // 200 ms of reads every 10 ms: never 40 ms quiet.
    expect(state.sealed).toBe(0);
    await sleep(150);
    expect(state.sealed).toBe(10 * BLOCK);
  });

  it('under commits that never pause, seals past maxDelayMs in step with them: the tail stops growing, no burst', async () => {
    const { state, work } = fakeWork();
    compactor = new SqliteCompactor(work, { tailEvents: 0, idleMs: 1_000, maxDelayMs: 100 });
    const backlog = () => state.committed - state.sealed;
    const started = Date.now();
    let atForced: number | undefined;
    let most = 0;
    let sealedAtForced = 0;
    let committedAtForced = 0;
    while (Date.now() - started < 600) {
      commit(compactor, state, 100);
      await sleep(5);
      if (atForced === undefined && state.sealed > 0) {
        atForced = backlog();
        sealedAtForced = state.sealed;
        committedAtForced = state.committed;
      }
      if (atForced !== undefined) most = Math.max(most, backlog());
    }
    expect(atForced).toBeDefined();
    // Bounded: a few commits and blocks above where the forced steps began, at most (the steps'
    // pauses follow the machine's speed), where 10,000 more events were committed meanwhile.
    expect(most).toBeLessThanOrEqual(atForced! + 1_000);
    // In step: what was sealed since is about what the credit allows, not the whole backlog.
    const sealedSince = state.sealed - sealedAtForced;
    const committedSince = state.committed - committedAtForced;
    expect(sealedSince).toBeLessThanOrEqual(1.25 * committedSince + 2 * BLOCK);
    expect(backlog()).toBeGreaterThan(2 * BLOCK);
  });

  it('once the load stops, seals what is left', async () => {
    const { state, work } = fakeWork();
    compactor = new SqliteCompactor(work, { tailEvents: 0, idleMs: 30, maxDelayMs: 50 });
    const started = Date.now();
    while (Date.now() - started < 200) {
      commit(compactor, state, 100);
      await sleep(5);
    }
    await sleep(200);
    expect(state.committed - state.sealed).toBeLessThan(BLOCK);
  });
});
