/**
 * The UTF-8 size of a value's JSON text, counted by walking the value instead of writing the
 * text: the sizes a sender plans batches with (event-codec.ts wireSize) and a receiver holds
 * each event to (maxEventBytes). Writing a signed event's meta to measure it was ~5% of a signed
 * catch-up's CPU; most strings (ids, names, base64url signatures, hashes and sealed data) need
 * no escape, and are measured by their length after one native scan.
 *
 * Invariants:
 * 1. jsonBytes(v) equals utf8Length(JSON.stringify(v)) for every value JSON.parse gives and
 *    every JsonValue a local append accepts (finite numbers, own enumerable keys, no toJSON).
 * 2. A string's size is its length + 2 when every character is printable ASCII other than `"`
 *    and `\`; else it is measured from its JSON text.
 */
import { utf8Length } from '../core/json.ts';

/** Printable ASCII that JSON writes as itself. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** The UTF-8 size of JSON.stringify(text) (invariant 2). */
export function jsonStringBytes(text: string): number {
  return PLAIN.test(text) ? text.length + 2 : utf8Length(JSON.stringify(text));
}

/** The UTF-8 size of JSON.stringify(value) (invariant 1); 0 for undefined, as JSON gives none. */
export function jsonBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return jsonStringBytes(value);
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'object': {
      if (value === null) return 4;
      if (Array.isArray(value)) {
        let bytes = value.length > 0 ? value.length + 1 : 2;
        for (const item of value) bytes += item === undefined ? 4 : jsonBytes(item);
        return bytes;
      }
      return objectBytes(value as Record<string, unknown>);
    }
    default:
      return 0;
  }
}

function objectBytes(object: Record<string, unknown>): number {
  let bytes = 1;
  let entries = 0;
  for (const key of Object.keys(object)) {
    const value = object[key];
    if (value === undefined || typeof value === 'function') continue;
    bytes += jsonStringBytes(key) + 2 + jsonBytes(value);
    entries += 1;
  }
  // Opening brace counted above; the closing one takes the place of the last comma.
  return entries === 0 ? 2 : bytes;
}
