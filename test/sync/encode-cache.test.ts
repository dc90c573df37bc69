/** One batch sent to many peers is encoded once (event-codec.ts invariant 5). */
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/events.ts';
import { dataTextOf, encodeEventBatch, rememberDataText } from '../../src/sync/event-codec.ts';
import { storedEvent } from '../fixtures/events.ts';

function events(count: number, remember: boolean, firstSeq = 1) {
  return Array.from({ length: count }, (_, i) => {
    const event = storedEvent({
      replica: 'replicaaaaaaaaaa',
      seq: firstSeq + i,
      wall: 1_700_000_000_000 + i,
      data: { n: firstSeq + i },
    });
    if (remember) rememberDataText(event, JSON.stringify(event.data));
    return event;
  });
}

/** A data-text source that counts how often the encoder asks for one. */
function counting() {
  const counter = {
    asked: 0,
    dataText: (event: StoredEvent) => {
      counter.asked += 1;
      return dataTextOf(event);
    },
  };
  return counter;
}

describe('encoding a batch again (invariant 5)', () => {
  it('returns the text made for the same stored events without encoding them again', () => {
    const batch = events(20, true);
    const first = encodeEventBatch(batch);
    const again = counting();
    // Another array holding the same event objects: what a second peer's batch is.
    expect(encodeEventBatch([...batch], again.dataText)).toBe(first);
    expect(again.asked).toBe(0);
  });

  it('encodes a batch afresh when one event differs, even with the same first, last and count', () => {
    const batch = events(5, true);
    const other = [...batch];
    other[2] = events(1, true, 30)[0]!;
    const text = encodeEventBatch(batch);
    const again = counting();
    const otherText = encodeEventBatch(other, again.dataText);
    expect(again.asked).toBe(5);
    expect(otherText).not.toBe(text);
    expect(otherText).toContain('{"n":30}');
  });

  it('never reuses a text for events no storage remembered (a client may change its objects)', () => {
    const batch = events(3, false);
    encodeEventBatch(batch);
    const again = counting();
    encodeEventBatch(batch, again.dataText);
    expect(again.asked).toBe(3);
  });
});
