/**
 * Renders the board: columns, their cards, and the controls that append events. The same view
 * shows the past (time travel) with every control read-only.
 */
import { type BoardState, type Card, type Column, cardsByColumn, sortedColumns } from './board.ts';
import type { ConflictNote, ConflictOption, DeletedNotice } from './conflicts.ts';
import { h, replaceChildrenKeepingFocus } from './dom.ts';

export type Direction = 'left' | 'right' | 'up' | 'down';

/** Alt+arrow keys on a card: where it moves. */
const ARROWS: Record<string, Direction | undefined> = {
  ArrowLeft: 'left',
  ArrowRight: 'right',
  ArrowUp: 'up',
  ArrowDown: 'down',
};

/** The drag data type of a card being moved. */
const CARD_TYPE = 'application/x-chronicle-card';

export interface BoardActions {
  addCard(column: string, title: string): void;
  renameCard(card: Card, title: string): void;
  moveCard(card: Card, direction: Direction): void;
  deleteCard(card: Card): void;
  /** An encrypted board's card erased for good (store.shred of its streams). */
  eraseCard(card: Card): void;
  openNotes(card: Card): void;
  showActivity(card: Card): void;
  addColumn(title: string): void;
  renameColumn(column: Column, title: string): void;
  deleteColumn(column: Column): void;
  /** Drops a card into `column`, before `before` (a card of that column) or at its end. */
  dropCard(card: string, column: string, before: string | undefined): void;
  /** Keeps one side of a card's conflict (conflicts.ts invariant 2). */
  keepConflictValue(card: Card, note: ConflictNote, option: ConflictOption): void;
  restoreCard(notice: DeletedNotice): void;
  dismissDeleted(notice: DeletedNotice): void;
}

export interface BoardViewInput {
  state: BoardState;
  readOnly: boolean;
  conflicts: Map<string, ConflictNote>;
  /** Cards deleted while another device changed them (conflicts.ts invariant 3). */
  deleted: DeletedNotice[];
  deviceName: (replica: string) => string;
  /** The board is encrypted: its cards can be erased (crypto-shredding). */
  erasable?: boolean;
}

/**
 * Each board's card elements by card id, with what they were drawn from: a render reuses the
 * element of a card whose inputs did not change. Rebuilding every card on every render kept a
 * new device busy for minutes while 7,000 cards arrived in batches.
 */
const drawn = new WeakMap<HTMLElement, Map<string, { inputs: string; element: HTMLElement }>>();

/**
 * Each board's column elements by column id, likewise, and its add-column form: the demo's mix
 * adds a column every 100 events (10,000 after 1M), and rebuilding them all for every render
 * cost more than the cards.
 */
const drawnColumns = new WeakMap<HTMLElement, Map<string, DrawnColumn>>();
const addColumnForms = new WeakMap<HTMLElement, HTMLFormElement>();

interface DrawnColumn {
  inputs: string;
  section: HTMLElement;
  list: HTMLElement;
}

/**
 * Draws the board; `budget`: the most cards drawn anew in this call (a card whose element is
 * reused costs nothing). Cards over it are left out, the top of every column first, and the
 * call returns false: the caller draws again soon with a larger budget. A device that joins
 * from a snapshot gets 7,000 cards at once; drawing them in one go kept its first card from
 * the screen for seconds (and 70,000 for a minute).
 */
export function renderBoard(
  container: HTMLElement,
  input: BoardViewInput,
  actions: BoardActions,
  budget = Number.POSITIVE_INFINITY,
): boolean {
  const columns = sortedColumns(input.state);
  const byColumn = cardsByColumn(input.state);
  const previous = drawn.get(container) ?? new Map();
  const next = new Map<string, { inputs: string; element: HTMLElement }>();
  const depth = drawDepth(columns, byColumn, previous, budget);
  const cards: CardElements = (card, place) => {
    const inputs = cardInputs(input, card, place);
    const old = previous.get(card.id);
    if (old?.inputs !== inputs && place.index >= depth) return undefined;
    const element = old?.inputs === inputs ? old.element : renderCard(input, actions, card, place);
    next.set(card.id, { inputs, element });
    return element;
  };
  const previousColumns = drawnColumns.get(container) ?? new Map<string, DrawnColumn>();
  const nextColumns = new Map<string, DrawnColumn>();
  const children: Node[] = columns.map((column, index) => {
    const list = byColumn.get(column.id) ?? [];
    const inputs = JSON.stringify([column.title, input.readOnly, list.length]);
    const old = previousColumns.get(column.id);
    const drawnColumn =
      old?.inputs === inputs ? old : { inputs, ...renderColumn(input, actions, column, list) };
    nextColumns.set(column.id, drawnColumn);
    const neighbours = { left: columns[index - 1], right: columns[index + 1] };
    const elements: HTMLElement[] = [];
    list.forEach((card, i) => {
      const element = cards(card, { index: i, count: list.length, ...neighbours });
      if (element !== undefined) elements.push(element);
    });
    if (!sameChildren(drawnColumn.list, elements)) drawnColumn.list.replaceChildren(...elements);
    return drawnColumn.section;
  });
  drawn.set(container, next);
  drawnColumns.set(container, nextColumns);
  if (!input.readOnly) {
    let form = addColumnForms.get(container);
    if (form === undefined) {
      form = addColumnForm(actions);
      addColumnForms.set(container, form);
    }
    children.push(form);
    children.unshift(...input.deleted.map((n) => deletedNotice(n, actions)));
  }
  container.classList.toggle('read-only', input.readOnly);
  if (!sameChildren(container, children)) replaceChildrenKeepingFocus(container, children);
  return depth === Number.POSITIVE_INFINITY;
}

