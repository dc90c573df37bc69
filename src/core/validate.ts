/**
 * Validation of what the application appends. A bad event rejects the whole batch (invariant 1
 * of append.ts: nothing of a batch is written unless all of it is).
 */
import { ValidationError } from './errors.ts';
import type { ExpectedVersion, JsonObject, JsonValue, NewEvent } from './events.ts';
import { assertJsonValue, jsonByteLength } from './json.ts';

export interface EventLimits {
  /**
   * Maximum encoded size of one event's data + meta, in UTF-8 bytes of JSON. Default 512 KiB,
   * what a sync server accepts by default; a store that learnt a peer's smaller limit appends
   * at most that (the store keeps it in the log's meta).
   */
  maxEventBytes: number;
  /** Maximum events in one append call. Default 10,000. */
  maxBatchEvents: number;
  maxTypeLength: number;
  maxStreamLength: number;
  maxIdLength: number;
  maxDepth: number;
}

export const DEFAULT_EVENT_LIMITS: EventLimits = {
  maxEventBytes: 512 * 1024,
  maxBatchEvents: 10_000,
  maxTypeLength: 256,
  maxStreamLength: 512,
  maxIdLength: 128,
  maxDepth: 64,
};

/** A new event that passed validation: data and meta are JSON, schema is set. */
export interface ValidNewEvent {
  id?: string;
  type: string;
  data: JsonValue;
  meta?: JsonObject;
  schema: number;
}

/**
 * Whether a string holds a UTF-16 surrogate without its pair. Ids and stream names are keys in
 * every storage, and SQLite and PostgreSQL store text as UTF-8, which cannot hold one: two
 * different names would become the same key. Such names are refused (data may hold anything).
 */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}

const LONE_SURROGATE = /\p{Cs}/u;
export const WELL_FORMED = 'must be well-formed Unicode (no lone surrogate)';

export function validateStream(
  stream: unknown,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): string {
  if (typeof stream !== 'string' || stream.length === 0) {
    throw new ValidationError('stream', 'must be a non-empty string');
  }
  if (stream.length > limits.maxStreamLength) {
    throw new ValidationError('stream', `longer than ${limits.maxStreamLength} characters`);
  }
  if (hasLoneSurrogate(stream)) throw new ValidationError('stream', WELL_FORMED);
  return stream;
}

export function validateExpectedVersion(value: unknown): ExpectedVersion {
  if (value === undefined || value === 'any') return 'any';
  if (value === 'none') return 'none';
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new ValidationError('expectedVersion', "must be a non-negative integer, 'any' or 'none'");
}

export function validateNewEvent(
  event: unknown,
  path: string,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): ValidNewEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new ValidationError(path, 'an event must be an object');
  }
  const e = event as Partial<NewEvent<unknown>> & Record<string, unknown>;
  if (typeof e.type !== 'string' || e.type.length === 0) {
    throw new ValidationError(`${path}.type`, 'must be a non-empty string');
  }
  if (e.type.length > limits.maxTypeLength) {
    throw new ValidationError(`${path}.type`, `longer than ${limits.maxTypeLength} characters`);
  }
  if (hasLoneSurrogate(e.type)) throw new ValidationError(`${path}.type`, WELL_FORMED);
  if (e.id !== undefined) {
    if (typeof e.id !== 'string' || e.id.length === 0 || e.id.length > limits.maxIdLength) {
      throw new ValidationError(
        `${path}.id`,
        `must be a non-empty string of at most ${limits.maxIdLength} characters`,
      );
    }
    if (hasLoneSurrogate(e.id)) throw new ValidationError(`${path}.id`, WELL_FORMED);
  }
  let schema = 1;
  if (e.schema !== undefined) {
    if (typeof e.schema !== 'number' || !Number.isSafeInteger(e.schema) || e.schema < 1) {
      throw new ValidationError(`${path}.schema`, 'must be a positive integer');
    }
    schema = e.schema;
  }
  if (!('data' in e)) throw new ValidationError(`${path}.data`, 'is required (use null for none)');
  const json = { maxDepth: limits.maxDepth };
  assertJsonValue(e.data, `${path}.data`, json);
  if (e.meta !== undefined) {
    if (typeof e.meta !== 'object' || e.meta === null || Array.isArray(e.meta)) {
      throw new ValidationError(`${path}.meta`, 'must be a plain object');
    }
    assertJsonValue(e.meta, `${path}.meta`, json);
  }
  const size = jsonByteLength(e.data) + (e.meta === undefined ? 0 : jsonByteLength(e.meta));
  if (size > limits.maxEventBytes) {
    throw new ValidationError(
      path,
      `encoded size ${size} bytes is over the limit of ${limits.maxEventBytes}`,
    );
  }
  const valid: ValidNewEvent = { type: e.type, data: e.data as JsonValue, schema };
  if (e.id !== undefined) valid.id = e.id;
  if (e.meta !== undefined) valid.meta = e.meta as JsonObject;
  return valid;
}

/** Validates a whole append call; throws at the first bad field, before anything is written. */
export function validateAppend(
  stream: unknown,
  events: unknown,
  expectedVersion: unknown,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): { stream: string; events: ValidNewEvent[]; expectedVersion: ExpectedVersion } {
  const s = validateStream(stream, limits);
  const list = Array.isArray(events) ? events : [events];
  if (list.length === 0) throw new ValidationError('events', 'an append needs at least one event');
  if (list.length > limits.maxBatchEvents) {
    throw new ValidationError('events', `more than ${limits.maxBatchEvents} events in one append`);
  }
  const valid = list.map((e, i) =>
    validateNewEvent(e, Array.isArray(events) ? `events[${i}]` : 'event', limits),
  );
  return { stream: s, events: valid, expectedVersion: validateExpectedVersion(expectedVersion) };
}
