import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReceivedSpans } from '../../src/core/received-spans.ts';

/** The same positions as one map entry each: the model the spans must agree with. */
function modelRun(
  model: ReadonlyMap<number, string>,
  from: number,
  maxEvents: number,
): { to: number; toId: string } | undefined {
  let to = from;
  while (to - from < maxEvents && model.has(to + 1)) to += 1;
  return to === from ? undefined : { to, toId: model.get(to)! };
}

type Step = { kind: 'add'; gap: number; count: number } | { kind: 'drop'; ahead: number };

describe('ReceivedSpans', () => {
  it('finds runs across adjacent spans, up to maxEvents, and forgets what was dropped', () => {
    const spans = new ReceivedSpans();
    for (const pos of [3, 4, 5, 6, 8]) spans.add(pos, `id-${pos}`);
    expect(spans.runAfter(2, 100)).toEqual({ to: 6, toId: 'id-6' });
    expect(spans.runAfter(2, 2)).toEqual({ to: 4, toId: 'id-4' });
    expect(spans.runAfter(6, 100)).toBeUndefined();
    expect(spans.runAfter(7, 100)).toEqual({ to: 8, toId: 'id-8' });
    spans.dropThrough(4);
    expect(spans.has(4)).toBe(false);
    expect(spans.has(5)).toBe(true);
    expect(spans.runAfter(4, 100)).toEqual({ to: 6, toId: 'id-6' });
    spans.dropThrough(8);
    expect(spans.has(8)).toBe(false);
    spans.add(9, 'id-9');
    expect(spans.runAfter(8, 100)).toEqual({ to: 9, toId: 'id-9' });
  });

  it('ignores a position not after the last one marked (invariant 2)', () => {
    const spans = new ReceivedSpans();
    spans.add(5, 'e');
    spans.add(5, 'again');
    spans.add(2, 'b');
    expect(spans.has(2)).toBe(false);
    expect(spans.runAfter(4, 10)).toEqual({ to: 5, toId: 'e' });
  });

  it('agrees with a map of every position over any marking and dropping (property)', () => {
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        gap: fc.integer({ min: 0, max: 3 }),
        count: fc.integer({ min: 1, max: 6 }),
      }),
      fc.record({ kind: fc.constant('drop' as const), ahead: fc.integer({ min: 0, max: 8 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        (steps, maxEvents) => {
          const spans = new ReceivedSpans();
          const model = new Map<number, string>();
          let next = 1;
          let dropped = 0;
          for (const s of steps) {
            if (s.kind === 'add') {
              next += s.gap;
              for (let i = 0; i < s.count; i++, next++) {
                spans.add(next, `id-${next}`);
                model.set(next, `id-${next}`);
              }
            } else {
              dropped = Math.max(dropped, Math.min(next, dropped + s.ahead));
              spans.dropThrough(dropped);
              for (const pos of model.keys()) if (pos <= dropped) model.delete(pos);
            }
            for (let pos = 0; pos <= next + 1; pos++) {
              expect(spans.has(pos)).toBe(model.has(pos));
              expect(spans.runAfter(pos, maxEvents)).toEqual(modelRun(model, pos, maxEvents));
            }
          }
        },
      ),
    );
  });
});
