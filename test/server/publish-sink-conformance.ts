/**
 * The one conformance suite of BrokerSink (src/server/publish-sink.ts): every sink runs it
 * against its real broker, started by the test file that calls `publishSinkConformance`
 * (publish-rabbitmq.test.ts, publish-nats.test.ts). It knows nothing of a broker: the harness
 * gives a consumer's view and the broker's life. Test names cite the sink's invariants (S1..S4).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import type { BrokerSink, PublishedEvent } from '../../src/server/publish-sink.ts';
import { makeEvents } from './events.ts';

/** One message as a consumer reads it. */
export interface Consumed {
  space: string;
  pos: number;
  id: string;
}

export interface SinkHarness {
  sink: BrokerSink;
  /**
   * Every message of the sink's stream (or subject space) that a fresh consumer reads from the
   * start, in broker order: all the broker holds at the call, nothing left out.
   */
  consume(): Promise<Consumed[]>;
  /** Stops the broker (SIGKILL when `kill`), keeping its data. */
  stopBroker(kill: boolean): Promise<void>;
  /** Starts the stopped broker again on the same data. */
  startBroker(): Promise<void>;
  /** A new sink on the same broker and stream: the publisher after a restart. */
  reopen(): Promise<BrokerSink>;
  /** Closes every sink, consumer and connection the harness opened. */
  close(): Promise<void>;
}

/** Per-test timeout: long enough for a broker restart on a shared machine. */
const SLOW = 120_000;
let spaceCount = 0;

function space(): string {
  spaceCount += 1;
  return `space-${spaceCount}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Events at the given positions (holes allowed: S3). */
function at(positions: readonly number[], prefix: string): PublishedEvent[] {
  const last = Math.max(...positions);
  const events: StoredEventRecord[] = makeEvents(last, { prefix, replica: 'replicaaaaaaaaaa' });
  return positions.map((pos) => ({ pos, event: events[pos - 1] as StoredEventRecord }));
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let pos = from; pos <= to; pos++) out.push(pos);
  return out;
}

function of(consumed: readonly Consumed[], name: string): Array<[number, string]> {
  return consumed.filter((c) => c.space === name).map((c) => [c.pos, c.id]);
}

function expected(events: readonly PublishedEvent[]): Array<[number, string]> {
  return events.map((e) => [e.pos, e.event.id]);
}

/** Retries `run` while the broker comes back; the sink's own bound ends each attempt. */
async function eventually<T>(run: () => Promise<T>, attempts = 40): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await run();
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw last;
}

export function publishSinkConformance(name: string, setup: () => Promise<SinkHarness>): void {
  describe(`BrokerSink conformance: ${name}`, () => {
    let harness: SinkHarness;

    beforeEach(async () => {
      harness = await setup();
    }, SLOW);
    afterEach(async () => {
      await harness.close();
    }, SLOW);

    it('S1: keeps each space in log order over several batches, spaces interleaved, holes allowed', async () => {
      const a = space();
      const b = space();
      const eventsA = at([1, 2, 3, 5, 8, 9, 10, 14], a);
      const eventsB = at(range(1, 9), b);
      await harness.sink.publish(a, eventsA.slice(0, 3));
      await harness.sink.publish(b, eventsB.slice(0, 4));
      await Promise.all([
        harness.sink.publish(a, eventsA.slice(3, 6)),
        harness.sink.publish(b, eventsB.slice(4)),
      ]);
      await harness.sink.publish(a, eventsA.slice(6));
      const consumed = await harness.consume();
      expect(of(consumed, a)).toEqual(expected(eventsA));
      expect(of(consumed, b)).toEqual(expected(eventsB));
    });

    it('S2: a batch published again by the same sink reaches consumers no second time', async () => {
      const s = space();
      const events = at(range(1, 20), s);
      await harness.sink.publish(s, events);
      await harness.sink.publish(s, events);
      await harness.sink.publish(s, events.slice(5, 10));
      expect(of(await harness.consume(), s)).toEqual(expected(events));
    });

    it('S2: a batch published again by a restarted publisher (a new sink) reaches consumers no second time', async () => {
      const s = space();
      const events = at(range(1, 30), s);
      await harness.sink.publish(s, events.slice(0, 20));
      const reopened = await harness.reopen();
      await reopened.publish(s, events.slice(0, 20));
      await reopened.publish(s, events.slice(10));
      expect(of(await harness.consume(), s)).toEqual(expected(events));
    });

    it('S2: a batch overlapping what the broker acknowledged delivers only its new part', async () => {
      const s = space();
      const events = at(range(1, 15), s);
      await harness.sink.publish(s, events.slice(0, 10));
      await harness.sink.publish(s, events.slice(5));
      expect(of(await harness.consume(), s)).toEqual(expected(events));
    });

    it(
      'S1, S4: a publish while the broker is down rejects, and publishing works again once it is back (SIGKILL, restart on the same data)',
      async () => {
        const s = space();
        const events = at(range(1, 10), s);
        await harness.sink.publish(s, events.slice(0, 5));
        await harness.stopBroker(true);
        try {
          await expect(harness.sink.publish(s, events.slice(5))).rejects.toThrow();
        } finally {
          await harness.startBroker();
        }
        await eventually(() => harness.sink.publish(s, events.slice(3)));
        expect(of(await harness.consume(), s)).toEqual(expected(events));
      },
      SLOW,
    );

    it(
      'S2: acknowledged() after the broker was SIGKILLed and restarted is the last acknowledged position',
      async () => {
        if (harness.sink.acknowledged === undefined) return;
        const s = space();
        const never = space();
        await harness.sink.publish(s, at([1, 2, 3, 7, 12], s));
        expect(await harness.sink.acknowledged(s)).toBe(12);
        await harness.stopBroker(true);
        await harness.startBroker();
        const reopened = await harness.reopen();
        expect(await eventually(() => reopened.acknowledged?.(s) ?? Promise.resolve(-1))).toBe(12);
        expect(await reopened.acknowledged?.(never)).toBeUndefined();
      },
      SLOW,
    );

    it('S1: a batch of 5,000 events arrives whole and in order', async () => {
      const s = space();
      const events = at(range(1, 5000), s);
      await harness.sink.publish(s, events);
      expect(of(await harness.consume(), s)).toEqual(expected(events));
    }, 60_000);
  });
}
