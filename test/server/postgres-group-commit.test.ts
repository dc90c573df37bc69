/**
 * AsyncGroupCommit (src/server/postgres-group-commit.ts) over a fake asynchronous database whose
 * commits are released by the test. Names cite the module's invariants.
 */
import { describe, expect, it } from 'vitest';
import { AsyncGroupCommit, type Outcome } from '../../src/server/postgres-group-commit.ts';

/** A piece: a name, and whether its work fails (rolled back alone, as a savepoint would). */
interface Piece {
  name: string;
  fail?: boolean;
  weight?: number;
}

function fakeDatabase(options: { failCommit?: boolean } = {}) {
  /** The committed transactions, each the names it holds. */
  const commits: string[][] = [];
  /** The transactions started and not yet let commit. */
  const open: { names: string[]; release: () => void }[] = [];
  const commit = (pieces: readonly Piece[]): Promise<Outcome<string>[]> =>
    new Promise((resolve, reject) => {
      const names = pieces.filter((p) => !p.fail).map((p) => p.name);
      open.push({
        names,
        release: () => {
          if (options.failCommit) return reject(new Error('disk full'));
          commits.push(names);
          resolve(
            pieces.map((p) =>
              p.fail
                ? { ok: false, error: new Error(`${p.name} failed`) }
                : { ok: true, value: p.name },
            ),
          );
        },
      });
    });
  /** Lets the oldest open transaction commit. */
  const releaseNext = () => open.shift()?.release();
  return { commits, open, commit, releaseNext };
}

/** Waits until the group commit had its turn to start a group. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('AsyncGroupCommit', () => {
  it('invariants 1, 2, 4: pieces of one turn commit in one transaction; one failing is rejected alone', async () => {
    const db = fakeDatabase();
    const group = new AsyncGroupCommit<Piece, string>({ commit: db.commit });
    const seen: string[] = [];
    const settled = Promise.allSettled([
      group.run({ name: 'a' }, (r) => seen.push(`committed ${r}`)),
      group.run({ name: 'b', fail: true }, (r) => seen.push(`committed ${r}`)),
      group.run({ name: 'c' }, (r) => seen.push(`committed ${r}`)),
    ]);
    await turn();
    expect(db.open.map((t) => t.names)).toEqual([['a', 'c']]);
    db.releaseNext();
    const results = await settled;
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results[1]).toMatchObject({ reason: { message: 'b failed' } });
    expect(db.commits).toEqual([['a', 'c']]);
    expect(seen).toEqual(['committed a', 'committed c']);
  });

  it('invariant 1: nothing resolves before the commit', async () => {
    const db = fakeDatabase();
    const group = new AsyncGroupCommit<Piece, string>({ commit: db.commit });
    let resolved = false;
    const done = group.run({ name: 'a' }).then(() => {
      resolved = true;
    });
    await turn();
    await turn();
    expect(db.open).toHaveLength(1);
    expect(resolved).toBe(false);
    db.releaseNext();
    await done;
    expect(resolved).toBe(true);
  });

  it('invariant 4: every committed callback of a group runs before any of its pieces resolves', async () => {
    const db = fakeDatabase();
    const group = new AsyncGroupCommit<Piece, string>({ commit: db.commit });
    const order: string[] = [];
    const pieces = ['a', 'b', 'c'].map((name) =>
      group
        .run({ name }, () => order.push(`committed ${name}`))
        .then(() => order.push(`resolved ${name}`)),
    );
    await turn();
    db.releaseNext();
    await Promise.all(pieces);
    expect(order).toEqual([
      'committed a',
      'committed b',
      'committed c',
      'resolved a',
      'resolved b',
      'resolved c',
    ]);
  });

  it('invariant 5: pieces handed over while a group commits wait for it, then commit together', async () => {
    const db = fakeDatabase();
    const group = new AsyncGroupCommit<Piece, string>({ commit: db.commit });
    const first = group.run({ name: 'a' });
    await turn();
    const later = [group.run({ name: 'b' }), group.run({ name: 'c' })];
    await turn();
    // Still one transaction open: b and c wait for it.
    expect(db.open.map((t) => t.names)).toEqual([['a']]);
    db.releaseNext();
    await first;
    await turn();
    await turn();
    expect(db.open.map((t) => t.names)).toEqual([['b', 'c']]);
    db.releaseNext();
    expect(await Promise.all(later)).toEqual(['b', 'c']);
    expect(db.commits).toEqual([['a'], ['b', 'c']]);
  });

  it('invariant 5: a group takes pieces up to maxWeight, in order, and concurrency groups commit at once', async () => {
    const db = fakeDatabase();
    const group = new AsyncGroupCommit<Piece, string>({
      commit: db.commit,
      weight: (p) => p.weight ?? 1,
      maxWeight: 10,
      concurrency: 2,
    });
    const all = [
      group.run({ name: 'a', weight: 6 }),
      group.run({ name: 'b', weight: 4 }),
      group.run({ name: 'c', weight: 25 }), // over the limit alone: a group of its own
      group.run({ name: 'd', weight: 1 }),
    ];
    await turn();
    expect(db.open.map((t) => t.names)).toEqual([['a', 'b'], ['c']]);
    db.releaseNext();
    db.releaseNext();
    await turn();
    await turn();
    expect(db.open.map((t) => t.names)).toEqual([['d']]);
    db.releaseNext();
    expect(await Promise.all(all)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('invariant 3: a failed commit rejects every piece of its group with the mapped error', async () => {
    const db = fakeDatabase({ failCommit: true });
    const group = new AsyncGroupCommit<Piece, string>({
      commit: db.commit,
      failure: (e) => new Error(`STORAGE: ${String(e)}`),
    });
    const settled = Promise.allSettled([group.run({ name: 'a' }), group.run({ name: 'b' })]);
    await turn();
    db.releaseNext();
    for (const r of await settled) {
      expect(r).toMatchObject({
        status: 'rejected',
        reason: { message: 'STORAGE: Error: disk full' },
      });
    }
  });

  it('invariant 3: a commit reporting the wrong number of outcomes fails its group', async () => {
    const group = new AsyncGroupCommit<Piece, string>({ commit: async () => [] });
    await expect(group.run({ name: 'a' })).rejects.toThrow(/0 outcomes for 1 pieces/);
  });

  it('invariant 6: flush() starts what waits at once and resolves when all of it settled', async () => {
    const db = fakeDatabase();
    const group = new AsyncGroupCommit<Piece, string>({ commit: db.commit });
    const first = group.run({ name: 'a' });
    let flushed = false;
    const flushing = group.flush().then(() => {
      flushed = true;
    });
    // Started without waiting for a turn.
    expect(db.open.map((t) => t.names)).toEqual([['a']]);
    const second = group.run({ name: 'b' }); // waits for a's group
    db.releaseNext();
    await first;
    await turn();
    await turn();
    expect(db.open.map((t) => t.names)).toEqual([['b']]);
    expect(flushed).toBe(false);
    db.releaseNext();
    await flushing;
    expect(await second).toBe('b');
    expect(db.commits).toEqual([['a'], ['b']]);
    await group.flush(); // nothing waits: resolves at once
  });
});
