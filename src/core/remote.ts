/**
 * Validation of events that arrive from another replica (sync). Nothing from the network is
 * trusted: every field is checked, the cursor and time (derived when absent) must agree with the HLC, and the copy
 * that is kept is rebuilt from JSON so that `__proto__` keys stay plain data.
 */
import { ValidationError } from './errors.ts';
import type { JsonObject, JsonValue, StoredEventRecord } from './events.ts';
import { decodeHlc, isHlc } from './hlc.ts';
import { Cursor, type EventId, type Hlc, ReplicaId, Seq } from './ids.ts';
import { cloneJson } from './json.ts';
import { DEFAULT_EVENT_LIMITS, type EventLimits, validateNewEvent } from './validate.ts';

const ALLOWED_KEYS = new Set([
  'id',
  'type',
  'data',
  'meta',
  'schema',
  'stream',
  'version',
  'replica',
  'seq',
  'hlc',
  'time',
  'cursor',
]);

export function validateRemoteEvent(
  value: unknown,
  path: string,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): StoredEventRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(path, 'an event must be an object');
  }
  const e = value as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!ALLOWED_KEYS.has(key)) throw new ValidationError(`${path}.${key}`, 'unknown field');
  }
  const base = validateNewEvent(e, path, limits);
  if (typeof e.id !== 'string') throw new ValidationError(`${path}.id`, 'is required');
  if (typeof e.stream !== 'string' || e.stream.length === 0) {
    throw new ValidationError(`${path}.stream`, 'must be a non-empty string');
  }
  if (e.stream.length > limits.maxStreamLength) {
    throw new ValidationError(`${path}.stream`, `longer than ${limits.maxStreamLength} characters`);
  }
  if (typeof e.version !== 'number' || !Number.isSafeInteger(e.version) || e.version < 1) {
    throw new ValidationError(`${path}.version`, 'must be a positive integer');
  }
  if (!ReplicaId.isValid(e.replica)) {
    throw new ValidationError(`${path}.replica`, 'must be a replica id');
  }
  if (!Seq.isValid(e.seq)) throw new ValidationError(`${path}.seq`, 'must be a positive integer');
  if (!isHlc(e.hlc)) throw new ValidationError(`${path}.hlc`, 'must be an HLC timestamp');
  const wall = decodeHlc(e.hlc).wall;
  // `time` and `cursor` follow from hlc, replica and seq: the wire may leave them out (see
  // sync/messages.ts); when present they must agree.
  if (e.time !== undefined && e.time !== wall) {
    throw new ValidationError(`${path}.time`, 'must equal the HLC wall time');
  }
  const cursor = Cursor.make(e.hlc as Hlc, e.replica, e.seq);
  if (e.cursor !== undefined && e.cursor !== cursor)
    throw new ValidationError(`${path}.cursor`, 'does not match hlc, replica and seq');
  const record: StoredEventRecord = {
    id: e.id as EventId,
    type: base.type,
    data: cloneJson(base.data as JsonValue),
    stream: e.stream,
    version: e.version,
    replica: e.replica,
    seq: e.seq,
    hlc: e.hlc as Hlc,
    time: wall,
    cursor,
  };
  if (base.meta !== undefined) record.meta = cloneJson(base.meta) as JsonObject;
  if (base.schema !== 1) record.schema = base.schema;
  return record;
}
