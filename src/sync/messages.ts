/**
 * Strict parsing of incoming sync messages. Nothing from a peer is trusted: the text is size-
 * checked before JSON.parse, every field is checked, unknown fields are dropped (so additive
 * protocol fields from a newer peer do no harm), and events are decoded and checked from their
 * columnar wire form by event-codec.ts (no prototype pollution: JSON.parse keeps `__proto__` as data).
 *
 * Invariants:
 * 1. parseMessage never throws: a bad message is a `{ ok: false }` with a SyncErrorCode.
 * 2. A message that parses is a fresh object holding only the fields of its type.
 * 3. A hello whose `protocol` differs from ours is PROTOCOL_VERSION, whatever else it holds.
 * 4. A binary frame (binary-frame.ts) is held to maxMessageBytes by its byte length, and the
 *    value it rebuilds goes through the same checks as a text's: a frame is only another
 *    spelling of a text message, never a way around a check.
 */
import { ChronicleError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { ReplicaId } from '../core/ids.ts';
import { TAMPER_REASONS, type TamperReason } from '../core/integrity.ts';
import { utf8Length } from '../core/json.ts';
import { NO_HEAD, type StrictHead, type StrictRejection } from '../core/strict.ts';
import { FrameError, frameOf, type UnpackedFrame, unpackFrame } from './binary-frame.ts';
import {
  BatchEventError,
  type BatchMode,
  type DataTextOf,
  decodeEventBatch,
  EventTooLargeError,
  encodeEventBatch,
  encodeEventBatchBinary,
} from './event-codec.ts';
import {
  HistoryShapeError,
  type ParsedHistoryPage,
  parseHistory,
  parseHistoryPage,
  reqOf,
} from './history-messages.ts';
import {
  type Checkpoint,
  CloseCode,
  DEFAULT_SYNC_LIMITS,
  type EventRefusal,
  type EventsMessage,
  type HistoryPageMessage,
  MIN_SYNC_LIMITS,
  PROTOCOL_VERSION,
  type RefusalReason,
  SYNC_LIMIT_NAMES,
  type SyncErrorCode,
  type SyncLimits,
  type SyncMessage,
} from './protocol.ts';
import {
  parseJoin,
  parseSnapshotMessage,
  parseSnapshotPart,
  SnapshotShapeError,
} from './snapshot-messages.ts';

/** A message as parsed: an `events` message's events passed decodeEventBatch. */
export type ParsedMessage =
  | Exclude<SyncMessage, EventsMessage | HistoryPageMessage>
  | (EventsMessage & { events: StoredEventRecord[] })
  | ParsedHistoryPage;

export type ParseResult =
  /** `bytes`: UTF-8 size of the text. */
  | { ok: true; message: ParsedMessage; bytes: number }
  | {
      ok: false;
      code: SyncErrorCode;
      message: string;
      eventId?: string;
      /** Set when one event of an `events` batch is at fault: the batch and why. */
      batch?: { from: number; to: number; reason: RefusalReason };
      /** Set when a `history-page` is at fault: the request it answers (protocol 9). */
      req?: number;
    };

/** Longest `code` / `message` text kept from a peer's error message. */
export const MAX_ERROR_TEXT = 1024;
/** Longest id, replica or stream name in a `rejected` message (an event's own are shorter). */
const MAX_ID_TEXT = 4096;

class Bad extends Error {
  readonly code: SyncErrorCode;
  readonly eventId: string | undefined;
  readonly batch: { from: number; to: number; reason: RefusalReason } | undefined;

  constructor(
    code: SyncErrorCode,
    message: string,
    eventId?: string,
    batch?: { from: number; to: number; reason: RefusalReason },
  ) {
    super(message);
    this.code = code;
    this.eventId = eventId;
    this.batch = batch;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function int(o: Record<string, unknown>, key: string, min = 0): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new Bad('PROTOCOL', `${String(o.type)}.${key} must be an integer >= ${min}`);
  }
  return v;
}

function str(o: Record<string, unknown>, key: string, max = 256): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw new Bad('PROTOCOL', `${String(o.type)}.${key} must be a non-empty string`);
  }
  return v;
}

function optBool(o: Record<string, unknown>, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean')
    throw new Bad('PROTOCOL', `${String(o.type)}.${key} must be a boolean`);
  return v;
}

/** hello.limits: each a safe integer at least MIN_SYNC_LIMITS'; a missing one is the default. */
function parseLimits(value: unknown): SyncLimits {
  if (!isRecord(value)) throw new Bad('PROTOCOL', 'hello.limits must be an object');
  const limits: SyncLimits = { ...DEFAULT_SYNC_LIMITS };
  for (const name of SYNC_LIMIT_NAMES) {
    if (value[name] === undefined) continue;
    limits[name] = int({ type: 'hello.limits', ...value }, name, MIN_SYNC_LIMITS[name]);
  }
  return limits;
}

