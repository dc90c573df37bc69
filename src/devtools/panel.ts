/// <reference lib="dom" preserve="true" />
/**
 * A development panel on a store (issue 15): the sync status, the latest events live (filter,
 * every field of one on click), projections' states live with a determinism check
 * (determinism.ts) for those given as objects, and the conflicts. Plain DOM in a
 * shadow root, so the app's CSS neither styles it nor is styled by it.
 *
 * Invariants:
 * 1. Read-only: it calls read, subscribe, state, watch, conflicts and sync.status/on, never a
 *    method that writes.
 * 2. Everything from events is shown as text (textContent), never parsed as HTML: an event's data
 *    cannot inject markup into the page.
 * 3. unmount() releases every listener it registered and removes what it added to the container;
 *    nothing it started runs after.
 * 4. At most MAX_EVENTS events are held; the newest first.
 */
import type { StoredEvent } from '../core/events.ts';
import type { SyncStatus } from '../core/sync-types.ts';
import { type AnyProjection, projectionName } from '../store/typed.ts';
import type { EventStore } from '../store/types.ts';
import { checkDeterminism } from './determinism.ts';
import { PANEL_CSS } from './panel-css.ts';

/** Events the panel holds and lists at most (invariant 4). */
export const MAX_EVENTS = 500;

export interface DevtoolsOptions {
  /** Projections whose state to show, live (objects or names; the store must have them). */
  projections?: readonly (string | AnyProjection)[];
}

type Tag = keyof HTMLElementTagNameMap;

function el<K extends Tag>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

const json = (value: unknown) => JSON.stringify(value, null, 2) ?? 'undefined';
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

function statusText(status: SyncStatus): string {
  const parts = [`sync: ${status.state}`, `pending ${status.pending}`];
  parts.push(
    status.lastSyncedAt === undefined
      ? 'never synced'
      : `last synced ${new Date(status.lastSyncedAt).toISOString()}`,
  );
  if (status.lastError !== undefined) {
    parts.push(`error ${status.lastError.code}: ${status.lastError.message}`);
  }
  if (status.refused !== undefined && status.refused.length > 0) {
    parts.push(`${status.refused.length} refused by a peer`);
  }
  return parts.join(' · ');
}

/**
 * The projection's state at a time or up to an event (store.state with `at`), beside the live
 * one above it: "2026-12-05T10:00:00Z", a time in ms, or an event id.
 */
function timeTravel(store: EventStore, name: string): HTMLElement {
  const at = el('input', {
    type: 'text',
    placeholder: 'A time (ISO or ms) or an event id',
    'aria-label': `State of ${name} at`,
  });
  const button = el('button', { type: 'button' }, 'State then');
  const result = el('pre', { class: 'then', 'data-then': name });
  button.addEventListener('click', async () => {
    const text = at.value.trim();
    if (text === '') return;
    const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    const when = Number.isNaN(ms) ? { eventId: text } : ms;
    try {
      result.textContent = json(await store.state(name, { at: when })); // invariant 2
      result.dataset.result = 'ok';
    } catch (error) {
      result.textContent = error instanceof Error ? error.message : String(error);
      result.dataset.result = 'failed';
    }
  });
  return el('div', { class: 'check' }, at, button, result);
}

const clip = (text: string) => (text.length > 400 ? `${text.slice(0, 400)}…` : text);

