/** demo/src/history-text.ts invariants 1–3: the audit trail in words, as it was then. */
import { describe, expect, it } from 'vitest';
import { dropPosition, initialBoard } from '../../demo/src/board.ts';
import { freshDeviceName } from '../../demo/src/device-name.ts';
import { BURST_MS, describeHistory } from '../../demo/src/history-text.ts';
import type { StoredEvent } from '../../src/index.ts';

let seq = 0;
function event(
  type: string,
  stream: string,
  data: unknown,
  replica = 'aaaa',
  time = 1_000 + seq * 1_000,
): StoredEvent<unknown> {
  seq += 1;
  return {
    id: `${replica}.${seq}`,
    type,
    stream,
    data,
    version: 1,
    replica,
    seq,
    hlc: '',
    time,
    cursor: String(seq).padStart(6, '0'),
  } as StoredEvent<unknown>;
}

describe('describeHistory', () => {
  it('tells each event against the board just before it, never the present', () => {
    seq = 0;
    const log = [
      event('DeviceNamed', 'device:aaaa', { name: 'Otter' }),
      event('CardAdded', 'card:c1', { title: 'Plan', column: 'todo', position: 1 }),
      event('CardRenamed', 'card:c1', { title: 'Plan the sprint' }),
      event('CardMoved', 'card:c1', { column: 'doing', position: 1 }),
      event('DeviceNamed', 'device:aaaa', { name: 'Heron' }),
      event('CardRenamed', 'card:c1', { title: 'Sprint planned' }),
      event('CardDeleted', 'card:c1', {}),
    ];
    const entries = describeHistory(log);
    expect(entries.map((e) => [e.subject, e.summary, e.device])).toEqual([
      ['Otter', 'named a device “Otter”', undefined],
      ['Plan', 'added “Plan” to To do', 'Otter'],
      ['Plan', 'renamed “Plan” → “Plan the sprint”', 'Otter'],
      ['Plan the sprint', 'moved To do → Doing', 'Otter'],
      ['Heron', 'renamed a device “Otter” → “Heron”', 'Otter'],
      ['Plan the sprint', 'renamed “Plan the sprint” → “Sprint planned”', 'Heron'],
      ['Sprint planned', 'deleted “Sprint planned”', 'Heron'],
    ]);
    // A prefix of the log is described the same: later events rewrite nothing (invariant 1).
    expect(describeHistory(log.slice(0, 4))).toEqual(entries.slice(0, 4));
  });

  it('tells the Doing lane (the WIP limit) and a move back the server refused, naming a gone card by its last title', () => {
    seq = 0;
    const log = [
      event('CardAdded', 'card:c1', { title: 'Plan', column: 'todo', position: 1 }),
      event('CardEnteredLane', 'lane:main:doing', { card: 'c1' }),
      event('CardMoved', 'card:c1', { column: 'doing', position: 1 }),
      event('CardMoved', 'card:c1', {
        column: 'todo',
        position: 2,
        refused: { column: 'doing', reason: 'WIP_LIMIT', message: 'Doing is full' },
      }),
      event('CardDeleted', 'card:c1', {}),
      event('CardLeftLane', 'lane:main:doing', { card: 'c1' }),
    ];
    expect(describeHistory(log).map((e) => [e.subject, e.summary])).toEqual([
      ['Plan', 'added “Plan” to To do'],
      ['WIP limit of Doing', 'took a place in Doing for “Plan”'],
      ['Plan', 'moved To do → Doing'],
      ['Plan', 'moved back Doing → To do: Doing is full'],
      ['Plan', 'deleted “Plan”'],
      ['WIP limit of Doing', 'freed the place in Doing of “Plan”'],
    ]);
  });

  it('makes one entry of a burst of note edits by one device, and none across devices or gaps', () => {
    seq = 0;
    const notes = 'card:c1/notes';
    const log = [
      event('CardAdded', 'card:c1', { title: 'Plan', column: 'todo', position: 1 }),
      event('yjs.update', notes, {}, 'aaaa', 10_000),
      event('yjs.update', notes, {}, 'aaaa', 11_000),
      event('CardRenamed', 'card:c2', { title: 'other card' }),
      event('yjs.update', notes, {}, 'aaaa', 12_000),
      event('yjs.update', notes, {}, 'bbbb', 13_000),
      event('yjs.update', notes, {}, 'bbbb', 13_000 + BURST_MS + 1),
    ];
    const entries = describeHistory(log);
    expect(entries.map((e) => [e.events.length, e.summary])).toEqual([
      [1, 'added “Plan” to To do'],
      [3, 'edited the notes (3 edits)'],
      [1, 'renamed to “other card”'],
      [1, 'edited the notes'],
      [1, 'edited the notes'],
    ]);
    // Every event is in exactly one entry (invariant 2).
    expect(entries.flatMap((e) => e.events)).toHaveLength(log.length);
    expect(entries[1]?.subject).toBe('Plan');
  });
});

