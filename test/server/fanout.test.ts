/**
 * The server's send path under fan-out: live tail coalesced per connection (session-sender.ts
 * invariant 8), what a connection holds to send bounded, and a slow consumer shed with 1013
 * while the others keep receiving (connection.ts invariant 5).
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_LIMITS } from '../../src/server/limits.ts';
import { makeEvents } from './events.ts';
import {
  ProtocolClient,
  type Received,
  startTestServer,
  type TestServer,
  waitFor,
} from './helpers.ts';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

async function headPos(server: TestServer): Promise<number> {
  return (await server.storage.openSpace('space-a')).headPos();
}

/** A reader that pulled and acknowledged the (empty) catch-up: it is in live tail. */
async function liveReader(server: TestServer, sub: string): Promise<ProtocolClient> {
  const reader = await ProtocolClient.connect(server.server.url, server.token({ sub }));
  reader.raw.send({ type: 'pull' });
  const caughtUp = await reader.raw.nextOfType('events');
  expect(caughtUp.caughtUp).toBe(true);
  reader.raw.send({ type: 'ack', to: caughtUp.to });
  return reader;
}

function pauseReading(client: ProtocolClient): Socket {
  const socket = (client.raw.ws as unknown as { _socket: Socket })._socket;
  socket.pause();
  return socket;
}

function eventsOf(m: Received): { id: string }[] {
  return m.events as { id: string }[];
}

describe('fan-out send path', () => {
  it('coalesces appends made while a batch is unacknowledged into one message (invariant 8)', async () => {
    t = await startTestServer();
    const reader = await liveReader(t, 'reader');
    const writer = await ProtocolClient.connect(t.server.url, t.token({ sub: 'writer' }));
    const events = makeEvents(40, { replica: writer.replica });
    // Forty appends, each its own batch and its own commit; the reader holds its first ack.
    expect((await writer.push(events.slice(0, 1))).type).toBe('ack');
    const first = await reader.raw.nextOfType('events');
    for (let i = 1; i < events.length; i++) {
      expect((await writer.push(events.slice(i, i + 1))).type).toBe('ack');
    }
    await waitFor(async () => (await headPos(t!)) === 40);
    reader.raw.send({ type: 'ack', to: first.to });
    const received = [...eventsOf(first)];
    let messages = 1;
    while (received.length < events.length) {
      const batch = await reader.raw.nextOfType('events');
      messages += 1;
      received.push(...eventsOf(batch));
      reader.raw.send({ type: 'ack', to: batch.to });
    }
    expect(received.map((e) => e.id)).toEqual(events.map((e) => e.id));
    // One message for the first append, one for the 39 made while it was unacknowledged.
    expect(messages).toBe(2);
    reader.close();
    writer.close();
  });

  it('reads a group commit from the recent records: every reader is sent the very objects written (invariant 7)', async () => {
    t = await startTestServer();
    const space = await t.storage.openSpace('space-a');
    const readers = [await liveReader(t, 'r1'), await liveReader(t, 'r2')];
    const read: unknown[] = [];
    const readByPos = space.readByPos.bind(space);
    space.readByPos = (afterPos, limit) => {
      const records = readByPos(afterPos, limit);
      void records.then((r) => read.push(...r));
      return records;
    };
    // Two ingests handed over in one turn: one group commit of two pieces.
    const results = await Promise.all([
      space.ingest(makeEvents(3, { replica: 'writeraaaaaaaaaa' })),
      space.ingest(makeEvents(3, { replica: 'writerbbbbbbbbbb' })),
    ]);
    const written = new Set<unknown>(results.flatMap((r) => r.written));
    for (const reader of readers) {
      let received = 0;
      while (received < 6) {
        const batch = await reader.raw.nextOfType('events');
        received += eventsOf(batch).length;
        reader.raw.send({ type: 'ack', to: batch.to });
      }
      reader.close();
    }
    expect(read.length).toBeGreaterThanOrEqual(6);
    // Nothing was read back from the database as new objects.
    expect(read.filter((r) => !written.has(r))).toEqual([]);
  });

  it('sheds a consumer that stops reading with 1013 after maxAckWaitMs, holding no more than its window, while the others keep receiving (invariant 5)', async () => {
    t = await startTestServer({ limits: { maxAckWaitMs: 300, closeGraceMs: 5_000 } });
    const fast = await liveReader(t, 'fast');
    const slow = await liveReader(t, 'slow');
    const writer = await ProtocolClient.connect(t.server.url, t.token({ sub: 'writer' }));
    const events = makeEvents(60, { replica: writer.replica });
    const socket = pauseReading(slow);
    const fastIds: string[] = [];
    const pushAndReceive = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        expect((await writer.push(events.slice(i, i + 1))).type).toBe('ack');
        // The fast reader takes and acknowledges everything as it comes.
        while (fastIds.length < i + 1) {
          const batch = await fast.raw.nextOfType('events');
          fastIds.push(...eventsOf(batch).map((e) => e.id));
          fast.raw.send({ type: 'ack', to: batch.to });
        }
      }
    };
    await pushAndReceive(0, 30);
    await waitFor(
      () => t!.logs.some((l) => l.event === 'slow_consumer' && l.sub === 'slow'),
      10_000,
    );
    // The rest is appended after the slow consumer was shed: the others still get all of it.
    await pushAndReceive(30, 60);
    expect(fastIds).toEqual(events.map((e) => e.id));
    socket.resume();
    expect((await slow.raw.closed).code).toBe(1013);
    const sent = slow.raw.messages.filter((m) => m.type === 'events');
    // Never more than its flow window was sent to it: everything else stayed in the log.
    expect(sent.length).toBeLessThanOrEqual(DEFAULT_SERVER_LIMITS.maxInFlightBatches);
    const refusal = slow.raw.messages.find((m) => m.type === 'error');
    expect(refusal?.code).toBe('LIMIT_EXCEEDED');
    expect(t.logs.some((l) => l.event === 'slow_consumer' && l.sub === 'fast')).toBe(false);
    expect(DEFAULT_SERVER_LIMITS.maxAckWaitMs).toBe(30_000);
    fast.close();
    writer.close();
  });
});