function parseRefusal(value: unknown): EventRefusal {
  if (!isRecord(value)) throw new Bad('PROTOCOL', 'error.refused must be an object');
  const from = int({ type: 'error.refused', ...value }, 'from');
  const r = value.reason;
  if (!isRecord(r) || typeof r.kind !== 'string' || r.kind.length === 0) {
    throw new Bad('PROTOCOL', 'error.refused.reason must name its kind');
  }
  const o: Record<string, unknown> = { type: 'error.refused.reason', ...r };
  switch (r.kind) {
    case 'too-large':
      return {
        from,
        reason: { kind: 'too-large', bytes: int(o, 'bytes'), limit: int(o, 'limit') },
      };
    case 'invalid':
      return { from, reason: { kind: 'invalid', field: str(o, 'field', MAX_ERROR_TEXT) } };
    case 'clock-ahead':
      return {
        from,
        reason: { kind: 'clock-ahead', wall: int(o, 'wall'), limit: int(o, 'limit') },
      };
    case 'not-owner':
      return { from, reason: { kind: 'not-owner', replica: str(o, 'replica', 128) } };
    case 'unproven':
      return { from, reason: { kind: 'unproven' } };
    case 'tampered': {
      const why = str(o, 'why', 32);
      if (!TAMPER_REASONS.includes(why as TamperReason)) {
        return { from, reason: { kind: 'other', name: 'tampered' } };
      }
      return {
        from,
        reason: {
          kind: 'tampered',
          replica: str(o, 'replica', 128),
          seq: int(o, 'seq'),
          why: why as TamperReason,
        },
      };
    }
    default:
      // A reason of a newer peer: still a refusal of that one event.
      return { from, reason: { kind: 'other', name: r.kind.slice(0, 64) } };
  }
}

/** rejected.events: at most a batch's worth, each field checked. */
function parseRejections(value: unknown, limits: SyncLimits): StrictRejection[] {
  if (!Array.isArray(value)) throw new Bad('PROTOCOL', 'rejected.events must be an array');
  if (value.length > limits.maxBatchEvents) {
    throw new Bad('LIMIT_EXCEEDED', `more than ${limits.maxBatchEvents} rejected events`);
  }
  return value.map((item): StrictRejection => {
    if (!isRecord(item)) throw new Bad('PROTOCOL', 'rejected.events[] must be objects');
    const o: Record<string, unknown> = { type: 'rejected.events[]', ...item };
    const head = item.head;
    if (!isRecord(head)) throw new Bad('PROTOCOL', 'rejected.events[].head must be an object');
    const h: Record<string, unknown> = { type: 'rejected.events[].head', ...head };
    return {
      id: str(o, 'id', MAX_ID_TEXT),
      replica: str(o, 'replica', MAX_ID_TEXT),
      seq: int(o, 'seq', 1),
      stream: str(o, 'stream', MAX_ID_TEXT),
      version: int(o, 'version', 1),
      reason: item.reason === 'not-strict' ? 'not-strict' : 'stale',
      head: parseHead(h),
    };
  });
}

/** A rejection's head: an accepted event, or NO_HEAD (core/strict.ts invariant 10). */
function parseHead(h: Record<string, unknown>): StrictHead {
  const version = int(h, 'version', 0);
  if (version > 0) return { version, id: str(h, 'id', MAX_ID_TEXT) };
  if (h.id !== NO_HEAD.id)
    throw new Bad('PROTOCOL', `${String(h.type)}.id must be '' at version 0`);
  return { ...NO_HEAD };
}

function parseCheckpoint(value: unknown): Checkpoint {
  if (!isRecord(value)) throw new Bad('PROTOCOL', 'pull.checkpoint must be an object');
  const c: Record<string, unknown> = { type: 'pull.checkpoint', ...value };
  const checkpoint: Checkpoint = { epoch: str(c, 'epoch'), pos: int(c, 'pos') };
  if (value.id !== undefined) checkpoint.id = str(c, 'id');
  return checkpoint;
}

