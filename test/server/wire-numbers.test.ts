/**
 * A number JSON cannot carry (`1e400`) in a pushed batch, against a real server on 127.0.0.1
 * (RELIABILITY 36): VALIDATION naming the event, nothing of the batch stored, never `null`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { encodeMessage } from '../../src/sync/messages.ts';
import { makeEvent, makeEvents } from './events.ts';
import { ProtocolClient, startTestServer, type TestServer } from './helpers.ts';

const MARK = '"__number__"';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.stop();
});

/** Sends a batch of `events` from position 0 with MARK replaced by `literal`; the answer. */
async function pushWith(client: ProtocolClient, events: StoredEventRecord[], literal: string) {
  const text = encodeMessage({
    type: 'events',
    from: 0,
    to: events.length,
    toId: events[events.length - 1]!.id,
    events,
  });
  expect(text).toContain(MARK);
  client.raw.send(text.replace(MARK, literal));
  return client.raw.next((m) => m.type === 'ack' || m.type === 'error');
}

describe('numbers JSON cannot carry, pushed to the server (case 36)', () => {
  it.each([
    ['data', { data: { price: '__number__' } }, '1e400'],
    ['nested data', { data: { a: [{ b: '__number__' }] } }, '-1e400'],
    ['meta', { meta: { at: '__number__' } }, '1e400'],
  ])(
    'refuses 1e400 in %s with VALIDATION naming the event; stores nothing of the batch',
    async (name, fields, literal) => {
      const space = `numbers-${name.replace(' ', '-')}`;
      const client = await ProtocolClient.connect(t.server.url, t.token({ space }));
      const good = makeEvents(2, { replica: client.replica });
      const bad = makeEvent({ replica: client.replica, seq: 3, ...(fields as object) });
      const answer = await pushWith(client, [...good, bad], literal);
      expect(answer).toMatchObject({ type: 'error', code: 'VALIDATION', eventId: bad.id });
      expect(String(answer.message)).toMatch(/events\[2\]\.(data|meta).*Infinity/);
      expect((await client.raw.closed).code).toBe(1007);
      const log = await t.storage.openSpace(space);
      expect(await log.headPos()).toBe(0);

      // Nothing reaches a reader either, and the same writer's good events go through after.
      const again = await ProtocolClient.connect(t.server.url, t.token({ space }), {
        replica: client.replica,
      });
      expect((await again.push(good)).type).toBe('ack');
      expect((await again.pullAll()).map((e) => e.id)).toEqual(good.map((e) => e.id));
      again.close();
    },
  );
});
