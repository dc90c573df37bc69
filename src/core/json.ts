/**
 * JSON values: validation, size and key-order-insensitive equality.
 *
 * Invariants:
 * 1. A JSON value holds only null, booleans, finite numbers, strings, arrays without holes and
 *    plain objects whose own enumerable string keys hold JSON values; no cycles. Values parsed
 *    from a peer's text are held to the same rule (parsedJsonUnfit): `1e400` parses as Infinity.
 * 2. `jsonEqual` compares as JSON values: object key order is ignored, array order is not.
 */
import { ValidationError } from './errors.ts';
import type { JsonValue } from './events.ts';

export { canonicalJson, canonicalJsonOmitting } from './canonical-json.ts';

export interface JsonLimits {
  /** Maximum nesting depth; deep nesting is an attack on recursive code. */
  maxDepth: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxDepth: 64 };

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Throws ValidationError at the first value that is not JSON, naming its path. */
export function assertJsonValue(
  value: unknown,
  path: string,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): void {
  const seen = new Set<object>();
  const visit = (v: unknown, p: string, depth: number): void => {
    if (depth > limits.maxDepth)
      throw new ValidationError(p, `nested deeper than ${limits.maxDepth}`);
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(v)) throw new ValidationError(p, `${v} is not a JSON number`);
        return;
      case 'undefined':
        throw new ValidationError(p, 'undefined is not a JSON value');
      case 'bigint':
        throw new ValidationError(p, 'a bigint is not a JSON value');
      case 'function':
        throw new ValidationError(p, 'a function is not a JSON value');
      case 'symbol':
        throw new ValidationError(p, 'a symbol is not a JSON value');
      case 'object': {
        if (v === null) return;
        if (seen.has(v)) throw new ValidationError(p, 'a cycle is not a JSON value');
        seen.add(v);
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            if (!(i in v))
              throw new ValidationError(`${p}[${i}]`, 'an array hole is not a JSON value');
            visit(v[i], `${p}[${i}]`, depth + 1);
          }
        } else {
          if (!isPlainObject(v)) {
            const name = (v as object).constructor?.name ?? 'unknown';
            throw new ValidationError(p, `a ${name} is not a plain JSON object`);
          }
          if (Object.getOwnPropertySymbols(v).length > 0) {
            throw new ValidationError(p, 'symbol keys are not JSON');
          }
          for (const key of Object.keys(v)) {
            visit((v as Record<string, unknown>)[key], `${p}.${key}`, depth + 1);
          }
        }
        seen.delete(v);
        return;
      }
      default:
        throw new ValidationError(p, 'not a JSON value');
    }
  };
  visit(value, path, 0);
}

/**
 * Deepest bracket nesting of a JSON text, outside strings; stops counting past `max`.
 * Checked before JSON.parse so that no recursive code ever sees a deeply nested message.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Strings are most of a message: jump to the closing quote natively (twice as fast as
      // stepping through every character), the first not escaped by an odd run of backslashes.
      for (;;) {
        const quote = text.indexOf('"', i + 1);
        if (quote < 0) return false; // unterminated: JSON.parse refuses it
        let before = quote - 1;
        while (text.charCodeAt(before) === 92 /* \ */) before--;
        i = quote;
        if ((quote - 1 - before) % 2 === 0) break;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth > max) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

/**
 * Whether a value fresh from JSON.parse is unfit to keep: nested deeper than `max` (the root is
 * depth 0, as in assertJsonValue), or holding a number JSON cannot carry. JSON.parse turns a
 * literal past the double range (`1e400`) into ±Infinity, which JSON.stringify would later write
 * as `null`: the event would be acknowledged and stored as something else (RELIABILITY 36).
 * No paths are built: this is the hot check of every decoded event; on `true`, assertJsonValue
 * says where and why.
 */
export function parsedJsonUnfit(value: unknown, max: number): boolean {
  return unfitWithin(value, 0, max);
}

// A function of the module, not a closure of each call: run from source under tsx, a closure is
// named (Object.defineProperty) every time it is made, and every received event is walked.
function unfitWithin(v: unknown, depth: number, max: number): boolean {
  if (depth > max) return true;
  if (typeof v !== 'object') return typeof v === 'number' && v - v !== 0;
  if (v === null) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (unfitWithin(v[i], depth + 1, max)) return true;
    return false;
  }
  for (const key in v) {
    if (Object.hasOwn(v, key) && unfitWithin((v as Record<string, unknown>)[key], depth + 1, max))
      return true;
  }
  return false;
}

