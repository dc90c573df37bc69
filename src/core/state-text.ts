/**
 * A projection's state as JSON text and back, for a snapshot that is sealed (store/sealed-log.ts):
 * sealing takes text, and snapshots in clear keep whatever structuredClone keeps. So the text
 * keeps what states commonly hold besides JSON: Map, Set, Date, undefined, NaN and ±Infinity.
 *
 * Invariants:
 * 1. stateFromText(stateToText(v)) is structurally equal to structuredClone(v) for every v made
 *    of JSON values, Map, Set, Date, undefined and non-finite numbers.
 * 2. An object of the app that happens to have a tag key ("$map", …) is escaped ("$obj"), so no
 *    state is read back as something else.
 */

const TAGS = ['$map', '$set', '$date', '$undef', '$num', '$obj'];

/** A key "__proto__" stays an own key (RELIABILITY 28), as structuredClone keeps it. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function encode(value: unknown): unknown {
  if (value === undefined) return { $undef: 1 };
  if (typeof value === 'number') return Number.isFinite(value) ? value : { $num: String(value) };
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Date) return { $date: value.getTime() };
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [encode(k), encode(v)]) };
  if (value instanceof Set) return { $set: [...value].map(encode) };
  if (Array.isArray(value)) return value.map(encode);
  const out: Record<string, unknown> = {};
  let tagged = false;
  for (const [key, v] of Object.entries(value)) {
    if (TAGS.includes(key)) tagged = true;
    define(out, key, encode(v));
  }
  return tagged ? { $obj: out } : out;
}

function decode(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(decode);
  const o = value as Record<string, unknown>;
  if ('$undef' in o) return undefined;
  if ('$num' in o) return Number(o.$num);
  if ('$date' in o) return new Date(o.$date as number);
  if ('$map' in o) {
    return new Map((o.$map as [unknown, unknown][]).map(([k, v]) => [decode(k), decode(v)]));
  }
  if ('$set' in o) return new Set((o.$set as unknown[]).map(decode));
  const source = ('$obj' in o ? o.$obj : o) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(source)) {
    define(out, key, decode(v));
  }
  return out;
}

export function stateToText(state: unknown): string {
  return JSON.stringify(encode(state));
}

export function stateFromText(text: string): unknown {
  return decode(JSON.parse(text));
}
