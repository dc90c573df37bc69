/**
 * Tree signatures (core/sign-trees.ts, core/integrity.ts invariant 9), without I/O: one Ed25519
 * signature for up to 16 events, each event still proven alone, so that an event altered on a
 * server is refused alone and every honest one beside it still verifies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { type ChainLookup, signEvents, verifyBatch } from '../../src/core/integrity.ts';
import {
  parseTree,
  pathLength,
  rootFromPath,
  TREE_LEAVES,
  treeOfLeaves,
  treeText,
  wholeTrees,
} from '../../src/core/sign-trees.ts';
import { storedEvent } from '../fixtures/events.ts';
import { T0 } from './fixtures.ts';
import { signingIdentity } from './signing-identity.ts';

const nothingHeld: ChainLookup = {
  eventAt: async () => undefined,
  keyOf: async () => undefined,
};
/** A receiver that learned the replica's key from its first event, and holds nothing else. */
function knowing(run: readonly StoredEventRecord[]): ChainLookup {
  return { ...nothingHeld, keyOf: async () => String(run[0]!.meta?.$key) };
}
const strict = { requireSignatures: true };

async function signed(n: number) {
  const id = await signingIdentity();
  const events = Array.from({ length: n }, (_, i) =>
    storedEvent({
      replica: id.replicaId,
      seq: i + 1,
      wall: T0,
      counter: i,
      data: { title: `item ${i}` },
    }),
  );
  return (await signEvents(events, id, undefined)).signed;
}

function altered(e: StoredEventRecord): StoredEventRecord {
  return { ...e, data: { title: 'altered' } };
}

/** The `$tree` of an event with its path left out, as an implied batch carries it. */
function implied(e: StoredEventRecord): StoredEventRecord {
  return { ...e, meta: { ...e.meta, $tree: String(e.meta?.$tree).slice(0, 2) } };
}

const leaf = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .map((b) => Buffer.from(b).toString('base64url'));

