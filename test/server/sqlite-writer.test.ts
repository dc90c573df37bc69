import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors.ts';
import { SCHEMA } from '../../src/server/sqlite-schema.ts';
import { SqliteWriter } from '../../src/server/sqlite-writer.ts';
import type { WriteOutcome, WritePiece } from '../../src/server/sqlite-writes.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chronicle-writer-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const failure = (operation: string, message: string) =>
  new StorageError('STORAGE', `${operation}: ${message}`);

const checkpoint = (peer: string): WritePiece => ({
  kind: 'checkpoint',
  space: 's',
  peer,
  checkpoint: '{}',
});

/** An event-loop runner that records its groups; `fail` names peers whose piece fails. */
function recordingRunner(options: { fail?: string[]; gate?: Promise<void> } = {}) {
  const groups: string[][] = [];
  const run = async (pieces: WritePiece[]): Promise<WriteOutcome[]> => {
    groups.push(pieces.map((p) => (p.kind === 'checkpoint' ? p.peer : p.kind)));
    await options.gate;
    return pieces.map(
      (p): WriteOutcome =>
        p.kind === 'checkpoint' && options.fail?.includes(p.peer)
          ? { ok: false, message: 'refused', code: undefined }
          : { ok: true, result: { kind: 'checkpoint' } },
    );
  };
  return { groups, run };
}

describe('SqliteWriter on the event loop', () => {
  it('groups what is handed over in one turn, and what waits while a group runs (invariant 1)', async () => {
    let open!: () => void;
    const runner = recordingRunner({ gate: new Promise<void>((resolve) => (open = resolve)) });
    const writer = new SqliteWriter(runner.run, undefined, failure);
    const first = [writer.run(checkpoint('a')), writer.run(checkpoint('b'))];
    await new Promise((resolve) => setImmediate(resolve));
    // The first group runs (held by the gate); these two wait for it, together.
    const second = [writer.run(checkpoint('c')), writer.run(checkpoint('d'))];
    await new Promise((resolve) => setImmediate(resolve));
    expect(runner.groups).toEqual([['a', 'b']]);
    open();
    await Promise.all([...first, ...second]);
    expect(runner.groups).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('runs every committed hook before any piece resolves, and fails a piece alone (invariants 2, 3)', async () => {
    const runner = recordingRunner({ fail: ['b'] });
    const writer = new SqliteWriter(runner.run, undefined, failure);
    const seen: string[] = [];
    const pieces = ['a', 'b', 'c'].map((peer) =>
      writer
        .run(checkpoint(peer), () => seen.push(`committed ${peer}`))
        .then(
          () => seen.push(`resolved ${peer}`),
          (error: unknown) => seen.push(`rejected ${peer}: ${(error as StorageError).code}`),
        ),
    );
    await Promise.all(pieces);
    expect(seen).toEqual([
      'committed a',
      'committed c',
      'resolved a',
      'rejected b: STORAGE',
      'resolved c',
    ]);
  });

  it('drains what was handed over before close() (invariant 5)', async () => {
    const runner = recordingRunner();
    const writer = new SqliteWriter(runner.run, undefined, failure);
    let done = false;
    void writer.run(checkpoint('a')).then(() => {
      done = true;
    });
    await writer.close();
    expect(done).toBe(true);
  });
});

describe('SqliteWriter with a writer thread', () => {
  function database(): string {
    const path = join(dir, 'db.sqlite');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
    db.close();
    return path;
  }

  it('writes on its thread, through its own connection', async () => {
    const path = database();
    const runner = recordingRunner();
    const writer = new SqliteWriter(runner.run, { path }, failure);
    expect(writer.where).toBe('thread');
    const space = await writer.run({ kind: 'space', space: 's', replica: 'r1', epoch: 'e1' });
    expect(space).toEqual({ kind: 'space', replica: 'r1', epoch: 'e1' });
    const rows = ['id-1', 'replica', 1, 'stream', 'cursor-1', 'body-1'];
    const ingest = await writer.run({ kind: 'ingest', space: 's', rows });
    expect(ingest).toEqual({ kind: 'ingest', first: 1, written: null });
    // Held already: written again with the lookup, and nothing new is written.
    const again = await writer.run({ kind: 'ingest', space: 's', rows });
    expect(again).toEqual({ kind: 'ingest', first: 2, written: [] });
    await writer.close();
    expect(runner.groups).toEqual([]);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT pos, id FROM events').all()).toEqual([{ pos: 1, id: 'id-1' }]);
    db.close();
  });

  it('writes on the event loop when its thread cannot start (invariant 4)', async () => {
    const runner = recordingRunner();
    const writer = new SqliteWriter(runner.run, { path: join(dir, 'missing.sqlite') }, failure);
    await writer.run(checkpoint('a'));
    expect(writer.where).toBe('event loop');
    expect(runner.groups).toEqual([['a']]);
    await writer.close();
  });

  it('rejects the group its thread died with, then writes on the event loop (invariant 4)', async () => {
    const runner = recordingRunner();
    const entry = new URL('./fixtures/dying-writer-thread.ts', import.meta.url);
    const writer = new SqliteWriter(runner.run, { path: database(), entry }, failure);
    await expect(writer.run(checkpoint('lost'))).rejects.toMatchObject({ code: 'STORAGE' });
    await writer.run(checkpoint('next'));
    expect(writer.where).toBe('event loop');
    expect(runner.groups).toEqual([['next']]);
    await writer.close();
  });
});
