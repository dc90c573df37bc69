/// <reference lib="dom" preserve="true" />
/**
 * A development panel on a store (issue 15): the sync status, the latest events live (filter,
 * every field of one on click), projections' states live with a determinism check
 * (determinism.ts) for those given as objects, and the conflicts. Plain DOM in a
 * shadow root, so the app's CSS neither styles it nor is styled by it.
 *
 * Invariants:
 * 1. It appends nothing: it calls read, subscribe, state, watch, conflicts and sync.status/on;
 *    the only write is a projection's snapshots, by a rebuild the user asks for.
 * 2. Everything from events is shown as text (textContent), never parsed as HTML: an event's data
 *    cannot inject markup into the page.
 * 3. unmount() releases every listener it registered and removes what it added to the container;
 *    nothing it started runs after.
 * 4. At most MAX_EVENTS events are held, the newest first (the latest PAGE at mount, older pages
 *    on demand); only the rows in view are in the DOM, so 100,000 events scroll as smoothly as 10.
 */
import type { StoredEvent } from '../core/events.ts';
import type { SyncStatus } from '../core/sync-types.ts';
import { type AnyProjection, projectionName } from '../store/typed.ts';
import type { EventStore } from '../store/types.ts';
import { PANEL_CSS } from './panel-css.ts';
import {
  clock,
  connectionRows,
  determinismCheck,
  el,
  json,
  rebuildButton,
  rejectedRows,
  snapshotText,
  stateTree,
  statusText,
  timeTravel,
} from './widgets.ts';

/** Events the panel holds at most (invariant 4): loaded PAGE at a time, newest first. */
export const MAX_EVENTS = 200_000;
/** Events read at a time: the latest at mount, then each "older" page. */
export const PAGE = 1000;
/** Sync statuses listed in the history at most. */
const STATUS_KEPT = 50;
/** A row's height, and the rows drawn beyond those in view (the list is virtualised). */
const ROW_PX = 18;
const OVERSCAN = 10;
/** The viewport's height before it is laid out (a panel mounted hidden). */
const VIEW_PX = 288;

export interface DevtoolsOptions {
  /** Projections whose state to show, live (objects or names; the store must have them). */
  projections?: readonly (string | AnyProjection)[];
}

/**
 * Mounts the panel in `container`; returns the unmount function (invariant 3).
 *
 * @example
 * if (import.meta.env.DEV) {
 *   const { mountDevtools } = await import('@chronicle-es/store/devtools');
 *   mountDevtools(store, document.getElementById('devtools')!, { projections: [board] });
 * }
 */
