/** core/snapshot-plan.ts: set keys, wanted versions, heads and the choice of a fold's base. */
import { describe, expect, it } from 'vitest';
import {
  answersWanted,
  chooseBase,
  emptyHeads,
  headsToJson,
  noteEvent,
  projectionSetKey,
} from '../../src/core/snapshot-plan.ts';

describe('snapshot plan', () => {
  it('names a projection set whatever its order (invariant 1)', () => {
    const a = projectionSetKey([
      { name: 'b', version: 2 },
      { name: 'a', version: 1 },
    ]);
    expect(
      projectionSetKey([
        { name: 'a', version: 1 },
        { name: 'b', version: 2 },
      ]),
    ).toBe(a);
    expect(projectionSetKey([{ name: 'a', version: 1 }])).not.toBe(a);
  });

  it('answers wanted versions exactly, extra projections aside (invariant 2)', () => {
    const stored = [
      { name: 'a', version: 1 },
      { name: 'b', version: 3 },
    ];
    expect(answersWanted(stored, [{ name: 'a', version: 1 }])).toBe(true);
    expect(answersWanted(stored, [{ name: 'a', version: 2 }])).toBe(false);
    expect(answersWanted(stored, [{ name: 'c', version: 1 }])).toBe(false);
  });

  it('keeps the largest version and seq, and flags a version written again (invariant 3)', () => {
    const heads = emptyHeads();
    noteEvent(heads, { stream: 's', version: 1, replica: 'a', seq: 1 });
    noteEvent(heads, { stream: 's', version: 2, replica: 'a', seq: 2 });
    noteEvent(heads, { stream: 't', version: 1, replica: 'b', seq: 1 });
    expect(headsToJson(heads).streams.every((s) => !s.conflict)).toBe(true);
    noteEvent(heads, { stream: 's', version: 2, replica: 'b', seq: 2 });
    expect(headsToJson(heads)).toEqual({
      streams: [
        { stream: 's', version: 2, conflict: true },
        { stream: 't', version: 1, conflict: false },
      ],
      vector: { a: 2, b: 2 },
    });
  });

  it('starts from the newest snapshot nothing sorts below, else the older, else initial (invariant 4)', () => {
    const newest = { pos: 20, cursor: 'm' };
    const older = { pos: 10, cursor: 'f' };
    expect(chooseBase(newest, older, undefined)).toBe(newest);
    expect(chooseBase(newest, older, 'n')).toBe(newest);
    expect(chooseBase(newest, older, 'g')).toBe(older);
    expect(chooseBase(newest, older, 'a')).toBeUndefined();
    expect(chooseBase(newest, undefined, 'g')).toBeUndefined();
    expect(chooseBase(undefined, undefined, undefined)).toBeUndefined();
  });
});
