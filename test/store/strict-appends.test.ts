/** src/store/strict-appends.ts: how the store marks and chains appends to strict streams. */
import { describe, expect, it } from 'vitest';
import { memoryStorage, openStore, ValidationError } from '../../src/index.ts';

const open = () =>
  openStore({ name: 'strict', storage: memoryStorage(), strictStreams: ['acct-*', 'ledger'] });

describe('appends to strict streams', () => {
  it('marks every event strict and chains each to the one before (1)', async () => {
    const store = await open();
    const [first] = await store.append('acct-1', { type: 'A', data: 1 });
    const batch = await store.append('acct-1', [
      { type: 'A', data: 2 },
      { type: 'A', data: 3 },
      { type: 'A', data: 4 },
    ]);
    expect(first!.meta).toEqual({ $strict: true });
    expect(batch.map((e) => e.meta?.$prev)).toEqual([first!.id, batch[0]!.id, batch[1]!.id]);
    expect(batch.every((e) => e.meta?.$strict === true)).toBe(true);
    expect(batch.map((e) => e.version)).toEqual([2, 3, 4]);
    // An app's own meta is kept beside the marks.
    const [withMeta] = await store.append('ledger', { type: 'A', data: 5, meta: { by: 'me' } });
    expect(withMeta!.meta).toEqual({ by: 'me', $strict: true });
    const [plain] = await store.append('notes', { type: 'A', data: 6 });
    expect(plain!.meta).toBeUndefined();
    await store.close();
  });

  it('checks expectedVersion as any append does, and a malformed one is refused (2)', async () => {
    const store = await open();
    await store.append('acct-1', { type: 'A', data: 1 }, { expectedVersion: 'none' });
    await expect(
      store.append('acct-1', { type: 'A', data: 2 }, { expectedVersion: 'none' }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY' });
    await expect(
      store.append('acct-1', { type: 'A', data: 2 }, { expectedVersion: 5 }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY' });
    await expect(
      store.append('acct-1', { type: 'A', data: 2 }, { expectedVersion: 'later' as never }),
    ).rejects.toBeInstanceOf(ValidationError);
    const [second] = await store.append('acct-1', { type: 'A', data: 2 }, { expectedVersion: 1 });
    expect(second!.version).toBe(2);
    await store.close();
  });

  it('refuses $strict and $prev in the meta of an append to any other stream (3)', async () => {
    const store = await open();
    for (const meta of [{ $strict: true }, { $prev: 'x' }]) {
      await expect(store.append('notes', { type: 'A', data: 1, meta })).rejects.toMatchObject({
        code: 'VALIDATION',
      });
    }
    await expect(
      store.appendMany([
        { stream: 'notes', events: [{ type: 'A', data: 1, meta: { $strict: true } }] },
      ]),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    expect(await store.read()).toEqual([]);
    await store.close();
  });

  it('marks the strict parts of an appendMany, in one transaction with the others', async () => {
    const store = await open();
    const [partA, partB] = await store.appendMany([
      { stream: 'acct-1', events: [{ type: 'A', data: 1 }] },
      { stream: 'notes', events: [{ type: 'A', data: 2 }] },
    ]);
    const a = partA![0];
    expect(a!.meta).toEqual({ $strict: true });
    expect(partB![0]!.meta).toBeUndefined();
    const [partC] = await store.appendMany([
      { stream: 'acct-1', events: [{ type: 'A', data: 3 }] },
    ]);
    expect(partC![0]!.meta).toEqual({ $strict: true, $prev: a!.id });
    await store.close();
  });

  it('takes strictStreams only as names or prefixes', async () => {
    for (const strictStreams of [['*'], [''], 'acct-*', [1]]) {
      await expect(
        openStore({ name: 'x', storage: memoryStorage(), strictStreams: strictStreams as never }),
      ).rejects.toMatchObject({ code: 'VALIDATION' });
    }
  });

  it('takes JSON input only for a command on a strict stream, and carries it in the first event', async () => {
    const { account } = await import('./fixtures/account.ts');
    const store = await openStore({
      name: 'cmd',
      storage: memoryStorage(),
      aggregates: [account],
      strictStreams: ['acct-*'],
    });
    const [deposit] = await store.execute(account, 'acct-1', 'deposit', { cents: 5 });
    expect(deposit!.meta).toMatchObject({
      $strict: true,
      $aggregate: 'account',
      $input: { cents: 5 },
      $command: 'deposit',
    });
    await expect(
      store.execute(account, 'acct-1', 'deposit', { cents: 5, when: new Date() } as never),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    await store.close();
  });
});
