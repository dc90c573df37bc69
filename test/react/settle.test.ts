/** settle(): the snapshots the hooks hand to React (src/react/settle.ts invariants). */
import { describe, expect, it } from 'vitest';
import { settle } from '../../src/react/settle.ts';

describe('settle', () => {
  it('returns the held snapshot itself for a structurally equal value (1)', () => {
    const held = settle(undefined, { a: [1, { b: 'x' }], c: null });
    expect(settle(held, { a: [1, { b: 'x' }], c: null })).toBe(held);
    expect(settle(3, 3)).toBe(3);
    expect(settle(Number.NaN, Number.NaN)).toBeNaN();
  });

  it('keeps the references of unchanged parts of a changed value (2)', () => {
    const held = settle(undefined, { t1: { title: 'Milk' }, t2: { title: 'Bread' }, list: [1, 2] });
    const next = settle(held, { t1: { title: 'Milk' }, t2: { title: 'Rye' }, list: [1, 2] });
    expect(next).not.toBe(held);
    expect(next.t1).toBe(held.t1);
    expect(next.list).toBe(held.list);
    expect(next.t2).toEqual({ title: 'Rye' });
  });

  it('sees added, removed and reordered items as changes', () => {
    const held = settle(undefined, { a: 1, list: [1, 2] as number[] });
    expect(settle(held, { a: 1, list: [1, 2, 3] })).toEqual({ a: 1, list: [1, 2, 3] });
    expect(settle(held, { a: 1, list: [2, 1] })).not.toBe(held);
    expect(settle(held, { list: [1, 2] })).not.toBe(held);
    expect(settle({ a: 1 }, { a: 1, b: undefined })).toEqual({ a: 1, b: undefined });
  });

  it('never aliases the value it was given: a later mutation leaves the snapshot alone (3)', () => {
    const state: Record<string, { done: boolean }> = { t1: { done: false } };
    const snapshot = settle(undefined, state);
    state.t1!.done = true;
    state.t2 = { done: false };
    expect(snapshot).toEqual({ t1: { done: false } });
    const next = settle(snapshot, state);
    expect(next).not.toBe(snapshot);
    expect(next).toEqual({ t1: { done: true }, t2: { done: false } });
  });

  it('copies a __proto__ key as an own property, not as the prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    const snapshot = settle(undefined, value);
    expect(Object.getPrototypeOf(snapshot)).toBe(Object.prototype);
    expect(Object.hasOwn(snapshot, '__proto__')).toBe(true);
    expect((snapshot as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('clones other objects, never equal, and passes functions as they are (3)', () => {
    const when = new Date(0);
    const snapshot = settle(undefined, { when });
    expect(snapshot.when).not.toBe(when);
    expect(snapshot.when).toEqual(when);
    expect(settle(snapshot, { when })).not.toBe(snapshot);
    const fn = () => 1;
    expect(settle(undefined, { fn }).fn).toBe(fn);
  });
});