describe('freshDeviceName', () => {
  it('tells of an erased card without what it held, and who erased it', () => {
    seq = 0;
    const shredded = (type: string) => ({
      ...event(type, 'card:c1', null),
      meta: { $shredded: true },
    });
    const log = [
      event('DeviceNamed', 'device:aaaa', { name: 'Otter' }),
      shredded('CardAdded'),
      shredded('CardRenamed'),
      event('CardAdded', 'card:c2', { title: 'Kept', column: 'todo', position: 1 }),
      event('StreamShredded', '$keyring', { stream: 'card:c1', kids: ['k'] }),
      event('StreamShredded', '$keyring', { stream: 'card:c1/notes', kids: [] }),
    ];
    const entries = describeHistory(log);
    expect(entries.map((e) => e.summary)).toEqual([
      'named a device “Otter”',
      'erased',
      'erased',
      'added “Kept” to To do',
      'erased a card for good',
      'erased a card’s notes for good',
    ]);
    expect(entries[4]!.device).toBe('Otter');
  });

  it('draws an adjective and an animal, so that four devices rarely share a name', () => {
    const names = new Set(Array.from({ length: 200 }, () => freshDeviceName()));
    // 576 names: 200 draws give about 169 distinct ones; 120 is seven standard deviations below.
    expect(names.size).toBeGreaterThan(120);
    for (const name of names) expect(name).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/);
    expect(freshDeviceName((n) => n - 1)).toBe('Witty Wren');
  });
});

describe('describeHistory after a delete', () => {
  it('names a change to a deleted card by the title it last had', () => {
    seq = 0;
    const entries = describeHistory([
      event('CardAdded', 'card:c9', { title: 'Held back', column: 'todo', position: 1 }),
      event('CardDeleted', 'card:c9', {}),
      event('CardMoved', 'card:c9', { column: 'doing', position: 1 }),
    ]);
    expect(entries.map((e) => [e.subject, e.summary])).toEqual([
      ['Held back', 'added “Held back” to To do'],
      ['Held back', 'deleted “Held back”'],
      ['Held back', 'moved to Doing (the card was gone)'],
    ]);
  });
});

describe('dropPosition', () => {
  it('puts a dropped card before the card it lands on, or at the end of the column', () => {
    const state = initialBoard();
    const card = (id: string, column: string, position: number) => ({
      id,
      title: id,
      column,
      position,
      changedBy: 'r',
    });
    state.cards = {
      a: card('a', 'todo', 1),
      b: card('b', 'todo', 2),
      c: card('c', 'doing', 1),
    };
    expect(dropPosition(state, 'c', 'todo', 'b')).toBe(1.5);
    expect(dropPosition(state, 'c', 'todo', 'a')).toBe(0);
    expect(dropPosition(state, 'c', 'todo', undefined)).toBe(3);
    // Already last in its column: dropping it on the column's free space moves nothing.
    expect(dropPosition(state, 'b', 'todo', undefined)).toBeUndefined();
    expect(dropPosition(state, 'a', 'todo', undefined)).toBe(3);
  });
});
