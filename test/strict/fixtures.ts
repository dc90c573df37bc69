/**
 * Aggregates with rules for the strict-stream tests (issue 19): the account of
 * test/store/fixtures/account.ts (balance never below zero) and a board column with a
 * work-in-progress limit.
 */
import { defineAggregate, reject, type StoredEvent } from '../../src/index.ts';
import { type AccountEvents, applyAccount } from '../store/fixtures/account.ts';

export type ColumnEvents = {
  CardEntered: { card: string };
  CardLeft: { card: string };
};

export type StrictEvents = AccountEvents & ColumnEvents;

export const WIP_LIMIT = 2;

export const applyColumn = (cards: string[], e: StoredEvent<ColumnEvents>): string[] =>
  e.type === 'CardEntered' ? [...cards, e.data.card] : cards.filter((c) => c !== e.data.card);

export const column = defineAggregate({
  name: 'column',
  initial: (): string[] => [],
  apply: applyColumn,
  commands: {
    enter: (cards: string[], { card }: { card: string }) =>
      cards.includes(card)
        ? reject('ALREADY_THERE', `${card} is in the column`)
        : cards.length >= WIP_LIMIT
          ? reject('WIP_LIMIT', `the column holds ${WIP_LIMIT} cards already`)
          : { type: 'CardEntered' as const, data: { card } },
    leave: (cards: string[], { card }: { card: string }) =>
      cards.includes(card)
        ? { type: 'CardLeft' as const, data: { card } }
        : reject('NOT_THERE', `${card} is not in the column`),
  },
});

/** Whether every prefix of a strict stream's accepted events keeps its aggregate's rule. */
export function ruleHolds(stream: string, events: readonly StoredEvent<StrictEvents>[]): boolean {
  if (stream.startsWith('account-')) {
    let balance = 0;
    for (const e of events) {
      balance = applyAccount(balance, e as StoredEvent<AccountEvents>);
      if (balance < 0) return false;
    }
    return true;
  }
  let cards: string[] = [];
  for (const e of events) {
    cards = applyColumn(cards, e as StoredEvent<ColumnEvents>);
    if (cards.length > WIP_LIMIT) return false;
  }
  return true;
}
