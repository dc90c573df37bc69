/**
 * ServerStorage conformance, colliding copies (storage.ts invariant 3; core/copies.ts; RELIABILITY
 * 34 and 35): run by runServerStorageConformance on SQLite and PostgreSQL.
 */
import { expect, it } from 'vitest';
import type { ServerStorage } from '../../src/server/storage.ts';
import { makeEvent } from './events.ts';

export function copyConformance(current: () => ServerStorage): void {
  it('refuses a batch holding two events with one (replica, seq) with SEQ_CONFLICT, storing nothing of it (3, case 34)', async () => {
    const log = await current().openSpace('s');
    const before = makeEvent({ replica: 'hostile', seq: 1 });
    await log.ingest([before]);
    // Two ids at (hostile, 2), the same wall time: the batch a hostile writer sent.
    const one = makeEvent({ replica: 'hostile', seq: 2, wall: 1_800_000_000_000, id: 'one' });
    const two = makeEvent({ replica: 'hostile', seq: 2, wall: 1_800_000_000_000, id: 'two' });
    const fine = makeEvent({ replica: 'hostile', seq: 3, id: 'fine' });
    await expect(log.ingest([fine, one, two])).rejects.toMatchObject({
      code: 'SEQ_CONFLICT',
      eventId: 'two',
    });
    expect(await log.headPos()).toBe(1);
    expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual([before.id]);
  });

  it('refuses an event reusing a held (replica, seq) under another id unless it sorts first, storing nothing of its batch (3, case 34)', async () => {
    const log = await current().openSpace('s');
    const held = makeEvent({ replica: 'restored', seq: 5, wall: 1_700_000_000_000, id: 'held' });
    await log.ingest([held]);
    const later = makeEvent({ replica: 'restored', seq: 5, wall: 1_700_000_500_000, id: 'later' });
    const other = makeEvent({ replica: 'restored', seq: 6, wall: 1_700_000_600_000, id: 'other' });
    await expect(log.ingest([other, later])).rejects.toMatchObject({
      code: 'SEQ_CONFLICT',
      eventId: 'later',
    });
    expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual(['held']);
    // A copy that sorts first wins the slot, as on every replica: the held one leaves.
    const earlier = makeEvent({
      replica: 'restored',
      seq: 5,
      wall: 1_600_000_000_000,
      id: 'earlier',
    });
    const result = await log.ingest([earlier, other]);
    expect(result.written.map((r) => [r.event.id, r.pos])).toEqual([
      ['earlier', 2],
      ['other', 3],
    ]);
    expect(result.lost).toMatchObject([{ code: 'SEQ_CONFLICT', keptId: 'earlier', held: true }]);
    expect((await log.readByPos(0, 10)).map((r) => r.event.id)).toEqual(['earlier', 'other']);
  });

  it('keeps the copy of an id first in the total order in either arrival order; a held loser leaves a hole and the winner takes the head (3, case 35)', async () => {
    const fromA = makeEvent({
      replica: 'replicaa',
      seq: 1,
      wall: 1_700_000_000_000,
      id: 'doc-title-v1',
      data: { title: 'from A' },
    });
    const fromC = makeEvent({
      replica: 'replicac',
      seq: 1,
      wall: 1_700_000_001_000,
      id: 'doc-title-v1',
      data: { title: 'from C' },
    });
    for (const [space, first, second] of [
      ['a-first', fromA, fromC],
      ['c-first', fromC, fromA],
    ] as const) {
      const log = await current().openSpace(space);
      const filler = makeEvent({ replica: 'filler', seq: 1 });
      await log.ingest([first, filler]);
      const result = await log.ingest([second]);
      const all = await log.readByPos(0, 10);
      expect(all.map((r) => r.event.data)).toEqual([
        ...(first === fromA ? [{ title: 'from A' }] : []),
        filler.data,
        ...(first === fromC ? [{ title: 'from A' }] : []),
      ]);
      expect(result.lost?.[0]?.event.data).toEqual({ title: 'from C' });
      if (first === fromC) {
        expect(all.map((r) => r.pos)).toEqual([2, 3]);
        expect(await log.headPos()).toBe(3);
        expect(await log.idAtPos(1)).toBeUndefined();
        // Sent again, the loser changes nothing.
        expect((await log.ingest([fromC])).written).toEqual([]);
      } else {
        expect(result.written).toEqual([]);
      }
    }
  });
}
