/**
 * The work-in-progress limit of the Doing column (issue 19): at most WIP_LIMIT cards. The limit
 * is kept by an aggregate over a strict stream, `lane:<board>:doing`, whose order the sync server
 * decides: a move into Doing first enters the lane (a command), then moves the card.
 *
 * Invariants:
 * 1. A card enters the lane only while it holds fewer than WIP_LIMIT cards; leaving always
 *    succeeds. The lane's events name the card; the board's column is still the card's own
 *    CardMoved events (board.ts), so conflicts and deletes work as for any move.
 * 2. Two devices that each filled the last place offline both see their move at once; the
 *    server accepts one entry, the other device's is run again on the accepted lane and refused
 *    (WIP_LIMIT), and that device moves its card back with `refused` saying why (main.ts), an
 *    event every device shows as a notice and in Activity.
 * 3. An entry's command id names the card and the column it came from (`wip~<from>~<card>~<n>`),
 *    so whichever device or reload learns of its refusal can move the card back, and the move
 *    back has the id `<command id>:back`, so that it is appended once.
 */
import { defineAggregate, reject, type StoredEvent } from '../../src/index.ts';

export const WIP_LIMIT = 3;
export const LANE_COLUMN = 'doing';
export const laneStream = (board: string): string => `lane:${board}:${LANE_COLUMN}`;

export interface LaneEvents {
  CardEnteredLane: { card: string };
  CardLeftLane: { card: string };
}

const cardOf = (event: StoredEvent<unknown>): string | undefined => {
  const card = (event.data as { card?: unknown } | null)?.card;
  return typeof card === 'string' ? card : undefined;
};

export const lane = defineAggregate({
  name: 'lane',
  initial: (): string[] => [],
  apply: (cards: string[], event: StoredEvent<unknown>) => {
    const card = cardOf(event);
    if (card === undefined) return cards;
    if (event.type === 'CardEnteredLane') return cards.includes(card) ? cards : [...cards, card];
    if (event.type === 'CardLeftLane') return cards.filter((c) => c !== card);
    return cards;
  },
  commands: {
    enter: (cards: string[], { card }: { card: string }) =>
      cards.includes(card)
        ? []
        : cards.length >= WIP_LIMIT
          ? reject(
              'WIP_LIMIT',
              `Doing holds ${WIP_LIMIT} cards already (the work-in-progress limit)`,
            )
          : { type: 'CardEnteredLane', data: { card } },
    leave: (cards: string[], { card }: { card: string }) =>
      cards.includes(card) ? { type: 'CardLeftLane', data: { card } } : [],
  },
});

/** Invariant 3. */
export function entryCommandId(card: string, from: string): string {
  const n = Math.floor(Math.random() * 36 ** 6).toString(36);
  return `wip~${from}~${card}~${n}`;
}

export function parseEntryCommandId(id: string): { card: string; from: string } | undefined {
  const [tag, from, card] = id.split('~');
  return tag === 'wip' && from && card ? { card, from } : undefined;
}
