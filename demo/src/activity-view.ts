/**
 * The activity panel: the audit trail. Every event, newest first, as it was when it happened
 * (history-text.ts: what it did in words, the card and the device as they were named then; a
 * burst of note edits as one entry), its time, whether it reached the server, and its part in a
 * conflict.
 *
 * "Reached the server": the server holds a prefix of this replica's events by their dense `seq`
 * (main.ts computes how far: `ackedUpTo`). An event from another replica came to us through
 * the server, so it is there.
 *
 * Older entries (a bounded device, loaded-log.ts): "Show older" first shows more of what is
 * loaded, then asks for the page of history before it; the line under the list says while it
 * loads, and that older history is on the server when the device cannot reach it.
 */
import type { StoredEvent } from '../../src/index.ts';
import { type BoardState, type Card, cardOfStream } from './board.ts';
import { clock, h } from './dom.ts';
import type { HistoryEntry } from './history-text.ts';
import type { OlderState } from './loaded-log.ts';

export type ConflictRole = 'applied-last' | 'overridden';

export interface ActivityInput {
  /** The whole log in the total order (oldest first). */
  events: StoredEvent<unknown>[];
  /** The log as entries (history-text.ts), worked out once per read of the log (main.ts). */
  entries: HistoryEntry[];
  state: BoardState;
  replicaId: string;
  /** This replica's events up to this seq are on the server (main.ts, ackedUpTo). */
  ackedUpTo: number;
  conflictRoles: Map<string, ConflictRole>;
  deviceName: (replica: string) => string;
  /** While time travelling: the last event the board shows. */
  asOf: string | undefined;
  /** Puts a card back as an entry left it, with new events (main.ts); absent: read-only. */
  restore?: (card: string, as: Card | undefined, eventId: string) => void;
  /** The loaded entries start at the board's first event (loaded-log.ts). */
  complete: boolean;
  /** Where the page of older history stands. */
  older: OlderState;
  /** What this device keeps, in words (retention.ts). */
  keeps: string;
}

/** The "Show older" button, the line that says how older history stands, and what it asks. */
export interface OlderControls {
  button: HTMLButtonElement;
  status: HTMLElement;
  /** Load the page of history before the loaded entries (main.ts). */
  load: () => void;
}

const SHOWN = 200;

/** How older history stands, in words (empty: nothing to say). */
export function olderText(older: OlderState, complete: boolean, keeps: string): string {
  switch (older.kind) {
    case 'loading':
      return 'Loading older history…';
    case 'offline':
      return 'Older history is on the server: connect to see it.';
    case 'failed':
      return `Older history could not be loaded: ${older.message}`;
    default:
      return complete ? '' : keeps;
  }
}

export class ActivityView {
  private input: ActivityInput | undefined;

  private readonly list: HTMLOListElement;
  private readonly cardFilter: HTMLSelectElement;
  private readonly typeFilter: HTMLSelectElement;
  private readonly summary: HTMLElement;
  private readonly older: OlderControls;
  /** How many of the newest matching entries are shown. */
  private shown = SHOWN;
  private matching = 0;

  constructor(
    list: HTMLOListElement,
    cardFilter: HTMLSelectElement,
    typeFilter: HTMLSelectElement,
    summary: HTMLElement,
    older: OlderControls,
  ) {
    this.list = list;
    this.cardFilter = cardFilter;
    this.typeFilter = typeFilter;
    this.summary = summary;
    this.older = older;
    cardFilter.addEventListener('change', () => this.render());
    typeFilter.addEventListener('change', () => this.render());
    older.button.addEventListener('click', () => {
      // What is loaded first, then the page before it.
      if (this.matching > this.shown) {
        this.shown += SHOWN;
        this.render();
      } else {
        older.load();
      }
    });
  }

  update(input: ActivityInput): void {
    this.input = input;
    this.render();
  }

