/**
 * The board's WIP-limit notices: a move into Doing whose lane entry the server refused goes
 * back where it came from (an event every device shows), and the moves back, with a refusal of
 * this device's own (Doing full here), are told above the board until dismissed.
 *
 * Invariants:
 * 1. A refused entry is moved back once: its event's id is the entry's command id + `:back`, and
 *    a move back already in the log (this page's, another tab's or a reload's) settles it.
 * 2. A dismissed notice stays dismissed on this device (localStorage, per board).
 */
import type { EventStore, RejectedAppend, StoredEvent } from '../../src/index.ts';
import {
  type BoardState,
  cardOfStream,
  cardStream,
  type EventMap,
  endOf,
  newEvent,
} from './board.ts';
import { byId } from './dom.ts';
import { LANE_COLUMN, parseEntryCommandId } from './lane.ts';

/** What the notices read of the page. */
export interface WipNoticesHost {
  store: EventStore<unknown>;
  /** The board's database name: dismissals are kept per board. */
  db: string;
  /** The loaded log (loaded-log.ts), oldest first. */
  log(): readonly StoredEvent<unknown>[];
  present(): BoardState;
  deviceName(replica: string): string;
}

export class WipNotices {
  /** Moves back already asked for (settleRefused). */
  private readonly settled = new Set<string>();
  private message: string | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly host: WipNoticesHost;

  constructor(host: WipNoticesHost) {
    this.host = host;
  }

  /**
   * A move into Doing whose lane entry the server refused (lane.ts invariant 2): the card goes
   * back where it came from, with an event that says why, so every device tells it. Its id is
   * the entry's command id + `:back`: whichever reload or tab sees the refusal appends it once.
   */
  settleRefused(rejected: readonly RejectedAppend[] = []): void {
    for (const entry of rejected) {
      const command = entry.command;
      if (command?.aggregate !== 'lane' || command.name !== 'enter') continue;
      if (command.outcome !== 'rejected') continue;
      const origin = parseEntryCommandId(command.commandId);
      if (origin === undefined) continue;
      const id = `${command.commandId}:back`;
      if (this.settled.has(id)) continue;
      // Settled once the move back is in the log (this page's, or another tab's or a reload's).
      if (this.host.log().some((e) => e.id === id)) {
        this.settled.add(id);
        continue;
      }
      const card = this.host.present().cards[origin.card];
      if (card === undefined || card.column !== LANE_COLUMN) continue;
      this.settled.add(id);
      const column = this.host.present().columns[origin.from] ? origin.from : 'todo';
      const data: EventMap['CardMoved'] = {
        column,
        position: endOf(this.host.present(), column),
        refused: {
          column: LANE_COLUMN,
          reason: command.reason ?? 'REFUSED',
          message: command.message ?? 'the server refused it',
        },
      };
      // Caused by the refused command, of the same user action (Activity: "because of …").
      const meta = { $correlationId: command.commandId, $causationId: command.commandId };
      this.host.store
        .append(cardStream(card.id), { id, ...newEvent('CardMoved', data), meta })
        .catch((error: unknown) => console.error('moving the card back failed', error));
    }
  }

  /** The moves back of refused entries (settleRefused), newest first, not dismissed here. */
  render(): void {
    const list = byId('wip-notices');
    const dismissed = new Set<string>(
      JSON.parse(
        localStorage.getItem(`chronicle-demo:wip-dismissed:${this.host.db}`) ?? '[]',
      ) as string[],
    );
    const notices = this.host
      .log()
      .filter(
        (e) => e.type === 'CardMoved' && (e.data as EventMap['CardMoved']).refused !== undefined,
      )
      .filter((e) => !dismissed.has(e.id))
      .slice(-3)
      .reverse();
    const items = notices.map((event) => {
      const data = event.data as EventMap['CardMoved'];
      const card = cardOfStream(event.stream) ?? '';
      const title = this.host.present().cards[card]?.title ?? 'a card';
      const to = this.host.present().columns[data.column]?.title ?? data.column;
      const p = document.createElement('p');
      p.className = 'wip-notice';
      p.setAttribute('role', 'status');
      p.textContent = `⚠ “${title}” went back to ${to}: ${data.refused?.message ?? ''} (moved on ${this.host.deviceName(event.replica)}). `;
      const dismiss = document.createElement('button');
      dismiss.type = 'button';
      dismiss.textContent = 'Dismiss';
      dismiss.addEventListener('click', () => {
        dismissed.add(event.id);
        localStorage.setItem(
          `chronicle-demo:wip-dismissed:${this.host.db}`,
          JSON.stringify([...dismissed]),
        );
        this.render();
      });
      p.append(dismiss);
      return p;
    });
    if (this.message !== undefined) {
      const p = document.createElement('p');
      p.className = 'wip-notice';
      p.setAttribute('role', 'status');
      p.textContent = `⚠ ${this.message}`;
      items.unshift(p);
    }
    list.replaceChildren(...items);
  }

  /** A refusal on this device's own state (Doing full here): told until the next change. */
  show(message: string): void {
    this.message = message;
    this.render();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.message = undefined;
      this.render();
    }, 8000);
  }
}
