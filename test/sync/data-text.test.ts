/** The data texts a server storage remembers for forwarding (event-codec.ts invariant 4). */
import { describe, expect, it } from 'vitest';
import { dataTextOf, encodeEventBatch, rememberDataText } from '../../src/sync/event-codec.ts';
import { storedEvent } from '../fixtures/events.ts';

const base = { replica: 'replicaaaaaaaaaa', seq: 1, wall: 1_700_000_000_000 };

describe('remembered data texts', () => {
  it('are used instead of stringifying, and are invisible to JSON, keys, spreads and equality', () => {
    const event = storedEvent({ ...base, data: { a: 1 } });
    const copy = storedEvent({ ...base, data: { a: 1 } });
    expect(dataTextOf(event)).toBe('{"a":1}');
    // A text that differs from JSON.stringify's shows that the remembered one is used.
    rememberDataText(event, '{ "a": 1 }');
    expect(dataTextOf(event)).toBe('{ "a": 1 }');
    expect(encodeEventBatch([event])).toContain('{ "a": 1 }');
    expect(JSON.stringify(event)).toBe(JSON.stringify(copy));
    expect(Object.keys(event)).toEqual(Object.keys(copy));
    expect({ ...event }).toEqual(copy);
    expect(event).toEqual(copy);
    expect(structuredClone(event)).toEqual(copy);
  });

  it('are kept for frozen events too', () => {
    const event = Object.freeze(storedEvent({ ...base, data: [1, 2] }));
    rememberDataText(event, '[1,2] ');
    expect(dataTextOf(event)).toBe('[1,2] ');
    expect(dataTextOf(storedEvent({ ...base, data: [1, 2] }))).toBe('[1,2]');
  });
});
