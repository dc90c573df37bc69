/**
 * The meta fields of signing and sealing as columns of a wire batch (sync/meta-columns.ts,
 * protocol 4): lossless, key order included, whatever mix of signed and unsigned, chained and
 * strict, sealed and clear events, near and far links, and app meta a batch holds; a malformed
 * column is refused naming the event.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { verifyBatch } from '../../src/core/integrity.ts';
import { decodeEventBatch, encodeEventBatch, wireSize } from '../../src/sync/event-codec.ts';
import { parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import { storedEvent } from '../fixtures/events.ts';
import { arbStep, batchOf, plainStep, signedRun } from './meta-batches.ts';

const roundTrip = (events: StoredEventRecord[]) =>
  decodeEventBatch(JSON.parse(encodeEventBatch(events)));

describe('meta columns (meta-columns.ts invariant 1): lossless, key order included', () => {
  it('gives back every event of a random mix, each meta with its keys in their order', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 25 }), (steps) => {
        const events = batchOf(steps);
        const back = roundTrip(events);
        expect(back).toEqual(events);
        for (let i = 0; i < events.length; i++) {
          expect(JSON.stringify(back[i]!.meta)).toBe(JSON.stringify(events[i]!.meta));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('wireSize never underestimates an event that carries these fields (planBatches relies on it)', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 25 }), (steps) => {
        const events = batchOf(steps);
        const text = encodeEventBatch(events);
        const estimate = events.reduce((n, e) => n + wireSize(e, JSON.stringify(e.data)), 0);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(estimate + 128);
      }),
      { numRuns: 300 },
    );
    // The most column names one event can bring, with the longest run row.
    const event = storedEvent({
      ...{ replica: 'r', seq: 2 ** 52, version: 2 ** 52, wall: 2 ** 40, counter: 3000 },
      ...{ id: 'custom', data: 1, stream: 's', type: 't', schema: 5 },
      meta: { $sealed: 'k', $key: 'K', $link: 'x', $sig: 'A'.repeat(86) },
    });
    const text = encodeEventBatch([event]);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(wireSize(event, '1') + 128);
  });

  it('sends a signed, chained, sealed batch without a meta object per event', async () => {
    const events = await signedRun(5, 'kidAAAAAAAAA');
    const text = encodeEventBatch(events);
    const wire = JSON.parse(text) as Record<string, unknown>;
    expect(wire.meta).toBeUndefined();
    expect(text).not.toContain('$sig');
    expect(text).not.toContain('$link');
    // The first event carries its key; the other four link to the one before: hashes only.
    expect(wire.shape).toBe('pjjjj');
    expect(wire.links).toHaveLength(4 * 22);
    expect(wire.kids).toEqual(['kidAAAAAAAAA']);
    const back = decodeEventBatch(wire);
    expect(back).toEqual(events);
    const verdict = await verifyBatch(
      back,
      { eventAt: async () => undefined, keyOf: async () => undefined },
      { requireSignatures: true },
    );
    expect(verdict.ok).toBe(true);
  });

  it('leaves a batch without these fields as protocol 3 wrote it (invariant 4)', () => {
    const events = batchOf([
      { ...plainStep(), app: { note: 'x' } },
      { ...plainStep(), app: { $sig: 5, $link: 'here' } },
    ]);
    const wire = JSON.parse(encodeEventBatch(events)) as Record<string, unknown>;
    expect(wire.shape).toBeUndefined();
    expect(wire.meta).toEqual([
      [0, { note: 'x' }],
      [1, { $sig: 5, $link: 'here' }],
    ]);
  });

  it('keeps an own __proto__ key of app meta as data beside the columns', () => {
    const events = batchOf([{ ...plainStep(), signed: true, link: 'key', sig: 'A'.repeat(86) }]);
    const text = encodeEventBatch(events).replace(
      '"meta":[[0,{"a":1}]]',
      '"meta":[[0,{"__proto__":{"isAdmin":true}}]]',
    );
    const back = decodeEventBatch(JSON.parse(text));
    expect(Object.hasOwn(back[0]!.meta!, '__proto__')).toBe(true);
    expect(Object.keys(back[0]!.meta!)).toEqual(['__proto__', '$key', '$sig']);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});

describe('meta columns (invariant 3): a malformed column is refused', () => {
  const parse = (events: StoredEventRecord[], change: (wire: Record<string, unknown>) => void) => {
    const wire = JSON.parse(encodeEventBatch(events)) as Record<string, unknown>;
    change(wire);
    const message = { type: 'events', from: 0, to: events.length, toId: events.at(-1)!.id };
    return parseMessage(JSON.stringify({ ...message, events: wire }), DEFAULT_SYNC_LIMITS);
  };
  const edit = (text: string, at: number, by: string) =>
    text.slice(0, at) + by + text.slice(at + by.length);

  it.each<[string, number, string, (w: Record<string, unknown>) => void]>([
    [
      'a signature cut short',
      2,
      '$sig',
      (w) => {
        w.sigs = (w.sigs as string).slice(0, -1);
      },
    ],
    [
      'a signature out of the alphabet',
      1,
      '$sig',
      (w) => {
        w.sigs = edit(w.sigs as string, 86 + 40, '+');
      },
    ],
    [
      'a link hash out of the alphabet',
      2,
      '$link',
      (w) => {
        w.links = edit(w.links as string, 22 + 3, '.');
      },
    ],
    [
      'a shape digit out of range',
      1,
      'meta',
      (w) => {
        w.shape = edit(w.shape as string, 1, 'w');
      },
    ],
    [
      'a near and a far link at once',
      2,
      'meta',
      (w) => {
        w.shape = edit(w.shape as string, 2, 'v');
      },
    ],
    [
      'a near link with nothing before it',
      0,
      '$link',
      (w) => {
        w.shape = edit(w.shape as string, 0, 'j');
      },
    ],
    [
      'a key id index out of its table',
      1,
      '$sealed',
      (w) => {
        w.kidOf = edit(w.kidOf as string, 1, '1');
      },
    ],
    [
      'a key index missing',
      0,
      '$key',
      (w) => {
        w.keyOf = '';
      },
    ],
    [
      'a far link that is not a string',
      0,
      '$link',
      (w) => {
        w.shape = edit(w.shape as string, 0, 'l');
        w.linkTexts = [5];
        w.keyOf = '';
        w.keyTexts = [];
      },
    ],
    [
      'a field both in a column and in meta',
      1,
      'meta',
      (w) => {
        w.meta = [[1, { $sig: 'A'.repeat(86) }]];
      },
    ],
  ])('%s → VALIDATION naming event %i (%s)', async (_name, index, field, change) => {
    const events = await signedRun(3, 'kidAAAAAAAAA');
    const result = parse(events, change);
    expect(result).toMatchObject({ ok: false, code: 'VALIDATION', eventId: events[index]!.id });
    if (!result.ok) expect(result.message).toContain(`events[${index}].meta`);
    if (!result.ok && field !== 'meta') expect(result.message).toContain(field);
  });

  it.each<[string, (w: Record<string, unknown>) => void]>([
    [
      'a signature more than its events',
      (w) => {
        w.sigs = `${w.sigs as string}${'A'.repeat(86)}`;
      },
    ],
    [
      'a link hash more than its events',
      (w) => {
        w.links = `${w.links as string}${'A'.repeat(22)}`;
      },
    ],
    [
      'a key id index more than its events',
      (w) => {
        w.kidOf = `${w.kidOf as string}0`;
      },
    ],
    [
      'a shape of the wrong length',
      (w) => {
        w.shape = `${w.shape as string}0`;
      },
    ],
    [
      'sigs that is not a string',
      (w) => {
        w.sigs = ['A'.repeat(86)];
      },
    ],
    [
      'a column without shape',
      (w) => {
        delete w.shape;
      },
    ],
    [
      'a key id that is not a string',
      (w) => {
        w.kids = [7];
      },
    ],
  ])('%s → PROTOCOL', async (_name, change) => {
    const events = await signedRun(3, 'kidAAAAAAAAA');
    expect(parse(events, change)).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });
});
