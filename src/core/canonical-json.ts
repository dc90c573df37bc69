/**
 * The canonical JSON text of a value: every object's keys in sorted order (UTF-16 code units),
 * otherwise what JSON.stringify writes. Values jsonEqual calls equal have the same canonical
 * text. An event's digest (core/integrity.ts) takes one per event on the signer, the server and
 * every receiver, and a synthetic IV (core/sealing.ts 3) is made from one: so it is built for
 * speed, and its output is a format that stored signatures depend on.
 *
 * Invariants:
 * 1. canonicalJson(v) equals JSON.stringify of v with each object's keys sorted (the oracle in
 *    test/core/json.test.ts), for every JSON value (core/json.ts invariant 1).
 * 2. An object's sorted order comes from a small cache of shapes (its keys in their own order),
 *    each checked key by key before use, so a cache entry can only save a sort, never give
 *    another object's order. Apps write many objects of one shape (a card, a move): checking the
 *    keys costs less than sorting them and spares building each `"key":` text again. The cache
 *    is bounded (SHAPE_SLOTS entries, each of at most SHAPE_KEYS_MAX keys): a peer picks keys.
 * 3. Strings are quoted without JSON.stringify when nothing in them needs escaping; finite
 *    numbers are written as String does, which is what JSON.stringify writes for them.
 */

/** What JSON.stringify escapes in a string: quote, backslash, controls, and (lone) surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what it looks for.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quoted(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** An object's keys in their own order, and how to write them sorted (invariant 2). */
interface Shape {
  keys: readonly string[];
  /** Indexes into `keys`, in sorted order of the keys. */
  order: number[];
  /** For each place in sorted order, what comes before its value: `{"key":` or `,"key":`. */
  heads: string[];
}

const SHAPE_SLOTS = 256;
const SHAPE_KEYS_MAX = 64;
const shapes: (Shape | undefined)[] = new Array(SHAPE_SLOTS);

function slotOf(keys: readonly string[]): number {
  const first = keys[0]!;
  const last = keys[keys.length - 1]!;
  return (
    (keys.length * 31 + first.length * 7 + first.charCodeAt(0) + last.charCodeAt(last.length - 1)) &
    (SHAPE_SLOTS - 1)
  );
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function shapeOf(keys: readonly string[]): Shape {
  const slot = keys.length <= SHAPE_KEYS_MAX ? slotOf(keys) : -1;
  const cached = slot < 0 ? undefined : shapes[slot];
  if (cached !== undefined && sameKeys(cached.keys, keys)) return cached;
  const order = keys.map((_, i) => i);
  order.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  const heads = order.map((at, n) => `${n === 0 ? '{' : ','}${quoted(keys[at]!)}:`);
  const shape = { keys, order, heads };
  if (slot >= 0) shapes[slot] = shape;
  return shape;
}

/** Invariant 1. */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quoted(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return JSON.stringify(value) ?? 'null';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonicalJson(value[i]);
    }
    return `${out}]`;
  }
  return canonicalObject(value as Record<string, unknown>, undefined) ?? '{}';
}

/**
 * The canonical text of an object without its fields `omit` and `alsoOmit` (an event's digest
 * leaves its signature and tree path out), or undefined when no field is left: no copy of the
 * object to delete from.
 */
export function canonicalJsonOmitting(
  object: Record<string, unknown>,
  omit: string,
  alsoOmit?: string,
): string | undefined {
  return canonicalObject(object, omit, alsoOmit);
}

function canonicalObject(
  o: Record<string, unknown>,
  omit: string | undefined,
  alsoOmit?: string,
): string | undefined {
  const keys = Object.keys(o);
  if (keys.length === 0) return undefined;
  const { order, heads } = shapeOf(keys);
  let out = '';
  for (let n = 0; n < order.length; n++) {
    const key = keys[order[n]!]!;
    if (key === omit || key === alsoOmit) continue;
    // The first field written opens the object, whichever place it has in the order.
    if (out.length > 0) out += heads[n]!;
    else out = n === 0 ? heads[0]! : `{${heads[n]!.slice(1)}`;
    out += canonicalJson(o[key]);
  }
  return out.length === 0 ? undefined : `${out}}`;
}