  /** Shows one card's events (the conflict badge links here). */
  filterByCard(card: string): void {
    // Fills the options first, so that the card can be chosen, even one without a loaded event.
    this.render(card);
    this.cardFilter.value = card;
    this.render();
    this.list.closest('section')?.scrollIntoView({ block: 'start' });
  }

  /** `pinned`: a card to offer in the filter even without a loaded event (filterByCard). */
  private render(pinned?: string): void {
    const input = this.input;
    if (input === undefined) return;
    const titles = cardTitles(input.events, input.state);
    // The chosen card stays a choice while it has no loaded event (cardTitles offers none).
    for (const card of [pinned, this.cardFilter.value]) {
      if (card !== undefined && card !== '' && !titles.has(card)) {
        titles.set(card, input.state.cards[card]?.title ?? card);
      }
    }
    fillOptions(
      this.cardFilter,
      'All cards',
      [...titles].map(([id, title]) => [id, title]),
    );
    const types = [...new Set(input.events.map((e) => e.type))].sort();
    fillOptions(
      this.typeFilter,
      'All types',
      types.map((t) => [t, t]),
    );

    const card = this.cardFilter.value;
    const type = this.typeFilter.value;
    // Each entry as it was (history-text.ts): its words, its card and device named as then.
    const matching = input.entries.filter((entry) => {
      const first = entry.events[0] as StoredEvent<unknown>;
      return (
        (card === '' || cardOfStream(first.stream) === card) && (type === '' || first.type === type)
      );
    });
    const ackedUpTo = input.ackedUpTo;
    // What caused an event (its `$causationId`: an event, or the command it came from).
    const summaryOf = new Map<string, string>();
    for (const entry of input.entries) {
      for (const e of entry.events) summaryOf.set(e.id, `${entry.subject}: ${entry.summary}`);
    }
    this.matching = matching.length;
    const rows = matching
      .slice(-this.shown)
      .reverse()
      .map((entry) => {
        const event = entry.events[0] as StoredEvent<unknown>;
        const own = event.replica === input.replicaId;
        const onServer =
          !own || entry.events.every((e) => e.replica !== input.replicaId || e.seq <= ackedUpTo);
        const role = input.conflictRoles.get(event.id);
        const asOf = entry.events.some((e) => e.id === input.asOf);
        const device = entry.device ?? input.deviceName(event.replica);
        return h(
          'li',
          {
            class: `event${role ? ` ${role}` : ''}${asOf ? ' as-of' : ''}`,
            'data-event': event.id,
            'data-events': String(entry.events.length),
            'data-type': event.type,
            'data-synced': onServer ? 'yes' : 'no',
          },
          h('span', { class: 'subject', title: event.stream }, entry.subject),
          h('time', { datetime: new Date(event.time).toISOString() }, clock(event.time)),
          entry.events.length > 1
            ? // A burst of note edits: one entry, each edit's time inside.
              h(
                'details',
                { class: 'summary' },
                h('summary', {}, entry.summary),
                h('ol', { class: 'burst' }, ...entry.events.map((e) => h('li', {}, clock(e.time)))),
              )
            : h('span', { class: 'summary' }, entry.summary),
          causeOf(event, summaryOf),
          h('span', { class: 'device' }, `${device}${own ? ' (this device)' : ''}`),
          h(
            'span',
            { class: onServer ? 'synced yes' : 'synced no' },
            onServer
              ? '✓ on server'
              : // A strict stream's event (lane.ts) is tentative until the server accepts it.
                event.meta?.$strict === true
                ? '… waiting for the server to accept'
                : '… only on this device',
          ),
          role &&
            h(
              'span',
              { class: 'conflict-role' },
              role === 'applied-last'
                ? '⚠ conflict: applied last (shown)'
                : '⚠ conflict: applied first (overridden)',
            ),
          asOf && h('span', { class: 'as-of-note' }, '⟵ time travel: the board as of this event'),
          restoreButton(input, entry),
        );
      });
    this.list.replaceChildren(...rows);
    const count = matching.length;
    const loaded = input.complete ? '' : ' loaded';
    this.summary.textContent =
      count > this.shown
        ? `${count} entries${loaded}, the newest ${this.shown} shown`
        : `${plural(count, 'entry', 'entries')}${loaded}`;
    this.renderOlder(input);
  }

