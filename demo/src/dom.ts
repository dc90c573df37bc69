/** A tiny element builder: the demo needs no framework, only readable DOM code. */

type Attrs = Record<string, string | number | boolean | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`#${id} is missing from index.html`);
  return element as T;
}

/**
 * The formatter of clock(), made once: toLocaleTimeString builds one per call, which cost the
 * Activity more than the rest of its rows together.
 */
let clockFormat: Intl.DateTimeFormat | undefined;

/** hh:mm:ss in the user's locale. */
export function clock(ms: number): string {
  clockFormat ??= new Intl.DateTimeFormat(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  return clockFormat.format(ms);
}

/**
 * Replaces `container`'s children while keeping the focused control (by its data-key) focused,
 * with the caret and any text the user was still typing: the views re-render on every event,
 * and a keyboard user must not lose their place.
 */
export function replaceChildrenKeepingFocus(container: HTMLElement, children: Node[]): void {
  const active = document.activeElement;
  const inside = active !== null && container.contains(active);
  const key = inside && active instanceof HTMLElement ? active.dataset.key : undefined;
  const field = active instanceof HTMLInputElement || active instanceof HTMLTextAreaElement;
  const typing =
    field && active.dataset.dirty === '1'
      ? { value: active.value, start: active.selectionStart, end: active.selectionEnd }
      : undefined;
  container.replaceChildren(...children);
  if (key === undefined) return;
  const next = container.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`);
  if (next === null) return;
  next.focus();
  if (
    typing !== undefined &&
    (next instanceof HTMLInputElement || next instanceof HTMLTextAreaElement)
  ) {
    next.value = typing.value;
    next.dataset.dirty = '1';
    next.setSelectionRange(typing.start, typing.end);
  }
}
