/** GroupCommit (src/server/group-commit.ts) over a fake transaction that records what it ran. */
import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/server/group-commit.ts';

function fakeDatabase(options: { failCommit?: boolean } = {}) {
  const commits: string[][] = [];
  let open: string[] | undefined;
  const transaction = (run: () => void) => {
    open = [];
    run();
    if (options.failCommit) {
      open = undefined;
      throw new Error('disk full');
    }
    commits.push(open);
    open = undefined;
  };
  /** A piece of work: writes `name` into the open transaction (a savepoint: undone if it throws). */
  const write =
    (name: string, fail = false) =>
    () => {
      if (open === undefined) throw new Error('no transaction');
      if (fail) throw new Error(`${name} failed`);
      open.push(name);
      return name;
    };
  return { commits, transaction, write };
}

describe('GroupCommit', () => {
  it('invariants 1, 2: pieces of one turn commit in one transaction; one that throws fails alone', async () => {
    const db = fakeDatabase();
    const group = new GroupCommit(db.transaction);
    const seen: string[] = [];
    const results = await Promise.allSettled([
      group.run(db.write('a'), (r) => seen.push(`committed ${r}`)),
      group.run(db.write('b', true)),
      group.run(db.write('c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(db.commits).toEqual([['a', 'c']]);
    expect(seen).toEqual(['committed a']);
    await group.run(db.write('d'));
    expect(db.commits).toEqual([['a', 'c'], ['d']]);
  });

  it('invariant 1: nothing resolves before the commit', async () => {
    const db = fakeDatabase();
    const group = new GroupCommit(db.transaction);
    let resolved = false;
    const done = group.run(db.write('a')).then(() => {
      resolved = true;
    });
    await Promise.resolve();
    expect(resolved).toBe(false);
    expect(db.commits).toEqual([]);
    await done;
    expect(db.commits).toEqual([['a']]);
  });

  it('invariant 3: a failed commit rejects every piece of its group with the mapped error', async () => {
    const db = fakeDatabase({ failCommit: true });
    const group = new GroupCommit(db.transaction, (e) => new Error(`STORAGE: ${String(e)}`));
    const results = await Promise.allSettled([group.run(db.write('a')), group.run(db.write('b'))]);
    for (const r of results) {
      expect(r).toMatchObject({
        status: 'rejected',
        reason: { message: 'STORAGE: Error: disk full' },
      });
    }
  });

  it('invariant 5: flush() commits what waits at once', async () => {
    const db = fakeDatabase();
    const group = new GroupCommit(db.transaction);
    const pending = group.run(db.write('a'));
    group.flush();
    expect(db.commits).toEqual([['a']]);
    expect(await pending).toBe('a');
    group.flush();
    expect(db.commits).toHaveLength(1);
  });
});
