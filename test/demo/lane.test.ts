/** demo/src/lane.ts: the WIP limit of Doing, as an aggregate on a strict stream. */
import { describe, expect, it } from 'vitest';
import {
  entryCommandId,
  lane,
  laneStream,
  parseEntryCommandId,
  WIP_LIMIT,
} from '../../demo/src/lane.ts';
import { CommandRejectedError, memoryStorage, openStore } from '../../src/index.ts';

describe('the Doing lane', () => {
  it(`lets ${WIP_LIMIT} cards in, refuses the next with WIP_LIMIT, and frees a place on leave`, async () => {
    const store = await openStore({
      name: 'lane',
      storage: memoryStorage(),
      aggregates: [lane],
      strictStreams: ['lane:*'],
    });
    const stream = laneStream('main');
    for (let i = 0; i < WIP_LIMIT; i++) {
      await store.execute(lane, stream, 'enter', { card: `c${i}` });
    }
    // A card already in takes no second place.
    expect(await store.execute(lane, stream, 'enter', { card: 'c0' })).toEqual([]);
    const refused = store.execute(lane, stream, 'enter', { card: 'late' });
    await expect(refused).rejects.toBeInstanceOf(CommandRejectedError);
    await expect(refused).rejects.toMatchObject({ reason: 'WIP_LIMIT' });
    await store.execute(lane, stream, 'leave', { card: 'c1' });
    expect(await store.execute(lane, stream, 'leave', { card: 'c1' })).toEqual([]);
    const [entered] = await store.execute(lane, stream, 'enter', { card: 'late' });
    expect(entered?.meta).toMatchObject({
      $strict: true,
      $aggregate: 'lane',
      $input: { card: 'late' },
    });
    await store.close();
  });

  it('names the card and the column it came from in the entry command id', () => {
    const id = entryCommandId('5b1c-card', 'todo');
    expect(id.length).toBeLessThanOrEqual(100);
    expect(parseEntryCommandId(id)).toEqual({ card: '5b1c-card', from: 'todo' });
    expect(parseEntryCommandId('cmd-1234')).toBeUndefined();
  });
});