/**
 * Size of the value's JSON text in UTF-8 bytes: utf8Length(JSON.stringify(value) ?? ''), counted
 * by walking the value instead of writing the text where it is plain JSON (strings, finite or not
 * numbers, booleans, null, arrays, objects of Object's or no prototype without toJSON). Senders
 * size every event of a batch by it and receivers hold each event to maxEventBytes by it: writing
 * a signed event's meta to measure it was ~5% of a signed catch-up's CPU. Anything else (a Date,
 * a class instance, a bigint) is measured from its JSON text, as before, so the answer (or the
 * error) is JSON.stringify's.
 */
export function jsonByteLength(value: unknown): number {
  const bytes = plainJsonBytes(value);
  return bytes >= 0 ? bytes : utf8Length(JSON.stringify(value) ?? '');
}

/** Printable ASCII that JSON writes as itself. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** The UTF-8 size of JSON.stringify(text): its length + 2 when nothing in it is escaped. */
export function jsonStringBytes(text: string): number {
  return PLAIN_TEXT.test(text) ? text.length + 2 : utf8Length(JSON.stringify(text));
}

/** jsonByteLength of a plain JSON value, or -1 where the walk cannot say (then the text does). */
function plainJsonBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return jsonStringBytes(value);
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'undefined':
      return 0;
    case 'object':
      break;
    default:
      return -1;
  }
  if (value === null) return 4;
  if (Array.isArray(value)) {
    let bytes = value.length > 0 ? value.length + 1 : 2;
    for (const item of value) {
      const size = item === undefined ? 4 : plainJsonBytes(item);
      if (size < 0) return -1;
      bytes += size;
    }
    return bytes;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return -1;
  const object = value as Record<string, unknown>;
  if (typeof object.toJSON === 'function') return -1;
  let bytes = 1;
  let entries = 0;
  for (const key of Object.keys(object)) {
    const item = object[key];
    if (item === undefined) continue;
    const size = plainJsonBytes(item);
    if (size < 0) return -1;
    bytes += jsonStringBytes(key) + 2 + size;
    entries += 1;
  }
  // The opening brace is counted above; the closing one takes the place of the last comma.
  return entries === 0 ? 2 : bytes;
}

const NON_ASCII = /[\u0080-\uffff]/;
/** Node's Buffer where there is one: it counts without copying. */
const nodeBuffer = (
  globalThis as { Buffer?: { byteLength(text: string, encoding: 'utf8'): number } }
).Buffer;
let encoder: TextEncoder | undefined;

export function utf8Length(text: string): number {
  // Node counts natively, short text too (100k data texts of 234 characters: 5.5 ms against 10
  // for the loop below).
  if (nodeBuffer !== undefined) return nodeBuffer.byteLength(text, 'utf8');
  return utf8LengthInBrowser(text);
}

/** utf8Length where there is no Buffer; exported for the tests, which run in Node. */
export function utf8LengthInBrowser(text: string): number {
  // Most text is ASCII: one native scan, no copy (a catch-up's messages in a worker: encoding each
  // to count it cost 50 ms per 50,000 events).
  if (!NON_ASCII.test(text)) return text.length;
  // Long text (whole messages): encoded natively.
  if (text.length > 4096) {
    encoder ??= new TextEncoder();
    return encoder.encode(text).length;
  }
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Equality of JSON values, ignoring object key order (invariant 2). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null) return false;
  if (typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const aKeys = Object.keys(ao);
  if (aKeys.length !== Object.keys(bo).length) return false;
  for (const key of aKeys) {
    if (!Object.hasOwn(bo, key) || !jsonEqual(ao[key], bo[key])) return false;
  }
  return true;
}

/**
 * A deep copy of a JSON value in which `__proto__`, `constructor` and `prototype` are own data
 * properties like any other (JSON.parse already does this; spreading or Object.assign do not).
 */
export function cloneJson<T extends JsonValue>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => cloneJson(item)) as T;
  const out: Record<string, JsonValue> = {};
  for (const key of Object.keys(value)) {
    Object.defineProperty(out, key, {
      value: cloneJson((value as Record<string, JsonValue>)[key]!),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out as T;
}
