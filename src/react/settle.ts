/**
 * settle(): the next snapshot a hook hands to React, made from the value the store emitted and
 * the snapshot React holds.
 *
 * Invariants:
 * 1. A value structurally equal to the held snapshot is the held snapshot itself, so React's
 *    useSyncExternalStore sees no change and does not render.
 * 2. Parts that did not change keep their references (structural sharing), so memoised children
 *    of an unchanged todo do not render either.
 * 3. The result never aliases the emitted value: in-process stores hand watchers the state object
 *    a projection may go on mutating (defineProjection: "it may return the mutated one"), and a
 *    snapshot that changes under React would tear. Plain objects and arrays are copied; other
 *    objects (Date, Map, ...) are structured-cloned when they can be and never compared equal;
 *    functions and uncloneable objects are passed as they are.
 */

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sets an own property, `__proto__` included (plain assignment would set the prototype). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else target[key] = value;
}

export function settle<T>(held: unknown, next: T): T {
  return settleValue(held, next) as T;
}

function settleValue(held: unknown, next: unknown): unknown {
  if (Array.isArray(next)) {
    const before = Array.isArray(held) ? (held as unknown[]) : undefined;
    let same = before !== undefined && before.length === next.length;
    const out: unknown[] = new Array(next.length);
    for (let i = 0; i < next.length; i++) {
      const value = settleValue(before?.[i], next[i]);
      out[i] = value;
      if (same && !Object.is(value, before![i])) same = false;
    }
    return same ? held : out;
  }
  if (isPlainObject(next)) {
    const before = isPlainObject(held) ? held : undefined;
    const keys = Object.keys(next);
    let same = before !== undefined && Object.keys(before).length === keys.length;
    const out: Record<string, unknown> =
      Object.getPrototypeOf(next) === null ? Object.create(null) : {};
    for (const key of keys) {
      const had = before !== undefined && Object.hasOwn(before, key);
      const value = settleValue(had ? before[key] : undefined, next[key]);
      put(out, key, value);
      if (same && !(had && Object.is(value, before[key]))) same = false;
    }
    return same ? held : out;
  }
  if (next === null || typeof next !== 'object') return Object.is(held, next) ? held : next;
  try {
    return structuredClone(next);
  } catch {
    return next;
  }
}
