/**
 * The group-commit part of the storage conformance suite (storageConformance calls it for every
 * adapter: memory, fake-indexeddb, real Chromium IndexedDB): EventLog.appendGroup. Names cite
 * src/core/append-group.ts (G1..G5) and src/storage/adapter.ts (A1..A5). Imports only vitest,
 * src and test/fixtures.
 */
import { describe, expect, it } from 'vitest';
import type { AppendUnitOutcome } from '../../src/core/append-group.ts';
import { ConcurrencyError, IdempotencyError } from '../../src/core/errors.ts';
import type { ExpectedVersion } from '../../src/core/events.ts';
import { EventId } from '../../src/core/ids.ts';
import type { ValidNewEvent } from '../../src/core/validate.ts';
import type { EventLog, StorageAdapter, StreamAppendRequest } from '../../src/storage/adapter.ts';

let ids = 0;

function event(id?: string, n = 1): ValidNewEvent & { id?: EventId } {
  const e: ValidNewEvent & { id?: EventId } = { type: 'Added', data: { n }, schema: 1 };
  if (id !== undefined) e.id = EventId.parse(id);
  return e;
}

function part(
  stream: string,
  events: (ValidNewEvent & { id?: EventId })[],
  expectedVersion: ExpectedVersion = 'any',
): StreamAppendRequest {
  return { stream, events, expectedVersion };
}

function rejected(outcome: AppendUnitOutcome | undefined): unknown {
  if (outcome?.kind !== 'rejected') throw new Error(`expected a rejection, got ${outcome?.kind}`);
  return outcome.error;
}

export function appendGroupConformance(
  fresh: () => Promise<{ adapter: StorageAdapter; log: EventLog }>,
): void {
  describe('appendGroup (group commit)', () => {
    it('writes every accepted unit in one call, each unit whole, durably for another handle (G1, G2, A1)', async () => {
      const { adapter, log } = await fresh();
      const outcomes = await log.appendGroup({
        now: 1_000,
        units: [
          [part('a', [event(), event()]), part('b', [event()], 'none')],
          [part('c', [event()]), part('a', [event()], 0)],
          [part('c', [event()], 'none')],
        ],
      });
      expect(outcomes.map((o) => o.kind)).toEqual(['appended', 'rejected', 'appended']);
      expect(rejected(outcomes[1])).toBeInstanceOf(ConcurrencyError);
      const other = await adapter.open();
      try {
        const records = await other.readByPos(0, 10);
        expect(records.map((r) => [r.pos, r.event.stream, r.event.version, r.event.seq])).toEqual([
          [1, 'a', 1, 1],
          [2, 'a', 2, 2],
          [3, 'b', 1, 3],
          [4, 'c', 1, 4],
        ]);
        expect(await other.streamVersion('a')).toBe(2);
        expect(await other.streamVersion('c')).toBe(1);
        expect(await other.headPos()).toBe(4);
        expect(await other.ownSeq()).toBe(4);
      } finally {
        await other.close();
      }
    });

    it('returns what each part wrote, as a read gives it back, in the order of the units (G3)', async () => {
      const { log } = await fresh();
      const outcomes = await log.appendGroup({
        now: 2_000,
        units: [[part('s', [event()])], [part('t', [event()]), part('s', [event()], 1)]],
      });
      const parts = outcomes.flatMap((o) => (o.kind === 'appended' ? o.streams : []));
      const records = parts.flatMap((p) => (p.kind === 'written' ? p.records : []));
      expect(records).toEqual(await log.readByPos(0, 10));
      const cursors = records.map((r) => r.event.cursor);
      expect([...cursors].sort()).toEqual(cursors);
    });

    it('settles a stored custom id per unit: a duplicate, or an IdempotencyError, the rest written (G2, G3)', async () => {
      const { log } = await fresh();
      const id = `group-${++ids}`;
      await log.appendLocal({
        stream: 's',
        events: [event(id, 1)],
        expectedVersion: 'any',
        now: 1,
      });
      const outcomes = await log.appendGroup({
        now: 3_000,
        units: [
          [part('s', [event(id, 1)], 9)],
          [part('s', [event(id, 2)])],
          [part('u', [event(`${id}-new`)])],
          [part('u', [event(`${id}-new`)])],
        ],
      });
      expect(outcomes[0]).toMatchObject({ kind: 'appended', streams: [{ kind: 'duplicate' }] });
      expect(rejected(outcomes[1])).toBeInstanceOf(IdempotencyError);
      expect(outcomes[2]).toMatchObject({ kind: 'appended', streams: [{ kind: 'written' }] });
      expect(outcomes[3]).toMatchObject({ kind: 'appended', streams: [{ kind: 'duplicate' }] });
      expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual([id, `${id}-new`]);
      expect((await log.getByIds([`${id}-new`]))[0]?.pos).toBe(2);
    });

    it('writes nothing and changes no counter when every unit is rejected (G1)', async () => {
      const { log } = await fresh();
      await log.appendLocal({ stream: 's', events: [event()], expectedVersion: 'any', now: 1 });
      const outcomes = await log.appendGroup({
        now: 4_000,
        units: [[part('t', [event()]), part('s', [event()], 'none')]],
      });
      expect(rejected(outcomes[0])).toBeInstanceOf(ConcurrencyError);
      expect(await log.headPos()).toBe(1);
      expect(await log.ownSeq()).toBe(1);
      expect(await log.streamVersion('t')).toBe(0);
      const [next] = await log.appendGroup({ now: 5_000, units: [[part('t', [event()])]] });
      expect(next).toMatchObject({ kind: 'appended' });
      expect((await log.readByPos(1, 10)).map((r) => [r.pos, r.event.seq])).toEqual([[2, 2]]);
    });
  });
}
