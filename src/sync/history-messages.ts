/**
 * The shapes of the history messages (protocol.ts invariant 9), checked as strictly as the
 * others (messages.ts): `history` asks, `history-page` answers. A page's events pass the batch
 * decoder (event-codec.ts), which validates each event as a received batch's.
 */
import { ChronicleError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { Cursor } from '../core/ids.ts';
import { BatchEventError, decodeEventBatch } from './event-codec.ts';
import type { HistoryMessage, SyncErrorCode, SyncLimits } from './protocol.ts';

/** Longest stream name a `history` may ask for (an event's own are shorter). */
const MAX_STREAM_TEXT = 4096;

/** A history message that does not hold; messages.ts turns it into its error. */
export class HistoryShapeError extends Error {
  readonly code: SyncErrorCode;

  constructor(code: SyncErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function bad(message: string, code: SyncErrorCode = 'PROTOCOL'): HistoryShapeError {
  return new HistoryShapeError(code, message);
}

/** `req` of a history message, or undefined when it has none that holds. */
export function reqOf(o: Record<string, unknown>): number | undefined {
  const req = o.req;
  return typeof req === 'number' && Number.isSafeInteger(req) && req >= 0 ? req : undefined;
}

function cursorField(o: Record<string, unknown>, key: 'after' | 'until'): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Cursor.isValid(v)) throw bad(`history.${key} must be a cursor`);
  return v;
}

/** A `history` request: bounds that are cursors, a stream name, a limit of at least 1. */
export function parseHistory(o: Record<string, unknown>): HistoryMessage {
  const req = reqOf(o);
  if (req === undefined) throw bad('history.req must be an integer >= 0');
  const limit = o.limit;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    throw bad('history.limit must be an integer >= 1');
  }
  const message: HistoryMessage = { type: 'history', req, limit };
  const after = cursorField(o, 'after');
  if (after !== undefined) message.after = after;
  const until = cursorField(o, 'until');
  if (until !== undefined) message.until = until;
  if (o.stream !== undefined) {
    if (typeof o.stream !== 'string' || o.stream.length === 0 || o.stream.length > MAX_STREAM_TEXT)
      throw bad('history.stream must be a non-empty string');
    message.stream = o.stream;
  }
  if (o.reverse !== undefined) {
    if (typeof o.reverse !== 'boolean') throw bad('history.reverse must be a boolean');
    message.reverse = o.reverse;
  }
  return message;
}

/** A `history-page` as parsed: its events decoded and checked. */
export interface ParsedHistoryPage {
  type: 'history-page';
  req: number;
  events: StoredEventRecord[];
  more: boolean;
  /** Checked by messages.ts as a batch's keys are. */
  keys?: { [replica: string]: string };
}

/** A `history-page`: its events decoded as a batch's are (VALIDATION when one fails). */
export function parseHistoryPage(
  o: Record<string, unknown>,
  limits: SyncLimits,
  bytes: number,
): ParsedHistoryPage {
  const req = reqOf(o);
  if (req === undefined) throw bad('history-page.req must be an integer >= 0');
  if (typeof o.more !== 'boolean') throw bad('history-page.more must be a boolean');
  const batch = o.events;
  const count =
    typeof batch === 'object' && batch !== null && Array.isArray((batch as { data?: unknown }).data)
      ? (batch as { data: unknown[] }).data.length
      : 0;
  if (count > limits.maxBatchEvents) {
    throw bad(`more than ${limits.maxBatchEvents} events in one page`, 'LIMIT_EXCEEDED');
  }
  let events: StoredEventRecord[];
  try {
    events = decodeEventBatch(batch, { messageBytes: bytes, maxEventBytes: limits.maxEventBytes });
  } catch (error) {
    if (error instanceof BatchEventError) throw bad(error.message, 'VALIDATION');
    if (error instanceof ChronicleError && error.code === 'VALIDATION') {
      throw bad(error.message, 'VALIDATION');
    }
    throw bad(error instanceof Error ? error.message : String(error));
  }
  return { type: 'history-page', req, events, more: o.more };
}
