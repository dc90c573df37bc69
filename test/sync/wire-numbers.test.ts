/**
 * Numbers JSON cannot carry (RELIABILITY 36): JSON.parse reads `1e400` as Infinity, which
 * JSON.stringify later writes as `null`. A batch holding one is refused with VALIDATION, naming
 * the event and the field, never stored (event-codec.ts invariant 2, json.ts invariant 1).
 */
import { describe, expect, it } from 'vitest';
import type { JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import { replicaA, T0 } from '../core/fixtures.ts';
import { storedEvent } from '../fixtures/events.ts';
import { helloFrom, idsInOrder, memoryReplica, rawPeer, until } from './helpers.ts';

/** Stands in the data or meta of an event for a number literal written into the text. */
const MARK = '"__number__"';

function events(n: number): StoredEventRecord[] {
  return Array.from({ length: n }, (_, i) =>
    storedEvent({
      replica: replicaA,
      seq: i + 1,
      stream: 's',
      version: i + 1,
      wall: T0,
      counter: i,
      type: 'happened',
      data: { n: i },
    }),
  );
}

/** The wire text of a batch of three whose last event's data (or meta) holds `literal`. */
function batchText(literal: string, where: { data?: JsonValue; meta?: JsonValue }): string {
  const batch = events(3);
  const last = { ...batch[2]! };
  if (where.data !== undefined) last.data = where.data;
  if (where.meta !== undefined) last.meta = where.meta as never;
  const text = encodeMessage({
    type: 'events',
    from: 0,
    to: 3,
    toId: last.id,
    events: [batch[0]!, batch[1]!, last],
  });
  expect(text).toContain(MARK);
  return text.replace(MARK, literal);
}

const mark = '__number__';

describe('numbers JSON cannot carry, on the wire (case 36)', () => {
  it.each([
    ['data that is the number itself', '1e400', { data: mark }, 'events[2].data'],
    ['a negative one', '-1e400', { data: mark }, 'events[2].data'],
    ['one in an object of the data', '1e400', { data: { price: mark } }, 'events[2].data.price'],
    ['one deep in an array', '2E+999', { data: { a: [1, [2, mark]] } }, 'events[2].data.a[1][1]'],
    ['one in meta', '1e400', { meta: { at: mark } }, 'events[2].meta.at'],
    ['one nested in meta', '-1e309', { meta: { x: { y: [mark] } } }, 'events[2].meta.x.y[0]'],
  ])(
    'refuses %s (%s) with VALIDATION naming the event and the field',
    (_name, literal, where, path) => {
      const text = batchText(literal, where as { data?: JsonValue; meta?: JsonValue });
      const result = parseMessage(text, DEFAULT_SYNC_LIMITS);
      expect(result).toMatchObject({ ok: false, code: 'VALIDATION', eventId: events(3)[2]!.id });
      if (!result.ok) {
        expect(result.message).toContain(path);
        expect(result.message).toMatch(/Infinity is not a JSON number/);
      }
    },
  );

  it('keeps numbers JSON.parse can carry: the largest double, underflow to 0, long integers', () => {
    for (const literal of ['1.7976931348623157e308', '1e-400', '-0', '123456789012345678901234']) {
      const result = parseMessage(batchText(literal, { data: { v: mark } }), DEFAULT_SYNC_LIMITS);
      expect(result.ok, literal).toBe(true);
      if (result.ok && result.message.type === 'events') {
        const data = result.message.events[2]!.data as { v: number };
        expect(data.v).toBe(Number(literal));
        expect(Number.isFinite(data.v)).toBe(true);
      }
    }
  });

  it('a client replica refuses a peer batch holding 1e400 and stores nothing of it', async () => {
    const { internals: client } = await memoryReplica();
    const { internals: other } = await memoryReplica();
    const sent = await other.append('s', 1, { price: mark });
    const { peer, errors } = await rawPeer(client);
    peer.send(helloFrom(other.replicaId, { head: 2 }));
    await until(() => peer.of('pull').length === 1);
    const text = encodeMessage({ type: 'events', from: 0, to: 2, toId: sent[1]!.id, events: sent });
    peer.sendText(text.replace(MARK, '1e400'));
    await until(() => peer.closed());
    expect(peer.of('error')[0]).toMatchObject({
      code: 'VALIDATION',
      eventId: sent[1]!.id,
      fatal: true,
    });
    expect(errors[0]).toMatchObject({ code: 'VALIDATION', source: 'local' });
    expect(await idsInOrder(client)).toEqual([]);
  });
});