/** Whether `parent` holds exactly `nodes`, in that order (then nothing needs to move). */
function sameChildren(parent: Node, nodes: readonly Node[]): boolean {
  const held = parent.childNodes;
  if (held.length !== nodes.length) return false;
  for (let i = 0; i < nodes.length; i++) if (held[i] !== nodes[i]) return false;
  return true;
}

/**
 * How deep into every column new card elements are drawn within `budget`: rows from the top,
 * across all columns, until the cards without an element to reuse would exceed it (reuse is
 * judged by id here; a changed card counts as new).
 */
function drawDepth(
  columns: readonly Column[],
  byColumn: ReadonlyMap<string, readonly Card[]>,
  previous: ReadonlyMap<string, unknown>,
  budget: number,
): number {
  if (!Number.isFinite(budget)) return Number.POSITIVE_INFINITY;
  const lists = columns.map((c) => byColumn.get(c.id) ?? []).filter((l) => l.length > 0);
  const deepest = Math.max(0, ...lists.map((l) => l.length));
  let fresh = 0;
  for (let row = 0; row < deepest; row++) {
    for (const list of lists) {
      const card = list[row];
      if (card !== undefined && !previous.has(card.id)) fresh += 1;
    }
    if (fresh > budget) return Math.max(1, row);
  }
  return Number.POSITIVE_INFINITY;
}

/** A card deleted on one device while another changed it: told, with Restore and Dismiss. */
function deletedNotice(notice: DeletedNotice, actions: BoardActions): HTMLElement {
  const restore = h(
    'button',
    { type: 'button', 'data-key': `restore:${notice.card}` },
    `Restore “${notice.title}”`,
  );
  restore.addEventListener('click', () => actions.restoreCard(notice));
  const dismiss = h('button', { type: 'button', 'data-key': `dismiss:${notice.card}` }, 'Dismiss');
  dismiss.addEventListener('click', () => actions.dismissDeleted(notice));
  return h(
    'p',
    { class: 'deleted-notice', role: 'status', 'data-card': notice.card },
    `⚠ “${notice.title}” was deleted on ${notice.deletedBy} while ${notice.changedBy.join(' and ')} changed it. `,
    restore,
    dismiss,
  );
}

/**
 * A title field that commits on Enter or when it loses focus, and reverts on Escape. A card's
 * (`wrap`) is a textarea whose lines wrap, so a long title is read whole; Enter still commits.
 */
function titleInput(options: {
  key: string;
  label: string;
  value: string;
  readOnly: boolean;
  className: string;
  commit: (title: string) => void;
  wrap?: boolean;
}): HTMLInputElement | HTMLTextAreaElement {
  const attributes = {
    class: options.className,
    'aria-label': options.label,
    value: options.value,
    'data-key': options.key,
    readonly: options.readOnly,
    maxlength: 200,
  };
  const input = options.wrap
    ? h('textarea', {
        ...attributes,
        // A first height for browsers without `field-sizing: content` (the CSS sizes the rest).
        rows: Math.max(1, Math.ceil(options.value.length / 26)),
      })
    : h('input', attributes);
  const commit = () => {
    delete input.dataset.dirty;
    const title = input.value.trim();
    if (title === '' || title === options.value) input.value = options.value;
    else options.commit(title);
  };
  input.addEventListener('input', () => {
    input.dataset.dirty = '1';
  });
  (input as HTMLElement).addEventListener('keydown', (event: KeyboardEvent) => {
    if (event.key === 'Enter') {
      event.preventDefault(); // a title has no line breaks: Enter saves it
      commit();
    }
    if (event.key === 'Escape') {
      delete input.dataset.dirty;
      input.value = options.value;
    }
  });
  input.addEventListener('blur', () => {
    if (input.dataset.dirty === '1') commit();
  });
  return input;
}

