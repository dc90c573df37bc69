/**
 * Three replicas edit one Y.Text offline in random interleavings, exchange their logs in random
 * partial syncs, then sync in a random order: every replica holds the same text, and so does a
 * fresh binding on each store (bind.ts invariants 1-5, events.ts invariants 1-3 with snapshots
 * every few updates). Seeded: fast-check prints the seed and the shrunk case on failure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { bindYDoc, docAt, type YDocBinding } from '../../src/yjs/index.ts';
import { openReplica, pull, type Replica } from './helpers.ts';

const STREAM = 'doc';
const SEED = 20_260_601;

type Op =
  | { kind: 'insert'; r: number; at: number; text: string; flush: boolean }
  | { kind: 'delete'; r: number; at: number; length: number; flush: boolean }
  | { kind: 'pull'; to: number; from: number }
  | { kind: 'flush'; r: number };

const replicaIndex = fc.integer({ min: 0, max: 2 });
/** Mostly one event per edit; otherwise the edit merges with the next ones (bind.ts inv. 2). */
const appendNow = fc.integer({ min: 0, max: 9 }).map((n) => n < 7);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      r: replicaIndex,
      at: fc.nat(),
      text: fc.string({ minLength: 1, maxLength: 4 }),
      flush: appendNow,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      r: replicaIndex,
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 3 }),
      flush: appendNow,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('pull' as const),
      to: replicaIndex,
      from: replicaIndex,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const), r: replicaIndex }) },
);
const pairs: [number, number][] = [
  [0, 1],
  [0, 2],
  [1, 0],
  [1, 2],
  [2, 0],
  [2, 1],
];

async function run(ops: Op[], finalOrder: [number, number][]): Promise<void> {
  const replicas: Replica[] = [];
  const bindings: YDocBinding[] = [];
  for (let i = 0; i < 3; i++) {
    const replica = await openReplica(`r${i}`);
    const doc = new Y.Doc();
    doc.clientID = i + 1; // deterministic runs; fresh stores, so ids are never reused
    const binding = bindYDoc(replica.store, STREAM, { doc, snapshotEvery: 4 });
    replicas.push(replica);
    bindings.push(binding);
  }
  try {
    await Promise.all(bindings.map((b) => b.ready));
    for (const o of ops) {
      switch (o.kind) {
        case 'insert': {
          const text = bindings[o.r]!.doc.getText('t');
          text.insert(o.at % (text.length + 1), o.text);
          if (o.flush) await bindings[o.r]!.flush();
          break;
        }
        case 'delete': {
          const text = bindings[o.r]!.doc.getText('t');
          if (text.length > 0) {
            const at = o.at % text.length;
            text.delete(at, Math.min(o.length, text.length - at));
          }
          if (o.flush) await bindings[o.r]!.flush();
          break;
        }
        case 'pull':
          // Unflushed edits stay behind: a partial sync, as when the network drops mid-session.
          if (o.to !== o.from) await pull(replicas[o.to]!, replicas[o.from]!);
          break;
        case 'flush':
          await bindings[o.r]!.flush();
          break;
        default: {
          const never: never = o;
          throw new Error(`unknown op ${JSON.stringify(never)}`);
        }
      }
    }
    await Promise.all(bindings.map((b) => b.flush()));
    // Any order of all six directed pulls delivers every event everywhere: nothing new is
    // created meanwhile (snapshots follow local updates only).
    for (const [to, from] of finalOrder) await pull(replicas[to]!, replicas[from]!);
    await Promise.all(bindings.map((b) => b.flush()));

    const texts = bindings.map((b) => b.doc.getText('t').toString());
    expect(texts[1]).toBe(texts[0]);
    expect(texts[2]).toBe(texts[0]);
    for (const replica of replicas) {
      const fresh = bindYDoc(replica.store, STREAM);
      await fresh.ready;
      expect(fresh.doc.getText('t').toString()).toBe(texts[0]);
      fresh.destroy();
      const now = await docAt(replica.store, STREAM, Date.now() + 86_400_000);
      expect(now.getText('t').toString()).toBe(texts[0]);
    }
  } finally {
    for (const b of bindings) b.destroy();
    for (const r of replicas) await r.store.close();
  }
}

describe('Yjs convergence across replicas', () => {
  it('three replicas editing one text offline hold the same text after syncing in any order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.shuffledSubarray(pairs, { minLength: 6, maxLength: 6 }),
        run,
      ),
      { seed: SEED, numRuns: 120 },
    );
  });
});
