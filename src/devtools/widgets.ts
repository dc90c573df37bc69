/// <reference lib="dom" preserve="true" />
/**
 * The devtools panel's parts (panel.ts puts them together): a DOM helper, the status line's
 * words, a state as a tree, and one projection's tools (determinism check, state then, rebuild).
 * Everything from the store is shown as text, never parsed as HTML (panel.ts invariant 2).
 */
import type { SyncStatus } from '../core/sync-types.ts';
import type { AnyProjection } from '../store/typed.ts';
import type { EventStore } from '../store/types.ts';
import { checkDeterminism } from './determinism.ts';

type Tag = keyof HTMLElementTagNameMap;

export function el<K extends Tag>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

export const json = (value: unknown) => JSON.stringify(value, null, 2) ?? 'undefined';
export const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

export function statusText(status: SyncStatus): string {
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
export function timeTravel(store: EventStore, name: string): HTMLElement {
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

/** Drops the projection's snapshots and folds the log again, saying how far it got. */
export function rebuildButton(store: EventStore, name: string): HTMLElement {
  const button = el('button', { type: 'button' }, 'Rebuild');
  const progress = el('span', { class: 'progress', 'data-rebuild': name });
  button.addEventListener('click', async () => {
    button.disabled = true;
    progress.textContent = 'Rebuilding…';
    try {
      await store.rebuild(name, (done, total) => {
        progress.textContent = `${done} of ${total} events folded`;
      });
      progress.dataset.result = 'done';
      progress.textContent = `Rebuilt: ${progress.textContent === 'Rebuilding…' ? 'no events' : progress.textContent}`;
    } catch (error) {
      progress.dataset.result = 'failed';
      progress.textContent = error instanceof Error ? error.message : String(error);
    } finally {
      button.disabled = false;
    }
  });
  return el('div', { class: 'check' }, button, progress);
}

/** Children listed per object or array of a state tree at most. */
const TREE_MAX = 200;

/**
 * A state as a tree: objects and arrays fold open and shut, leaves as JSON text (invariant 2 of
 * panel.ts). The top level starts open, and a node the user opened stays open when the state is
 * drawn again (`open` holds the paths). A node's children are drawn when it is first opened, so a
 * large state costs nothing until looked at.
 */
export function stateTree(value: unknown, open: Set<string>, key?: string, path = ''): HTMLElement {
  const label = key === undefined ? '' : `${key}: `;
  if (value === null || typeof value !== 'object') {
    return el('div', { class: 'leaf' }, `${label}${JSON.stringify(value) ?? 'undefined'}`);
  }
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((item, i) => [String(i), item])
    : Object.entries(value);
  const node = el(
    'details',
    { 'data-path': path },
    el(
      'summary',
      {},
      `${label}${Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`}`,
    ),
  );
  let drawn = false;
  const draw = () => {
    if (drawn) return;
    drawn = true;
    for (const [k, v] of entries.slice(0, TREE_MAX)) {
      node.append(stateTree(v, open, k, `${path}/${k}`));
    }
    if (entries.length > TREE_MAX) {
      node.append(el('div', { class: 'leaf' }, `… ${entries.length - TREE_MAX} more`));
    }
  };
  node.addEventListener('toggle', () => {
    if (node.open) {
      open.add(path);
      draw();
    } else if (path !== '') open.delete(path);
  });
  if (path === '' || open.has(path)) {
    node.open = true;
    draw();
  }
  return node;
}

const clip = (text: string) => (text.length > 400 ? `${text.slice(0, 400)}…` : text);

/** A button that folds the whole log twice with the projection and says whether they agree. */
export function determinismCheck(store: EventStore, projection: AnyProjection): HTMLElement {
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
