/**
 * The id part of the storage conformance suite (storageConformance calls it for every adapter:
 * memory, fake-indexeddb, real Chromium IndexedDB): ids stay unique and found whichever index
 * an adapter keeps them in (IndexedDB indexes canonical ids by their slot only, idb-schema.ts
 * invariant 4), including custom ids that have the canonical form of another event's id.
 * Imports only vitest, src and test/fixtures.
 */
import { describe, expect, it } from 'vitest';
import { IdempotencyError } from '../../src/core/errors.ts';
import { EventId, ReplicaId, Seq } from '../../src/core/ids.ts';
import type { EventLog, LocalAppendResult } from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';

const OTHER = ReplicaId.parse('other00000000042');
/** The canonical id of OTHER's first event, given here as a custom id. */
const SHAPED = EventId.canonical(OTHER, Seq.make(1));

function written(result: LocalAppendResult) {
  if (result.kind !== 'written') throw new Error(`expected a write, got ${result.kind}`);
  return result.records;
}

const add = (log: EventLog, stream: string, id?: string, data: number = 1) =>
  log.appendLocal({
    stream,
    events: [
      { type: 'Added', data, schema: 1, ...(id === undefined ? {} : { id: EventId.parse(id) }) },
    ],
    expectedVersion: 'any',
    now: 1_000,
  });

export function idConformance(open: () => Promise<EventLog>): void {
  describe('ids: canonical and custom', () => {
    it('finds events by canonical id and by custom id, canonical-looking custom ids too', async () => {
      const log = await open();
      const [canonical] = written(await add(log, 's'));
      const [custom] = written(await add(log, 's', 'order-7'));
      const [shaped] = written(await add(log, 's', SHAPED));
      expect(canonical!.event.id).toBe(EventId.canonical(log.replicaId as ReplicaId, Seq.make(1)));
      expect(await log.getByIds([SHAPED, 'order-7', canonical!.event.id, `${OTHER}.2`])).toEqual([
        shaped,
        custom,
        canonical,
        undefined,
      ]);
    });

    it("refuses a local append whose id is another event's canonical id, with different content", async () => {
      const log = await open();
      await log.ingest({
        events: [storedEvent({ replica: OTHER, seq: 1, wall: 500, stream: 'r', data: 'theirs' })],
        now: 1_000,
        maxClockDriftMs: 86_400_000,
      });
      const error = await add(log, 's', SHAPED, 2).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IdempotencyError);
      expect(await log.headPos()).toBe(1);
      expect((await log.getByIds([SHAPED]))[0]?.event.replica).toBe(OTHER);
    });

    it('keeps one event per id when the event whose canonical id a custom id took arrives', async () => {
      const log = await open();
      written(await add(log, 's', SHAPED, 1));
      const theirs = storedEvent({
        replica: OTHER,
        seq: 1,
        wall: 500,
        stream: 'r',
        data: 'theirs',
      });
      const result = await log.ingest({
        events: [theirs],
        now: 1_000,
        maxClockDriftMs: 86_400_000,
      });
      expect(result.lost).toHaveLength(1);
      const all = await log.readByCursor({ limit: 100 });
      expect(all.filter((r) => r.event.id === SHAPED)).toHaveLength(1);
      const [found] = await log.getByIds([SHAPED]);
      expect(found).toEqual(all.find((r) => r.event.id === SHAPED));
      // Appends without ids go on: the counters are whole.
      written(await add(log, 's'));
      expect((await log.readByCursor({ limit: 100 })).length).toBe(all.length + 1);
    });
  });
}
