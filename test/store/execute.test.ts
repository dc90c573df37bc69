/**
 * Commands on aggregates (issue 19, part 1): store/commands.ts invariants 1–3 and
 * core/aggregate.ts invariants 1–4, on memory storage and on IndexedDB (fake-indexeddb) with two
 * handles on one database, as two tabs are.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMMAND_META,
  CommandRejectedError,
  ConcurrencyError,
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  NotFoundError,
  openStore,
  ValidationError,
} from '../../src/index.ts';
import { type AccountEvents, account, balanceNeverNegative } from './fixtures/account.ts';

const open = (name = 'bank') =>
  openStore<AccountEvents>({ name, storage: memoryStorage(), aggregates: [account] });

/** The reason a command was refused, or 'ok'. */
async function outcome(run: Promise<unknown>): Promise<string> {
  try {
    await run;
    return 'ok';
  } catch (error) {
    if (error instanceof CommandRejectedError) return error.reason;
    if (error instanceof ConcurrencyError) return 'CONCURRENCY';
    throw error;
  }
}

describe('store.execute', () => {
  it('appends what the handler decides, and refuses with its reason when the rule would break', async () => {
    const store = await open();
    const deposited = await store.execute(account, 'acct-1', 'deposit', { cents: 100 });
    expect(deposited.map((e) => [e.type, e.data, e.version])).toEqual([
      ['Deposited', { cents: 100 }, 1],
    ]);
    const refused = store.execute(account, 'acct-1', 'withdraw', { cents: 150 });
    await expect(refused).rejects.toBeInstanceOf(CommandRejectedError);
    await expect(refused).rejects.toMatchObject({
      code: 'COMMAND_REJECTED',
      reason: 'INSUFFICIENT_FUNDS',
      aggregate: 'account',
      command: 'withdraw',
      stream: 'acct-1',
      message: 'only 100 cents left',
      details: { rejection: { balance: 100 } },
    });
    await store.execute('account', 'acct-1', 'withdraw', { cents: 60 });
    expect((await store.read({ stream: 'acct-1' })).map((e) => e.type)).toEqual([
      'Deposited',
      'Withdrawn',
    ]);
    await store.close();
  });

  it('stamps each event with the command, its id, correlation and causation', async () => {
    const store = await open();
    const [first] = await store.execute(account, 'acct-1', 'deposit', { cents: 5 });
    const meta = first!.meta!;
    expect(meta[COMMAND_META.command]).toBe('deposit');
    const commandId = meta[COMMAND_META.commandId] as string;
    expect(commandId).toMatch(/^cmd-[0-9a-f]{24}$/);
    // A command on its own starts its chain.
    expect(meta[COMMAND_META.correlationId]).toBe(commandId);
    expect(meta[COMMAND_META.causationId]).toBe(commandId);
    // A reaction to that event continues the chain.
    const [second] = await store.execute(
      account,
      'acct-2',
      'deposit',
      { cents: 5 },
      { correlationId: commandId, causationId: first!.id },
    );
    expect(second!.meta).toMatchObject({
      [COMMAND_META.correlationId]: commandId,
      [COMMAND_META.causationId]: first!.id,
    });
    await store.append('other', { type: 'Deposited', data: { cents: 1 } });
    expect((await store.read({ correlationId: commandId })).map((e) => e.id)).toEqual([
      first!.id,
      second!.id,
    ]);
    expect((await store.read({ causationId: first!.id })).map((e) => e.id)).toEqual([second!.id]);
    await expect(store.read({ correlationId: '' })).rejects.toBeInstanceOf(ValidationError);
    await store.close();
  });

  it('runs a command with an id of the application once: again, it resolves with the same events', async () => {
    const store = await open();
    await store.execute(account, 'acct-1', 'deposit', { cents: 100 });
    const once = await store.execute(
      account,
      'acct-1',
      'withdraw',
      { cents: 70 },
      { commandId: 'w-1' },
    );
    expect(once.map((e) => e.id)).toEqual(['w-1:0']);
    // Run again (the answer was lost): the balance, 30, would refuse it now; it is not run.
    const again = await store.execute(
      account,
      'acct-1',
      'withdraw',
      { cents: 70 },
      { commandId: 'w-1' },
    );
    expect(again).toEqual(once);
    expect(await store.read({ stream: 'acct-1' })).toHaveLength(2);
    await expect(
      store.execute(account, 'acct-2', 'withdraw', { cents: 1 }, { commandId: 'w-1' }),
    ).rejects.toBeInstanceOf(ValidationError);
    await store.close();
  });

  it('appends nothing for a command that decides nothing, and lets a handler’s own error through', async () => {
    const store = await open();
    expect(await store.execute(account, 'acct-1', 'noop', null)).toEqual([]);
    await expect(store.execute(account, 'acct-1', 'broken', null)).rejects.toThrow(
      'a bug in the handler',
    );
    expect(await store.read()).toEqual([]);
    await store.close();
  });

  it('refuses an aggregate or a command it does not know with NOT_FOUND', async () => {
    const store = await open();
    await expect(store.execute('nope', 'acct-1', 'deposit', { cents: 1 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(store.execute('account', 'acct-1', 'steal', null)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      store.execute(account, 'acct-1', 'deposit', { cents: 1 }, { maxAttempts: 0 }),
    ).rejects.toBeInstanceOf(ValidationError);
    await store.close();
    await expect(
      openStore({ name: 'x', storage: memoryStorage(), aggregates: [account, account] }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('lets exactly the withdrawals the balance allows through when they race on one store', async () => {
    const store = await open();
    await store.execute(account, 'acct-1', 'deposit', { cents: 100 });
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        outcome(store.execute(account, 'acct-1', 'withdraw', { cents: 30 }, { maxAttempts: 20 })),
      ),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(3);
    expect(results.filter((r) => r === 'INSUFFICIENT_FUNDS')).toHaveLength(7);
    expect(balanceNeverNegative(await store.read({ stream: 'acct-1' }))).toBe(true);
    await store.close();
  });

  it('reports ConcurrencyError once a command has used its attempts', async () => {
    const store = await open();
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        outcome(store.execute(account, 'acct-1', 'deposit', { cents: 1 }, { maxAttempts: 1 })),
      ),
    );
    expect(results).toContain('CONCURRENCY');
    const stored = await store.read({ stream: 'acct-1' });
    expect(stored).toHaveLength(results.filter((r) => r === 'ok').length);
    await store.close();
  });
});

describe('store.execute on two handles of one IndexedDB database (two tabs)', () => {
  it('keeps every rule under random commands racing from both (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            round: fc.integer({ min: 0, max: 2 }),
            handle: fc.integer({ min: 0, max: 1 }),
            account: fc.constantFrom('acct-a', 'acct-b'),
            command: fc.constantFrom('deposit', 'withdraw', 'withdraw'),
            cents: fc.integer({ min: 1, max: 60 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        async (commands) => {
          const factory = new IDBFactory();
          const stores: EventStore<AccountEvents>[] = [];
          for (let i = 0; i < 2; i++) {
            stores.push(
              await openStore<AccountEvents>({
                name: 'tabs',
                storage: indexedDbStorage('tabs', { indexedDB: factory }),
                aggregates: [account],
              }),
            );
          }
          try {
            // Rounds run one after another; the commands of a round race each other.
            const results: string[] = [];
            for (let round = 0; round <= 2; round++) {
              const racing = commands.filter((c) => c.round === round);
              results.push(
                ...(await Promise.all(
                  racing.map((c) =>
                    outcome(
                      stores[c.handle]!.execute(
                        account,
                        c.account,
                        c.command as 'withdraw',
                        // Deposits are larger: racing withdrawals then often fit one by one
                        // but not together, the case expectedVersion is there for.
                        { cents: c.command === 'deposit' ? c.cents * 3 : c.cents },
                        { maxAttempts: 50 },
                      ),
                    ),
                  ),
                )),
              );
            }
            expect(results.every((r) => r === 'ok' || r === 'INSUFFICIENT_FUNDS')).toBe(true);
            for (const stream of ['acct-a', 'acct-b']) {
              const events = await stores[0]!.read({ stream });
              expect(balanceNeverNegative(events)).toBe(true);
              // One version, one event: no two decisions stood on the same state.
              expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
            }
            const accepted = results.filter((r) => r === 'ok').length;
            expect(await stores[1]!.read()).toHaveLength(accepted);
          } finally {
            for (const s of stores) await s.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