type Place = { index: number; count: number; left: Column | undefined; right: Column | undefined };
/** A card's element, or undefined when it is left for a later call (renderBoard's budget). */
type CardElements = (card: Card, place: Place) => HTMLElement | undefined;

/** Everything a card's element is drawn from (renderCard), as one comparable string. */
function cardInputs(input: BoardViewInput, card: Card, place: Place): string {
  return JSON.stringify([
    card.title,
    card.column,
    card.position,
    input.deviceName(card.changedBy),
    input.readOnly,
    input.erasable === true,
    place.left?.title,
    place.right?.title,
    place.index > 0,
    place.index < place.count - 1,
    input.conflicts.get(card.id) ?? null,
  ]);
}

/** A column's element and its (empty) card list; renderBoard fills the list. */
function renderColumn(
  input: BoardViewInput,
  actions: BoardActions,
  column: Column,
  cards: readonly Card[],
): { section: HTMLElement; list: HTMLElement } {
  const heading = h(
    'div',
    { class: 'column-head' },
    titleInput({
      key: `column-title:${column.id}`,
      label: `Column name (${column.title})`,
      value: column.title,
      readOnly: input.readOnly,
      className: 'column-title',
      commit: (title) => actions.renameColumn(column, title),
    }),
    h('span', { class: 'count', 'aria-label': `${cards.length} cards` }, String(cards.length)),
  );
  if (!input.readOnly && cards.length === 0) {
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'icon',
        'aria-label': `Delete column ${column.title}`,
        'data-key': `column-delete:${column.id}`,
      },
      '✕',
    );
    remove.addEventListener('click', () => actions.deleteColumn(column));
    heading.append(remove);
  }
  const list = h('ul', { class: 'cards', 'aria-label': `Cards in ${column.title}` });
  const section = h(
    'section',
    { class: 'column', 'data-column': column.id, 'aria-label': `Column ${column.title}` },
    heading,
    list,
  );
  if (input.readOnly) return { section, list };
  section.append(addCardForm(actions, column));
  // Drag and drop (the ◀ ▲ ▼ ▶ buttons do the same from the keyboard): onto a card puts the
  // dragged one before it, onto the column's free space at its end.
  section.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes(CARD_TYPE)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'move';
    section.classList.add('drop-target');
  });
  section.addEventListener('dragleave', (event) => {
    if (!section.contains(event.relatedTarget as Node | null))
      section.classList.remove('drop-target');
  });
  section.addEventListener('drop', (event) => {
    const dragged = event.dataTransfer?.getData(CARD_TYPE);
    section.classList.remove('drop-target');
    if (!dragged) return;
    event.preventDefault();
    const onto = (event.target as Element | null)?.closest<HTMLElement>('li.card')?.dataset.card;
    actions.dropCard(dragged, column.id, onto === dragged ? undefined : onto);
  });
  return { section, list };
}