export function mountDevtools(
  store: EventStore,
  container: HTMLElement,
  options: DevtoolsOptions = {},
): () => void {
  const host = el('div', { class: 'chronicle-devtools' });
  const root = host.attachShadow({ mode: 'open' });
  root.append(el('style', {}, PANEL_CSS));
  const cleanups: (() => void)[] = [];
  let mounted = true;

  // The status line (live).
  const replica = el('p', { class: 'replica', part: 'replica' }, `replica ${store.replicaId}`);
  const status = el('p', { class: 'status', part: 'status' });
  // The status's history since the panel opened, newest first (STATUS_KEPT at most).
  const history = el('ol', { class: 'history', 'aria-label': 'Sync status history' });
  const connections = el('ul', { class: 'connections', 'aria-label': 'Connections' });
  const rejected = el('ul', { class: 'rejected', 'aria-label': 'Rejected by the server' });
  const showStatus = (s: SyncStatus) => {
    status.textContent = statusText(s);
    status.dataset.state = s.state;
    connections.replaceChildren(...connectionRows(s));
    rejected.replaceChildren(...rejectedRows(s));
    history.prepend(el('li', {}, `${clock(Date.now())} ${statusText(s)}`));
    while (history.children.length > STATUS_KEPT) history.lastElementChild?.remove();
  };
  showStatus(store.sync.status());
  cleanups.push(store.sync.on('status', showStatus));

  // Events: newest first, live, older ones on demand; only the rows in view are in the DOM.
  const events: StoredEvent[] = [];
  const filter = el('input', {
    type: 'search',
    placeholder: 'Filter by stream, type, replica or id',
    'aria-label': 'Filter events',
  });
  const sinceInput = el('input', {
    type: 'datetime-local',
    step: '1',
    'aria-label': 'Events from (local time)',
  });
  const untilInput = el('input', {
    type: 'datetime-local',
    step: '1',
    'aria-label': 'Events until (local time)',
  });
  const count = el('span', { class: 'count' });
  const older = el('button', { type: 'button' }, `Load ${PAGE} older`);
  const list = el('ol', { class: 'events', 'aria-label': 'Events, newest first' });
  const viewport = el('div', { class: 'viewport' }, list);
  const detail = el('pre', { class: 'detail', 'aria-label': 'The selected event' });
  let selected: string | undefined;
  let shown: StoredEvent[] = [];
  /**
   * Own events not acknowledged by a peer: `pending` counts them, and own events leave in seq
   * order, so they are the `pending` highest own seqs.
   */
  let ownMaxSeq = 0;
  let pending = store.sync.status().pending;
  const localOnly = (e: StoredEvent) =>
    e.replica === store.replicaId && e.seq > ownMaxSeq - pending;
  const row = (e: StoredEvent, index: number) => {
    const item = el(
      'li',
      { 'data-event': e.id, class: e.id === selected ? 'selected' : '' },
      el('time', {}, clock(e.time)),
      el('span', { class: 'type' }, e.type),
      el('span', { class: 'stream' }, `${e.stream} @${e.version}`),
      el('span', { class: 'origin' }, `${e.replica.slice(0, 8)}#${e.seq}`),
      el('span', { class: 'sync' }, localOnly(e) ? 'local only' : ''),
    );
    item.style.top = `${index * ROW_PX}px`;
    item.tabIndex = 0;
    const select = () => {
      selected = e.id;
      detail.textContent = json(e); // invariant 2
      paint();
    };
    item.addEventListener('click', select);
    item.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') select();
    });
    return item;
  };
  /** Invariant 4: only the rows in view (and a few around) are in the DOM. */
  const paint = () => {
    const from = Math.max(0, Math.floor(viewport.scrollTop / ROW_PX) - OVERSCAN);
    const to = Math.min(
      shown.length,
      Math.ceil((viewport.scrollTop + (viewport.clientHeight || VIEW_PX)) / ROW_PX) + OVERSCAN,
    );
    list.style.height = `${shown.length * ROW_PX}px`;
    list.replaceChildren(...shown.slice(from, to).map((e, i) => row(e, from + i)));
  };
  const renderEvents = () => {
    const needle = filter.value.trim().toLowerCase();
    // Local times (datetime-local): an event's HLC wall time within [since, until].
    const since = sinceInput.value === '' ? -Infinity : new Date(sinceInput.value).getTime();
    const until = untilInput.value === '' ? Infinity : new Date(untilInput.value).getTime();
    shown =
      needle || sinceInput.value !== '' || untilInput.value !== ''
        ? events.filter(
            (e) =>
              e.time >= since &&
              e.time <= until &&
              (!needle ||
                [e.stream, e.type, e.id, e.replica].some((field) =>
                  field.toLowerCase().includes(needle),
                )),
          )
        : events;
    count.textContent = `${shown.length} of ${events.length} events held`;
    paint();
  };
  viewport.addEventListener('scroll', paint);
  filter.addEventListener('input', renderEvents);
  sinceInput.addEventListener('input', renderEvents);
  untilInput.addEventListener('input', renderEvents);
  cleanups.push(
    store.sync.on('status', (s) => {
      if (s.pending === pending) return;
      pending = s.pending;
      renderEvents();
    }),
  );
  /** The ids of `events`, kept beside it: a live batch is checked without a pass over all. */
  const held = new Set<string>();
  /** The events of `list` not held yet, now held. */
  const admit = (list: readonly StoredEvent[]): StoredEvent[] => {
    const fresh: StoredEvent[] = [];
    for (const e of list) {
      if (held.has(e.id)) continue;
      held.add(e.id);
      fresh.push(e);
    }
    return fresh;
  };
  /** Invariant 4: the oldest go beyond MAX_EVENTS. */
  const trim = () => {
    for (const e of events.splice(MAX_EVENTS)) held.delete(e.id);
  };
  const keep = (incoming: StoredEvent[]) => {
    for (const e of incoming) {
      if (e.replica === store.replicaId && e.seq > ownMaxSeq) ownMaxSeq = e.seq;
    }
    events.unshift(...admit(incoming).reverse());
    trim();
  };
  older.addEventListener('click', async () => {
    const oldest = events.at(-1);
    older.disabled = true;
    try {
      const page = await store.read({
        reverse: true,
        limit: PAGE,
        ...(oldest === undefined ? {} : { after: oldest.cursor }),
      });
      if (!mounted) return;
      events.push(...admit(page));
      trim();
      older.disabled = page.length < PAGE || events.length >= MAX_EVENTS;
      renderEvents();
    } catch {
      older.disabled = false;
    }
  });
  void store.read({ reverse: true, limit: PAGE }).then((latest) => {
    if (!mounted) return;
    keep([...latest].reverse());
    older.disabled = latest.length < PAGE;
    renderEvents();
  });

  // Conflicts: read again after events arrive, one read at a time.
  const conflicts = el('ul', { class: 'conflicts', 'aria-label': 'Conflicts' });
  let reading = false;
  let again = false;
  const readConflicts = async () => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const found = await store.conflicts();
        if (!mounted) return;
        conflicts.replaceChildren(
          ...(found.length === 0
            ? [el('li', { class: 'none' }, 'No conflicts')]
            : found.map((c) =>
                el(
                  'li',
                  {},
                  `${c.stream} @${c.version}: ${c.events
                    .map((e) => `${e.type} by ${e.replica.slice(0, 8)}`)
                    .join(' | ')}`,
                ),
              )),
        );
      } while (again && mounted);
    } catch {
      // A closed store: the panel stays as it was.
    } finally {
      reading = false;
    }
  };
  void readConflicts();
  cleanups.push(
    store.subscribe((incoming) => {
      keep(incoming);
      renderEvents();
      void readConflicts();
    }),
  );

  // Projections: each one's state, live.
  const states = el('div', { class: 'projections' });
  for (const projection of options.projections ?? []) {
    const name = projectionName(projection);
    const heading =
      typeof projection === 'string' ? name : `${name} (version ${projection.version})`;
    const view = el('div', { class: 'tree', 'aria-label': `State of ${name}` });
    const opened = new Set<string>();
    const state = el('pre', { 'data-projection': name }, '…');
    states.append(
      el('h3', {}, heading),
      view,
      el('details', { class: 'as-json' }, el('summary', {}, 'As JSON'), state),
    );
    // Its version and the snapshots the store keeps, read again as the state changes.
    const kept = el('p', { class: 'snapshots', 'data-snapshots': name }, '…');
    let inspecting = false;
    const inspect = async () => {
      if (inspecting || !mounted) return;
      inspecting = true;
      try {
        kept.textContent = snapshotText(await store.inspect(name));
      } catch {
        // A closed store: the line stays as it was.
      } finally {
        inspecting = false;
      }
    };
    states.append(kept);
    if (typeof projection !== 'string') states.append(determinismCheck(store, projection));
    states.append(timeTravel(store, name), rebuildButton(store, name));
    cleanups.push(
      store.watch(name, (value) => {
        state.textContent = json(value); // invariant 2
        view.replaceChildren(stateTree(value, opened));
        void inspect();
      }),
    );
  }

  root.append(
    el(
      'section',
      { 'aria-label': 'Chronicle devtools' },
      el('header', {}, el('strong', {}, 'Chronicle'), replica, status),
      el('h2', {}, 'Events'),
      el('div', { class: 'tools' }, filter, sinceInput, untilInput, count, older),
      viewport,
      detail,
      el('h2', {}, 'Projections'),
      options.projections?.length ? states : el('p', { class: 'none' }, 'None given'),
      el('h2', {}, 'Conflicts'),
      conflicts,
      el('h2', {}, 'Connections'),
      connections,
      el('h2', {}, 'Rejected by the server (strict streams)'),
      rejected,
      el('h2', {}, 'Sync status history'),
      history,
    ),
  );
  container.append(host);

  return () => {
    if (!mounted) return;
    mounted = false;
    for (const cleanup of cleanups.splice(0)) cleanup();
    host.remove();
  };
}
