/// <reference lib="dom" preserve="true" />
/**
 * The devtools panel's parts (panel.ts puts them together): a DOM helper, the status line's
 * words, a state as a tree, and one projection's tools (determinism check, state then, rebuild).
 * Everything from the store is shown as text, never parsed as HTML (panel.ts invariant 2).
 */
import type { SyncStatus } from '../core/sync-types.ts';
import type { AnyProjection } from '../store/typed.ts';
import type { EventStore, ProjectionInfo } from '../store/types.ts';
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
  if (status.tentative !== undefined) parts.push(`${status.tentative} tentative`);
  if (status.rejected !== undefined && status.rejected.length > 0) {
    parts.push(`${status.rejected.length} rejected by the server`);
  }
  if (status.unreadable !== undefined) {
    parts.push(
      `${status.unreadable.events} unreadable (UNREADABLE: key ${status.unreadable.keys.join(', ')})`,
    );
  }
  if (status.tampered !== undefined && status.tampered.length > 0) {
    const reasons = [...new Set(status.tampered.map((t) => t.reason))].join(', ');
    parts.push(`${status.tampered.length} tampered (TAMPERED: ${reasons})`);
  }
  return parts.join(' · ');
}

/** One row per connection (SyncStatus.connections): who, how, and how far. */
export function connectionRows(status: SyncStatus): HTMLElement[] {
  const connections = status.connections ?? [];
  if (connections.length === 0) return [el('li', { class: 'none' }, 'No connection')];
  return connections.map((c) => {
    const parts = [
      `${c.transport}${c.server ? ' to a sync server' : ''}`,
      c.peer === undefined ? 'peer not known yet' : `peer ${c.peer}`,
      c.state,
      `pending ${c.pending}`,
      c.lastSyncedAt === undefined ? 'never synced' : `synced ${clock(c.lastSyncedAt)}`,
    ];
    if (c.lastError !== undefined) parts.push(`error ${c.lastError.code}: ${c.lastError.message}`);
    return el('li', { 'data-state': c.state }, parts.join(' · '));
  });
}

/** The appends the server rejected (SyncStatus.rejected), newest first, and what became of them. */
export function rejectedRows(status: SyncStatus): HTMLElement[] {
  const rejected = status.rejected ?? [];
  if (rejected.length === 0) return [el('li', { class: 'none' }, 'Nothing rejected')];
  return [...rejected].reverse().map((r) => {
    const command = r.command;
    const what =
      command === undefined
        ? `${r.eventIds.length} event${r.eventIds.length === 1 ? '' : 's'} of ${r.stream}`
        : `${command.aggregate}.${command.name} on ${r.stream}`;
    const outcome =
      command === undefined
        ? 'taken out'
        : command.outcome === 'rejected'
          ? `refused on the new state: ${command.reason ?? ''} ${command.message ?? ''}`.trim()
          : command.outcome;
    return el('li', {}, `${clock(r.at)} ${what} (${r.reason}) → ${outcome}`);
  });
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

/** A projection's version and the snapshots kept of it (store.inspect). */
export function snapshotText(info: ProjectionInfo): string {
  const last = info.snapshots[info.snapshots.length - 1];
  const every =
    info.snapshotEvery === 0 ? 'no snapshots' : `a snapshot every ${info.snapshotEvery} events`;
  return last === undefined
    ? `version ${info.version} · ${every} · none kept yet`
    : `version ${info.version} · ${every} · last snapshot after ${last.events} events (position ${last.position}) · ${info.snapshots.length} kept`;
}