function parseEvents(
  o: Record<string, unknown>,
  limits: SyncLimits,
  /** A bound of any one event's data and meta: the text's UTF-8 size, or a frame's bound. */
  bytes: number,
): ParsedMessage {
  const from = int(o, 'from');
  const to = int(o, 'to');
  if (to < from) throw new Bad('PROTOCOL', 'events.to must not be below events.from');
  const batch = o.events;
  const count = isRecord(batch) && Array.isArray(batch.data) ? batch.data.length : 0;
  if (count > limits.maxBatchEvents) {
    throw new Bad('LIMIT_EXCEEDED', `more than ${limits.maxBatchEvents} events in one batch`);
  }
  const impliedLinks = optBool(o, 'impliedLinks');
  let events: StoredEventRecord[];
  try {
    events = decodeEventBatch(o.events, {
      messageBytes: bytes,
      maxEventBytes: limits.maxEventBytes,
      impliedLinks: impliedLinks === true,
    });
  } catch (error) {
    if (error instanceof BatchEventError) {
      const inner = error.error;
      const reason: RefusalReason =
        inner instanceof EventTooLargeError
          ? { kind: 'too-large', bytes: inner.bytes, limit: inner.limit }
          : { kind: 'invalid', field: inner.path };
      const code = reason.kind === 'too-large' ? 'LIMIT_EXCEEDED' : 'VALIDATION';
      const eventId = error.eventId?.slice(0, 128);
      const batch = eventId === undefined ? undefined : { from, to, reason };
      throw new Bad(code, error.message, eventId, batch);
    }
    if (error instanceof ChronicleError && error.code === 'VALIDATION') {
      throw new Bad('VALIDATION', error.message);
    }
    throw new Bad('PROTOCOL', error instanceof Error ? error.message : String(error));
  }
  if (events.length > to - from) {
    throw new Bad('PROTOCOL', 'a batch cannot hold more events than the positions it covers');
  }
  if (to > from && o.toId === undefined) throw new Bad('PROTOCOL', 'events.toId is required');
  const message: ParsedMessage = { type: 'events', from, to, events };
  if (o.toId !== undefined) message.toId = str(o, 'toId');
  const caughtUp = optBool(o, 'caughtUp');
  if (caughtUp !== undefined) message.caughtUp = caughtUp;
  if (impliedLinks !== undefined) message.impliedLinks = impliedLinks;
  if (o.keys !== undefined) message.keys = parseKeys(o.keys, events.length);
  return message;
}

/** history-page.keys, checked as events.keys are. */
function withPageKeys(page: ParsedHistoryPage, keys: unknown): ParsedHistoryPage {
  if (keys !== undefined) page.keys = parseKeys(keys, page.events.length, 'history-page.keys');
  return page;
}