/** A button that folds the whole log twice with the projection and says whether they agree. */
function determinismCheck(store: EventStore, projection: AnyProjection): HTMLElement {
  const result = el('p', { class: 'determinism', 'data-determinism': projection.name });
  const button = el('button', { type: 'button' }, 'Check determinism');
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.textContent = 'Folding the log twice…';
    try {
      const outcome = checkDeterminism(projection, await store.read());
      result.dataset.result = outcome.deterministic ? 'deterministic' : 'differs';
      result.textContent = outcome.deterministic
        ? `Deterministic: two folds from scratch agree after each of ${outcome.events} events.`
        : `Not deterministic: two folds part ${
            outcome.index < 0
              ? 'at initial()'
              : `after event #${outcome.index + 1} (${outcome.eventId})`
          }. One gives ${clip(outcome.first)}; the other ${clip(outcome.second)}.`;
    } catch (error) {
      result.dataset.result = 'failed';
      result.textContent = `The check failed: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      button.disabled = false;
    }
  });
  return el('div', { class: 'check' }, button, result);
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
  const showStatus = (s: SyncStatus) => {
    status.textContent = statusText(s);
    status.dataset.state = s.state;
  };
  showStatus(store.sync.status());
  cleanups.push(store.sync.on('status', showStatus));

  // Events: the latest, newest first, live; a filter; one event's every field on click.
  let events: StoredEvent[] = [];
  const filter = el('input', {
    type: 'search',
    placeholder: 'Filter by stream, type or id',
    'aria-label': 'Filter events',
  });
  const count = el('span', { class: 'count' });
  const list = el('ol', { class: 'events', 'aria-label': 'Events, newest first' });
  const detail = el('pre', { class: 'detail', 'aria-label': 'The selected event' });
  let selected: string | undefined;
  /**
   * Own events not acknowledged by a peer: `pending` counts them, and own events leave in seq
   * order, so they are the `pending` highest own seqs.
   */
  let ownMaxSeq = 0;
  let pending = store.sync.status().pending;
  const localOnly = (e: StoredEvent) =>
    e.replica === store.replicaId && e.seq > ownMaxSeq - pending;
  const renderEvents = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = needle
      ? events.filter((e) =>
          [e.stream, e.type, e.id].some((field) => field.toLowerCase().includes(needle)),
        )
      : events;
    count.textContent = `${shown.length} of ${events.length} events`;
    list.replaceChildren(
      ...shown.map((e) => {
        const row = el(
          'li',
          { 'data-event': e.id, class: e.id === selected ? 'selected' : '' },
          el('time', {}, clock(e.time)),
          el('span', { class: 'type' }, e.type),
          el('span', { class: 'stream' }, `${e.stream} @${e.version}`),
          el('span', { class: 'origin' }, `${e.replica.slice(0, 8)}#${e.seq}`),
          el('span', { class: 'sync' }, localOnly(e) ? 'local only' : ''),
        );
        row.tabIndex = 0;
        const select = () => {
          selected = e.id;
          detail.textContent = json(e); // invariant 2
          renderEvents();
        };
        row.addEventListener('click', select);
        row.addEventListener('keydown', (event) => {
          if (event.key === 'Enter' || event.key === ' ') select();
        });
        return row;
      }),
    );
  };
  filter.addEventListener('input', renderEvents);
  cleanups.push(
    store.sync.on('status', (s) => {
      if (s.pending === pending) return;
      pending = s.pending;
      renderEvents();
    }),
  );
  const keep = (incoming: StoredEvent[]) => {
    for (const e of incoming) {
      if (e.replica === store.replicaId && e.seq > ownMaxSeq) ownMaxSeq = e.seq;
    }
    const seen = new Set(events.map((e) => e.id));
    const fresh = incoming.filter((e) => !seen.has(e.id)).reverse();
    events = [...fresh, ...events].slice(0, MAX_EVENTS);
  };
  void store.read({ reverse: true, limit: MAX_EVENTS }).then((latest) => {
    if (!mounted) return;
    keep([...latest].reverse());
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
    const state = el('pre', { 'data-projection': name }, '…');
    states.append(el('h3', {}, name), state);
    if (typeof projection !== 'string') states.append(determinismCheck(store, projection));
    states.append(timeTravel(store, name));
    cleanups.push(
      store.watch(name, (value) => {
        state.textContent = json(value); // invariant 2
      }),
    );
  }

  root.append(
    el(
      'section',
      { 'aria-label': 'Chronicle devtools' },
      el('header', {}, el('strong', {}, 'Chronicle'), replica, status),
      el('h2', {}, 'Events'),
      el('div', { class: 'tools' }, filter, count),
      list,
      detail,
      el('h2', {}, 'Projections'),
      options.projections?.length ? states : el('p', { class: 'none' }, 'None given'),
      el('h2', {}, 'Conflicts'),
      conflicts,
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