describe('trees (sign-trees.ts)', () => {
  it('leads every leaf to the root by its own path, of at most 4 hashes; another leaf does not', () => {
    fc.assert(
      fc.property(
        fc.array(leaf, { minLength: 2, maxLength: TREE_LEAVES }),
        leaf,
        (leaves, other) => {
          const { root, paths } = treeOfLeaves(leaves);
          leaves.forEach((value, index) => {
            const place = { index, count: leaves.length, path: paths[index]! };
            expect(paths[index]!.length).toBe(pathLength(place));
            expect(paths[index]!.length).toBeLessThanOrEqual(4);
            expect(rootFromPath(value, place)).toBe(root);
            if (other !== value) expect(rootFromPath(other, place)).not.toBe(root);
            const text = treeText(place);
            expect(parseTree(text)).toEqual(place);
            expect(parseTree(text.slice(0, 2))).toEqual({ index, count: leaves.length });
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads back no malformed place: a bad digit, an index past the count, a path of the wrong length', () => {
    for (const text of [
      undefined,
      5,
      '',
      '0',
      '0g',
      'g1',
      '20',
      '21',
      '01AAAA',
      `01${'*'.repeat(22)}`,
    ]) {
      expect(parseTree(text)).toBeUndefined();
    }
    expect(parseTree(`01${'A'.repeat(22)}`)).toEqual({
      index: 0,
      count: 2,
      path: ['A'.repeat(22)],
    });
  });
});

describe('wholeTrees (sign-trees.ts invariant 5)', () => {
  it('finds a tree whole exactly when it holds every index once, whatever the order', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            count: fc.integer({ min: 2, max: TREE_LEAVES }),
            // Leaves taken out, or held twice, by index (out of range: none).
            drop: fc.integer({ min: 0, max: 2 * TREE_LEAVES }),
            twice: fc.integer({ min: 0, max: 2 * TREE_LEAVES }),
          }),
          { maxLength: 4 },
        ),
        fc.integer(),
        (trees, seed) => {
          const leaves = trees.flatMap(({ count, drop, twice }, t) => {
            const indexes = Array.from({ length: count }, (_, i) => i).filter((i) => i !== drop);
            if (twice < count && twice !== drop) indexes.push(twice);
            return indexes.map((index) => ({ item: `${t}.${index}`, tree: `t${t}`, index, count }));
          });
          // Any order (a batch interleaves replicas): a seeded shuffle.
          let state = seed;
          for (let i = leaves.length - 1; i > 0; i--) {
            state = (state * 1103515245 + 12345) | 0;
            const j = Math.abs(state) % (i + 1);
            [leaves[i], leaves[j]] = [leaves[j]!, leaves[i]!];
          }
          const { whole, broken } = wholeTrees(leaves);
          const expected = trees.flatMap(({ count, drop, twice }, t) =>
            drop < count || (twice < count && twice !== drop)
              ? []
              : [Array.from({ length: count }, (_, i) => `${t}.${i}`)],
          );
          // Trees come in the order their first leaf does.
          const first = (tree: string[]) => tree[0]!;
          expect(whole.sort((a, b) => first(a).localeCompare(first(b)))).toEqual(expected);
          expect(broken === undefined).toBe(expected.length === trees.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('signing in trees (integrity.ts invariant 9)', () => {
  it('signs 40 events with 3 signatures (16, 16, 8), and each event verifies alone', async () => {
    const run = await signed(40);
    expect(new Set(run.map((e) => e.meta?.$sig)).size).toBe(3);
    expect(run.map((e) => parseTree(e.meta?.$tree)?.count)).toEqual([
      ...Array(32).fill(16),
      ...Array(8).fill(8),
    ]);
    // Key order as the wire's columns take it: `$tree`, then `$key` or `$link`, then `$sig`.
    expect(Object.keys(run[0]!.meta!)).toEqual(['$tree', '$key', '$sig']);
    expect(Object.keys(run[1]!.meta!)).toEqual(['$tree', '$link', '$sig']);
    for (const e of run) expect((await verifyBatch([e], knowing(run), strict)).ok).toBe(true);
    // A lone event keeps a signature of its own digest, as before trees.
    const [one] = await signed(1);
    expect(one!.meta?.$tree).toBeUndefined();
    expect((await verifyBatch([one!], nothingHeld, strict)).ok).toBe(true);
  });

  it('refuses an altered event alone: every other event of its tree still verifies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 39 }), async (bad) => {
        const run = await signed(40);
        const held = run.map((e, i) => (i === bad ? altered(e) : e));
        for (let i = 0; i < held.length; i++) {
          const verdict = await verifyBatch([held[i]!], knowing(run), strict);
          expect(verdict.ok).toBe(i !== bad);
        }
        const verdict = await verifyBatch(held, nothingHeld, strict);
        expect(verdict).toMatchObject({ ok: false, tampering: { reason: 'bad-signature' } });
        if (!verdict.ok) expect(verdict.tampering.event.seq).toBe(bad + 1);
      }),
      { numRuns: 12 },
    );
  });

  it('refuses a path moved to another event of its tree, or a signature of another tree', async () => {
    const run = await signed(32);
    const moved = { ...run[3]!, meta: { ...run[3]!.meta, $tree: run[4]!.meta!.$tree! } };
    expect(await verifyBatch([moved], nothingHeld, strict)).toMatchObject({ ok: false });
    const other = { ...run[3]!, meta: { ...run[3]!.meta, $sig: run[20]!.meta!.$sig! } };
    expect(await verifyBatch([other], nothingHeld, strict)).toMatchObject({ ok: false });
    const broken = { ...run[3]!, meta: { ...run[3]!.meta, $tree: 'zz' } };
    expect(await verifyBatch([broken], nothingHeld, strict)).toMatchObject({
      ok: false,
      tampering: { reason: 'malformed' },
    });
  });
});

describe('implied paths (sign-trees.ts invariant 5)', () => {
  it('rebuilds every path of a whole tree from its leaves, and the batch held is as signed', async () => {
    const run = await signed(20);
    const sent = run.map(implied);
    const verdict = await verifyBatch(sent, nothingHeld, { ...strict, impliedTrees: true });
    expect(verdict.ok).toBe(true);
    expect(sent).toEqual(run);
  });

  it('refuses implied paths where the batch may not imply them, or a tree not whole in it', async () => {
    const run = await signed(16);
    const sent = run.map(implied);
    expect(await verifyBatch(sent, nothingHeld, strict)).toMatchObject({
      ok: false,
      tampering: { reason: 'malformed' },
    });
    const allowed = { ...strict, impliedTrees: true };
    for (const batch of [sent.slice(1), [...sent, sent[3]!]]) {
      expect(await verifyBatch(batch, nothingHeld, allowed)).toMatchObject({
        ok: false,
        tampering: { reason: 'malformed' },
      });
    }
  });

  it('fails an implied tree with an altered leaf (the batch is then unproven, and comes again whole)', async () => {
    const run = await signed(16);
    const sent = run.map((e, i) => implied(i === 6 ? altered(e) : e));
    const verdict = await verifyBatch(sent, nothingHeld, { ...strict, impliedTrees: true });
    expect(verdict.ok).toBe(false);
  });
});