  private renderOlder(input: ActivityInput): void {
    const more = this.matching > this.shown || !input.complete;
    this.older.button.hidden = !more;
    // aria-disabled, not disabled: the button keeps the focus while the page loads.
    this.older.button.setAttribute('aria-disabled', String(input.older.kind === 'loading'));
    this.older.status.textContent = olderText(input.older, input.complete, input.keeps);
    this.older.status.dataset.state = input.older.kind;
  }
}

/**
 * "because of …" under an event another caused (its meta's `$causationId`, set by commands and
 * by the demo's moves through the Doing lane): the cause's own entry, or the refusal it answers.
 */
function causeOf(
  event: StoredEvent<unknown>,
  summaryOf: ReadonlyMap<string, string>,
): HTMLElement | undefined {
  const cause = event.meta?.$causationId;
  if (typeof cause !== 'string' || cause === event.meta?.$commandId) return undefined;
  const refused = (event.data as { refused?: { message?: unknown } } | null)?.refused;
  const words =
    summaryOf.get(cause) ??
    (typeof refused?.message === 'string' ? 'the server refused its place in Doing' : undefined);
  return words === undefined ? undefined : h('span', { class: 'cause' }, `because of: ${words}`);
}

/**
 * "Back to here" on an entry that left a card (not its latest): puts the card back as it was
 * then, with new events (history is never rewritten). Absent where there is nothing to restore.
 */
function restoreButton(input: ActivityInput, entry: HistoryEntry): HTMLElement | undefined {
  const restore = input.restore;
  const card = entry.card;
  const last = entry.events.at(-1) as StoredEvent<unknown>;
  if (restore === undefined || card?.state === undefined) return undefined;
  const now = input.state.cards[card.id];
  const same =
    now !== undefined &&
    now.title === card.state.title &&
    now.column === card.state.column &&
    now.position === card.state.position;
  if (same) return undefined;
  const button = h(
    'button',
    {
      type: 'button',
      class: 'restore',
      'aria-label': `Back to here: “${card.state.title}” as it was at ${clock(last.time)}`,
    },
    'Back to here',
  );
  button.addEventListener('click', () => restore(card.id, card.state, last.id));
  return button;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The cards of the loaded events, by their current title (or last title before deletion): the
 * filter's choices. Only these: a card with no loaded event would filter to an empty list, and
 * an option for every card of the board cost a new device seconds per render (a `<select>` of
 * 21,000 options took Chromium 5 s to build and 6 s to lay out; 70,000 after 1M events).
 */
export function cardTitles(
  events: readonly StoredEvent<unknown>[],
  state: BoardState,
): Map<string, string> {
  const titles = new Map<string, string>();
  for (const event of events) {
    const card = cardOfStream(event.stream);
    if (card === undefined) continue;
    const title = (event.data as { title?: unknown } | null)?.title;
    if (typeof title === 'string') titles.set(card, title);
    else if (!titles.has(card)) titles.set(card, card);
  }
  for (const id of titles.keys()) {
    const now = state.cards[id];
    if (now !== undefined) titles.set(id, now.title);
  }
  return titles;
}

/** Replaces a select's options, keeping the chosen value when it still exists. */
function fillOptions(select: HTMLSelectElement, all: string, options: [string, string][]): void {
  const chosen = select.value;
  const wanted: [string, string][] = [['', all], ...options];
  // Compared before anything is built: a board of 7,000 cards has as many options, and the
  // Activity renders as often as a catch-up delivers.
  const same =
    select.options.length === wanted.length &&
    wanted.every(([v, l], i) => select.options[i]?.value === v && select.options[i]?.text === l);
  if (same) return;
  const next = wanted.map(([v, l]) => h('option', { value: v }, l));
  select.replaceChildren(...next);
  select.value = options.some(([v]) => v === chosen) ? chosen : '';
}