/** events.keys: at most one per event, each a replica id and a `$key` text, checked later. */
function parseKeys(
  value: unknown,
  events: number,
  field = 'events.keys',
): { [replica: string]: string } {
  if (!isRecord(value)) throw new Bad('PROTOCOL', `${field} must be an object`);
  const entries = Object.entries(value);
  if (entries.length > events)
    throw new Bad('PROTOCOL', `${field} names more replicas than events`);
  const out: { [replica: string]: string } = {};
  for (const [replica, key] of entries) {
    if (!ReplicaId.isValid(replica) || typeof key !== 'string' || key.length > 200) {
      throw new Bad('PROTOCOL', `${field} must map replica ids to key texts`);
    }
    Object.defineProperty(out, replica, {
      value: key,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function parseShape(
  o: Record<string, unknown>,
  limits: SyncLimits,
  /** A bound of any one event's data and meta in it: no event larger need be measured. */
  bytes: number,
): ParsedMessage {
  const type = o.type;
  switch (type) {
    case 'hello': {
      if (o.protocol !== PROTOCOL_VERSION) {
        throw new Bad(
          'PROTOCOL_VERSION',
          `peer speaks protocol ${JSON.stringify(o.protocol) ?? 'undefined'}, this side ${PROTOCOL_VERSION}`,
        );
      }
      const replica = o.replica;
      if (!ReplicaId.isValid(replica))
        throw new Bad('PROTOCOL', 'hello.replica must be a replica id');
      const hello: SyncMessage = {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        replica,
        epoch: str(o, 'epoch'),
        head: int(o, 'head'),
        seq: int(o, 'seq'),
        time: int(o, 'time'),
      };
      const server = optBool(o, 'server');
      if (server !== undefined) hello.server = server;
      if (o.limits !== undefined) hello.limits = parseLimits(o.limits);
      if (o.maxClockAheadMs !== undefined) hello.maxClockAheadMs = int(o, 'maxClockAheadMs');
      const history = optBool(o, 'history');
      if (history !== undefined) hello.history = history;
      const snapshots = optBool(o, 'snapshots');
      if (snapshots !== undefined) hello.snapshots = snapshots;
      if (o.join !== undefined) hello.join = snapshotShape(() => parseJoin(o.join));
      const binary = optBool(o, 'binary');
      if (binary !== undefined) hello.binary = binary;
      const impliedLinks = optBool(o, 'impliedLinks');
      if (impliedLinks !== undefined) hello.impliedLinks = impliedLinks;
      return hello;
    }
    case 'pull': {
      const pull: SyncMessage = { type: 'pull' };
      if (o.checkpoint !== undefined) pull.checkpoint = parseCheckpoint(o.checkpoint);
      return pull;
    }
    case 'events':
      return parseEvents(o, limits, bytes);
    case 'ack':
      return { type: 'ack', to: int(o, 'to') };
    case 'error': {
      const error: SyncMessage = {
        type: 'error',
        code: str(o, 'code', MAX_ERROR_TEXT),
        message: typeof o.message === 'string' ? o.message.slice(0, MAX_ERROR_TEXT) : '',
      };
      const fatal = optBool(o, 'fatal');
      if (fatal !== undefined) error.fatal = fatal;
      if (typeof o.eventId === 'string') error.eventId = o.eventId.slice(0, 128);
      if (o.refused !== undefined) {
        if (error.eventId === undefined) {
          throw new Bad('PROTOCOL', 'error.refused needs the eventId it refuses');
        }
        error.refused = parseRefusal(o.refused);
      }
      const req = reqOf(o);
      if (req !== undefined) error.req = req;
      return error;
    }
    case 'rejected':
      return { type: 'rejected', events: parseRejections(o.events, limits) };
    case 'ping':
      return { type: 'ping', time: int(o, 'time') };
    case 'pong':
      return { type: 'pong', time: int(o, 'time') };
    case 'history':
    case 'history-page':
      try {
        if (type === 'history') return parseHistory(o);
        return withPageKeys(parseHistoryPage(o, limits, bytes), o.keys);
      } catch (error) {
        if (error instanceof HistoryShapeError) throw new Bad(error.code, error.message);
        throw error;
      }
    case 'snapshot':
      return snapshotShape(() => parseSnapshotMessage(o));
    case 'snapshot-part':
      return snapshotShape(() => parseSnapshotPart(o));
    default:
      throw new Bad('PROTOCOL', `unknown message type ${JSON.stringify(type)?.slice(0, 64) ?? ''}`);
  }
}

/** A join or snapshot shape (snapshot-messages.ts), its refusal as this file's. */
function snapshotShape<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SnapshotShapeError) throw new Bad(error.code, error.message);
    throw error;
  }
}

/**
 * Parses and validates one incoming message (invariants 1–3). `snapshotBytes`: while this side
 * waits for the answer to its `join` (protocol invariant 10), a `snapshot` message may be up to
 * that large; every other message keeps to maxMessageBytes. A Uint8Array is a binary frame.
 */
export function parseMessage(
  text: unknown,
  limits: SyncLimits,
  snapshotBytes?: number,
): ParseResult {
  if (text instanceof Uint8Array) return parseFrame(text, limits);
  if (typeof text !== 'string') {
    return { ok: false, code: 'PROTOCOL', message: 'messages must be JSON text' };
  }
  const most = Math.max(limits.maxMessageBytes, snapshotBytes ?? 0);
  // text.length bounds the UTF-8 size from below: the cheap check first.
  const bytes = text.length > most ? text.length : utf8Length(text);
  if (bytes > most) {
    return { ok: false, code: 'LIMIT_EXCEEDED', message: `message larger than ${most} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'PROTOCOL', message: 'message is not valid JSON' };
  }
  if (!isRecord(value))
    return { ok: false, code: 'PROTOCOL', message: 'message must be an object' };
  if (bytes > limits.maxMessageBytes && value.type !== 'snapshot') {
    return {
      ok: false,
      code: 'LIMIT_EXCEEDED',
      message: `message larger than ${limits.maxMessageBytes} bytes`,
    };
  }
  return parseValue(value, limits, bytes);
}

/** A binary frame (binary-frame.ts): its size as a text's, then its value as a text's. */
function parseFrame(frame: Uint8Array, limits: SyncLimits): ParseResult {
  if (frame.length > limits.maxMessageBytes) {
    const message = `message larger than ${limits.maxMessageBytes} bytes`;
    return { ok: false, code: 'LIMIT_EXCEEDED', message };
  }
  let unpacked: UnpackedFrame;
  try {
    unpacked = unpackFrame(frame);
  } catch (error) {
    if (error instanceof FrameError) return { ok: false, code: error.code, message: error.message };
    return { ok: false, code: 'INTERNAL', message: String(error) };
  }
  return parseValue(unpacked.value, limits, unpacked.textBytes, unpacked.eventBytes);
}

/**
 * Checks a message's value, `bytes` the UTF-8 size of its text (or a bound of it), `eventBytes`
 * a bound of any one event's data and meta in it (the text's size, or binary-frame.ts's bound).
 */
function parseValue(
  value: Record<string, unknown>,
  limits: SyncLimits,
  bytes: number,
  eventBytes = bytes,
): ParseResult {
  try {
    // Each event's data and meta are walked for depth by the decoder (a few nodes an event),
    // cheaper than scanning every character of the text.
    return { ok: true, message: parseShape(value, limits, eventBytes), bytes };
  } catch (error) {
    if (error instanceof Bad) {
      const bad: ParseResult = { ok: false, code: error.code, message: error.message };
      if (error.eventId !== undefined) bad.eventId = error.eventId;
      if (error.batch !== undefined) bad.batch = error.batch;
      const req = value.type === 'history-page' ? reqOf(value) : undefined;
      if (req !== undefined) bad.req = req;
      return bad;
    }
    return { ok: false, code: 'INTERNAL', message: String(error) };
  }
}

/**
 * Serialises an outgoing message; the events of an `events` message in their columnar wire form
 * (event-codec.ts). `dataText` hands over event data already stringified (see planBatches).
 */
export function encodeMessage(message: SyncMessage, dataText?: DataTextOf): string {
  if (message.type === 'history-page') {
    const { events, ...envelope } = message;
    return `${JSON.stringify(envelope).slice(0, -1)},"events":${encodeEventBatch(events, dataText)}}`;
  }
  if (message.type !== 'events') return JSON.stringify(message);
  const { events, ...envelope } = message;
  const head = JSON.stringify(envelope);
  const batch = encodeEventBatch(events, dataText, batchMode(message));
  return `${head.slice(0, -1)},"events":${batch}}`;
}

/** What an events message's batch leaves out (protocol.ts invariant 13). */
function batchMode(message: { impliedLinks?: boolean }): BatchMode {
  return { impliedLinks: message.impliedLinks === true };
}

/**
 * A message for a peer that reads binary frames: an `events` or `history-page` message as a
 * binary frame (binary-frame.ts), or its text where it goes as text: another type, nothing to
 * carry as bytes (the text is shorter), or a text that bytes would not carry back. Each batch
 * is encoded once, but in that last, rare case.
 */
export function encodeForBinaryPeer(
  message: SyncMessage,
  dataText?: DataTextOf,
): string | Uint8Array {
  if (message.type !== 'events' && message.type !== 'history-page') return encodeMessage(message);
  const mode = message.type === 'events' ? batchMode(message) : undefined;
  const { events, ...envelope } = message;
  const batch = events.length === 0 ? undefined : encodeEventBatchBinary(events, dataText, mode);
  if (batch === undefined) return encodeMessage(message, dataText);
  const json = `${JSON.stringify(envelope).slice(0, -1)},"events":${batch.text}}`;
  return batch.sections === undefined ? json : frameOf(json, batch.sections);
}

/** The binary frame of a message, or undefined where it goes as text (encodeForBinaryPeer). */
export function encodeFrame(message: SyncMessage, dataText?: DataTextOf): Uint8Array | undefined {
  const out = encodeForBinaryPeer(message, dataText);
  return typeof out === 'string' ? undefined : out;
}

/** The WebSocket close code for a session that ends with `code` (used by the server). */
export function closeCodeFor(code: SyncErrorCode): number {
  switch (code) {
    case 'PROTOCOL':
    case 'GAP':
      return CloseCode.protocolError;
    case 'VALIDATION':
      return CloseCode.invalidPayload;
    case 'PROTOCOL_VERSION':
      return CloseCode.protocolVersion;
    case 'UNAUTHORIZED':
      return CloseCode.unauthorized;
    case 'FORBIDDEN':
    case 'ORIGIN_FORBIDDEN':
      return CloseCode.forbidden;
    case 'LIMIT_EXCEEDED':
      return CloseCode.messageTooBig;
    case 'RATE_LIMITED':
      return CloseCode.rateLimited;
    case 'CLOCK_SKEW':
    case 'SEQ_CONFLICT':
    case 'ID_CONFLICT':
    case 'TAMPERED':
      return CloseCode.policyViolation;
    case 'STORAGE':
    case 'INTERNAL':
      return CloseCode.internalError;
    case 'HISTORY_UNAVAILABLE':
    case 'SNAPSHOT_INVALID':
      return CloseCode.normal;
    default: {
      const never: never = code;
      throw new Error(`unknown sync error code ${String(never)}`);
    }
  }
}
