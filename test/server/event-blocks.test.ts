import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { encodeHlc } from '../../src/core/hlc.ts';
import { Cursor, type EventId, type ReplicaId, type Seq } from '../../src/core/ids.ts';
import { decodeBlock, encodeBlock } from '../../src/server/event-blocks.ts';

const hlcOf = (wall: number, counter: number) => encodeHlc({ wall, counter });

function record(pos: number, i: number, extra: Partial<StoredEventRecord> = {}): LocalRecord {
  const hlc = hlcOf(1_700_000_000_000 + i, i % 7);
  const replica = `r${i % 3}` as ReplicaId;
  const seq = (i + 1) as Seq;
  return {
    pos,
    event: {
      id: `e${i}` as EventId,
      type: i % 2 === 0 ? 'CardAdded' : 'CardMoved',
      data: { title: `card ${i}`, n: i, nested: [1, 'two', null, { __proto__: 'kept' }] },
      stream: `card-${i % 5}`,
      version: i,
      replica,
      seq,
      hlc,
      time: 1_700_000_000_000 + i,
      cursor: Cursor.make(hlc, replica, seq),
      ...extra,
    },
  };
}

describe('event blocks (server/event-blocks.ts)', () => {
  it('gives back every record field for field, holes in positions included (invariant 1)', () => {
    const records = [
      record(3, 0),
      record(4, 1, { meta: { $sig: 'abc' } }),
      record(9, 2, { schema: 2 }),
    ];
    const back = decodeBlock(encodeBlock(records));
    expect(back).toEqual(records);
    expect(Object.keys(back[0]!.event)).not.toContain('meta');
    expect(JSON.stringify(back)).toBe(JSON.stringify(records));
  });

  it('keeps a cursor or a time that does not derive from the clock (invariant 2)', () => {
    const odd = record(1, 4, { cursor: 'zz-1.r9.1' as Cursor, time: 5 });
    expect(decodeBlock(encodeBlock([record(0, 3), odd]))).toEqual([record(0, 3), odd]);
  });

  it('round-trips any run of records (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.jsonValue(), fc.boolean()), {
          minLength: 1,
          maxLength: 40,
        }),
        (rows) => {
          let pos = 0;
          const records = rows.map(([gap, data, signed], i) => {
            pos += gap;
            const r = record(pos, i, signed ? { meta: { $sig: `s${i}` } } : {});
            r.event.data = JSON.parse(JSON.stringify(data ?? null));
            return r;
          });
          expect(decodeBlock(encodeBlock(records))).toEqual(records);
        },
      ),
    );
  });

  it('compresses a run of similar events to well under their JSON', () => {
    const records = Array.from({ length: 128 }, (_, i) => record(i + 1, i));
    const json = records.reduce((n, r) => n + JSON.stringify(r.event).length, 0);
    expect(encodeBlock(records).length).toBeLessThan(json * 0.3);
  });

  it('refuses a block of an unknown format or a damaged one with code STORAGE (invariant 3)', () => {
    const bytes = encodeBlock([record(1, 0)]);
    const unknown = Buffer.from(bytes);
    unknown[0] = 9;
    expect(() => decodeBlock(unknown)).toThrow(StorageError);
    const damaged = Buffer.from(bytes.subarray(0, 5));
    expect(() => decodeBlock(damaged)).toThrowError(expect.objectContaining({ code: 'STORAGE' }));
  });
});