function renderCard(
  input: BoardViewInput,
  actions: BoardActions,
  card: Card,
  place: Place,
): HTMLElement {
  const conflict = input.conflicts.get(card.id);
  const item = h(
    'li',
    {
      class: conflict ? 'card conflicted' : 'card',
      'data-card': card.id,
      draggable: input.readOnly ? 'false' : 'true',
    },
    h(
      'div',
      { class: 'card-head' },
      titleInput({
        key: `card-title:${card.id}`,
        label: `Card title (${card.title})`,
        value: card.title,
        readOnly: input.readOnly,
        className: 'card-title',
        commit: (title) => actions.renameCard(card, title),
        wrap: true,
      }),
    ),
  );
  if (conflict) {
    const badge = h(
      'button',
      {
        type: 'button',
        class: 'conflict-badge',
        'data-key': `conflict:${card.id}`,
        title: 'Show both events in the activity panel',
      },
      `⚠ Changed on ${conflict.devices.join(' and ')} at once; showing ${conflict.winner}'s change (applied last)`,
    );
    badge.addEventListener('click', () => actions.showActivity(card));
    item.append(badge);
    // Each side's own value, and a way to keep it (conflicts.ts invariant 2).
    const sides = h('ul', { class: 'conflict-sides', 'aria-label': 'The changes that met' });
    for (const option of conflict.options) {
      const row = h(
        'li',
        { 'data-event': option.eventId },
        h('span', {}, `${option.device}: ${option.label}${option.shown ? ' (shown)' : ''}`),
      );
      if (!input.readOnly && (option.shown || option.redo !== undefined)) {
        const keep = h(
          'button',
          {
            type: 'button',
            'data-key': `keep:${option.eventId}`,
            'aria-label': `Keep ${option.label} from ${option.device}`,
          },
          'Keep',
        );
        keep.addEventListener('click', () => actions.keepConflictValue(card, conflict, option));
        row.append(keep);
      }
      sides.append(row);
    }
    item.append(sides);
  }
  item.append(h('p', { class: 'by' }, `last changed on ${input.deviceName(card.changedBy)}`));
  if (input.readOnly) return item;
  // Keyboard drag: Alt+arrow on a card (or anything in it) moves it like the buttons do.
  item.addEventListener('keydown', (event) => {
    if (!event.altKey) return;
    const direction = ARROWS[event.key];
    if (direction === undefined) return;
    event.preventDefault();
    actions.moveCard(card, direction);
  });
  item.addEventListener('dragstart', (event) => {
    // Dragging the title's text selects it instead of moving the card.
    if ((event.target as Element | null)?.closest('input, textarea, button')) return;
    event.dataTransfer?.setData(CARD_TYPE, card.id);
    if (event.dataTransfer) event.dataTransfer.effectAllowed = 'move';
  });

  const button = (key: string, label: string, text: string, enabled: boolean, run: () => void) => {
    const b = h(
      'button',
      {
        type: 'button',
        class: 'icon',
        'aria-label': label,
        title: label,
        'data-key': `${key}:${card.id}`,
        disabled: !enabled,
      },
      text,
    );
    b.addEventListener('click', run);
    return b;
  };
  item.append(
    h(
      'div',
      { class: 'card-actions' },
      button('left', `Move ${card.title} to ${place.left?.title ?? '…'}`, '◀', !!place.left, () =>
        actions.moveCard(card, 'left'),
      ),
      button('up', `Move ${card.title} up`, '▲', place.index > 0, () =>
        actions.moveCard(card, 'up'),
      ),
      button('down', `Move ${card.title} down`, '▼', place.index < place.count - 1, () =>
        actions.moveCard(card, 'down'),
      ),
      button(
        'right',
        `Move ${card.title} to ${place.right?.title ?? '…'}`,
        '▶',
        !!place.right,
        () => actions.moveCard(card, 'right'),
      ),
      button('notes', `Notes of ${card.title}`, 'Notes', true, () => actions.openNotes(card)),
      ...(input.erasable
        ? [
            button('erase', `Erase ${card.title} for good`, 'Erase', true, () =>
              actions.eraseCard(card),
            ),
          ]
        : []),
    ),
  );
  // Beside the title, away from the move buttons, so that it is not pressed by mistake.
  item.firstElementChild?.append(
    button('delete', `Delete ${card.title}`, '✕', true, () => actions.deleteCard(card)),
  );
  return item;
}

/**
 * A column's field for a new card: Enter or its button adds. Not a `<form>`: with a form per
 * column (10,000 columns after 1M events of the demo's mix) and a field outside any form on every
 * card (its title), each frame of a board drawn in steps cost forms × cards in Chromium's own
 * form handling (autofill, by all signs): seconds, then minutes (README, "A new device").
 */
function addCardForm(actions: BoardActions, column: Column): HTMLElement {
  const id = `add-card-${column.id}`;
  const input = h('input', {
    id,
    name: 'title',
    placeholder: 'Add a card…',
    autocomplete: 'off',
    maxlength: 200,
    'data-key': `add-card:${column.id}`,
  });
  const add = h('button', { type: 'button' }, 'Add');
  const field = h(
    'div',
    { class: 'add-card', role: 'group', 'aria-label': `New card in ${column.title}` },
    h('label', { for: id, class: 'visually-hidden' }, `New card in ${column.title}`),
    input,
    add,
  );
  // Kept across re-renders while typing (replaceChildrenKeepingFocus).
  input.addEventListener('input', () => {
    input.dataset.dirty = '1';
  });
  const submit = () => {
    const title = input.value.trim();
    if (title === '') return;
    input.value = '';
    delete input.dataset.dirty;
    actions.addCard(column.id, title);
  };
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.isComposing) return;
    event.preventDefault();
    submit();
  });
  add.addEventListener('click', submit);
  return field;
}

function addColumnForm(actions: BoardActions): HTMLFormElement {
  const input = h('input', {
    id: 'add-column',
    name: 'title',
    placeholder: 'Add a column…',
    autocomplete: 'off',
    maxlength: 100,
    'data-key': 'add-column',
  });
  const form = h(
    'form',
    { class: 'column add-column' },
    h('label', { for: 'add-column', class: 'visually-hidden' }, 'New column'),
    input,
    h('button', { type: 'submit' }, 'Add column'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const title = input.value.trim();
    if (title === '') return;
    input.value = '';
    actions.addColumn(title);
  });
  return form;
}
