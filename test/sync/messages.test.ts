/** The wire form of events: what encodeMessage leaves out, parseMessage rebuilds. */
import { describe, expect, it } from 'vitest';
import { memoryStorage, openStore } from '../../src/index.ts';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS, type EventsMessage } from '../../src/sync/protocol.ts';

describe('events on the wire', () => {
  it('travel without cursor and time, which the receiver derives; data keeps its own', async () => {
    const store = await openStore({ name: 'w', storage: memoryStorage() });
    const events = await store.append('s', [
      { type: 't', data: { time: 5, cursor: 'mine', nested: { time: 'x' } } },
      { type: 't', data: null, meta: { cursor: 1 } },
    ]);
    const message: EventsMessage = { type: 'events', from: 0, to: 2, toId: events[1]!.id, events };
    const text = encodeMessage(message);
    const wire = JSON.parse(text) as { events: Record<string, unknown>[] };
    for (const event of wire.events) {
      expect(event).not.toHaveProperty('cursor');
      expect(event).not.toHaveProperty('time');
    }
    expect(wire.events[0]!.data).toEqual({ time: 5, cursor: 'mine', nested: { time: 'x' } });
    const parsed = parseMessage(text, DEFAULT_SYNC_LIMITS);
    expect(parsed.ok).toBe(true);
    if (parsed.ok && parsed.message.type === 'events') {
      expect(parsed.message.events).toEqual(events);
    }
    // Older peers that still send them are checked, not trusted.
    const full = JSON.stringify(message);
    expect(parseMessage(full, DEFAULT_SYNC_LIMITS).ok).toBe(true);
    const forged = JSON.stringify({ ...message, events: [{ ...events[0], cursor: 'x' }] });
    expect(parseMessage(forged, DEFAULT_SYNC_LIMITS)).toMatchObject({
      ok: false,
      code: 'VALIDATION',
    });
    await store.close();
  });
});
