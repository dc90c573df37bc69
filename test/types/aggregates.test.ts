/**
 * Type-level tests of aggregates and commands (core/aggregate.ts, EventStore.execute). `tsc
 * --noEmit` (npm test's typecheck) checks this file: a loosened type makes an `@ts-expect-error`
 * line unused, or an `expectTypeOf` line fail. The runtime parts run on a memory store.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  type CommandContext,
  defineAggregate,
  type EventStore,
  memoryStorage,
  openStore,
  reject,
  type StoredEvent,
} from '../../src/index.ts';
import { type AccountEvents, account } from '../store/fixtures/account.ts';

describe('aggregate types', () => {
  it('checks the command name and its input, and types what execute resolves to', async () => {
    const store: EventStore<AccountEvents> = await openStore<AccountEvents>({
      name: 'types',
      storage: memoryStorage(),
      aggregates: [account],
    });
    const events = await store.execute(account, 'acct-1', 'deposit', { cents: 5 });
    expectTypeOf(events).toEqualTypeOf<StoredEvent<AccountEvents>[]>();
    await store.execute(account, 'acct-1', 'noop', null);
    // @ts-expect-error the account has no command "steal"
    await store.execute(account, 'acct-1', 'steal', { cents: 5 }).catch(() => {});
    // @ts-expect-error deposit takes { cents: number }
    await store.execute(account, 'acct-1', 'deposit', { cents: 'five' }).catch(() => {});
    // By name the command is loose, as state('name') is.
    await store.execute('account', 'acct-1', 'deposit', { cents: 1 });
    await store.close();
  });

  it('types a handler’s state, input and context, and its events against the event map', () => {
    const counter = defineAggregate({
      name: 'counter',
      initial: () => 0,
      apply: (n: number, e: StoredEvent<AccountEvents>) => n + (e.type === 'Deposited' ? 1 : 0),
      commands: {
        bump: (n: number, input: { by: number }, context: CommandContext) => {
          expectTypeOf(context.version).toEqualTypeOf<number>();
          return n + input.by > 10
            ? reject('TOO_MANY')
            : { type: 'Deposited' as const, data: { cents: input.by } };
        },
      },
    });
    expectTypeOf(counter.initial()).toEqualTypeOf<number>();
    defineAggregate({
      name: 'wrong',
      initial: () => 0,
      apply: (n: number, _e: StoredEvent<AccountEvents>) => n,
      commands: {
        // @ts-expect-error 'Stolen' is not an event type of AccountEvents
        steal: (_n: number, _input: null) => ({ type: 'Stolen' as const, data: { cents: 1 } }),
      },
    });
  });
});
