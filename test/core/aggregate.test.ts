/** core/aggregate.ts invariants 1–4, without a store. */
import { describe, expect, it } from 'vitest';
import {
  COMMAND_META,
  decideCommand,
  defineAggregate,
  isRejection,
  reject,
} from '../../src/core/aggregate.ts';
import { NotFoundError, ValidationError } from '../../src/core/errors.ts';
import type { StoredEvent } from '../../src/core/events.ts';
import { account } from '../store/fixtures/account.ts';

const context = { stream: 'acct-1', version: 1, commandId: 'c-1', now: 0 };
const chain = { commandId: 'c-1', correlationId: 'user-action', causationId: 'e-9' };
const deposited = (cents: number) =>
  ({ type: 'Deposited', data: { cents }, stream: 'acct-1' }) as unknown as StoredEvent<{
    Deposited: { cents: number };
    Withdrawn: { cents: number };
  }>;

describe('decideCommand', () => {
  it('folds the events, asks the handler, and stamps the chain over the handler’s meta', () => {
    const decision = decideCommand(
      account,
      'withdraw',
      { cents: 30 },
      [deposited(50)],
      context,
      chain,
      false,
    );
    expect(decision).toEqual({
      kind: 'events',
      events: [
        {
          type: 'Withdrawn',
          data: { cents: 30 },
          meta: {
            [COMMAND_META.command]: 'withdraw',
            [COMMAND_META.commandId]: 'c-1',
            [COMMAND_META.correlationId]: 'user-action',
            [COMMAND_META.causationId]: 'e-9',
          },
        },
      ],
    });
    // Invariant 1: the same events decide the same.
    expect(
      decideCommand(account, 'withdraw', { cents: 30 }, [deposited(50)], context, chain, false),
    ).toEqual(decision);
  });

  it('names the events after the command when the application named it (invariant 3)', () => {
    const decision = decideCommand(account, 'deposit', { cents: 1 }, [], context, chain, true);
    expect(decision.kind === 'events' && decision.events.map((e) => e.id)).toEqual(['c-1:0']);
  });

  it('returns a rejection as a value, and refuses an unknown command with NOT_FOUND', () => {
    const decision = decideCommand(account, 'withdraw', { cents: 1 }, [], context, chain, false);
    expect(decision).toMatchObject({
      kind: 'rejected',
      rejection: { reason: 'INSUFFICIENT_FUNDS', message: 'only 0 cents left' },
    });
    expect(() => decideCommand(account, 'toString', null, [], context, chain, false)).toThrow(
      NotFoundError,
    );
  });
});

describe('defineAggregate and reject', () => {
  it('refuses a malformed declaration or reason with VALIDATION', () => {
    const ok = { name: 'a', initial: () => 0, apply: (n: number) => n, commands: {} };
    expect(() => defineAggregate({ ...ok, name: '' })).toThrow(ValidationError);
    expect(() => defineAggregate({ ...ok, commands: { x: 1 as never } })).toThrow(ValidationError);
    expect(() => reject('')).toThrow(ValidationError);
    expect(isRejection(reject('FULL'))).toBe(true);
    expect(reject('FULL')).toEqual({ rejected: true, reason: 'FULL', message: 'FULL' });
  });
});
