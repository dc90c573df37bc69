/**
 * The answering side of `history` (protocol.ts invariant 9): a server's session reads its log by
 * cursor and sends one page per request.
 *
 * Invariants:
 * 1. Beside the session: a request is answered without holding up the session's messages (its
 *    batches, acks, ingests), and never moves a checkpoint.
 * 2. Bounded: at most MAX_HISTORY_IN_FLIGHT requests of a peer are read at once (more get a
 *    non-fatal LIMIT_EXCEEDED); a page holds at most the smaller batch size of both sides, and
 *    fits the peer's maxMessageBytes (a page over it is halved, with `more` set).
 * 3. Every request gets exactly one answer carrying its `req`: a page, or an error
 *    (HISTORY_UNAVAILABLE where this side serves no history, STORAGE when the read fails).
 */
import type { StoredEventRecord } from '../core/events.ts';
import { utf8Length } from '../core/json.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import { encodeMessage } from './messages.ts';
import type { HistoryMessage, SyncErrorCode, SyncLimits, SyncMessage } from './protocol.ts';

/** Requests of one peer read at once (invariant 2). */
export const MAX_HISTORY_IN_FLIGHT = 4;

export interface HistoryServerOptions {
  /** The log in the total order; absent where this side serves no history. */
  read: ((query: CursorQuery) => Promise<StoredEventRecord[]>) | undefined;
  /** This side's limits. */
  limits: SyncLimits;
  /** Sends one message's text; false once the connection is gone. */
  send(text: string): void;
  /**
   * Sends a page that fits the peer as a binary frame where the connection agreed on them
   * (protocol invariant 11); false when it did not send it (the page then goes as text).
   */
  sendFrame?: (page: SyncMessage, maxBytes: number) => boolean;
  /** The `$key` this side holds for a replica (core/integrity.ts), sent with a page. */
  keyOf?: (replica: string) => Promise<string | undefined>;
}

/** The entries of `keys` for the replicas of `events`; undefined when none. */
function onlyOf(
  keys: { [replica: string]: string },
  events: readonly StoredEventRecord[],
): { [replica: string]: string } | undefined {
  let out: { [replica: string]: string } | undefined;
  for (const replica of new Set(events.map((e) => e.replica))) {
    if (!Object.hasOwn(keys, replica)) continue;
    out ??= {};
    out[replica] = keys[replica]!;
  }
  return out;
}

/** The keys of the page's replicas this side holds, for the asker's verification. */
async function keysOf(
  events: readonly StoredEventRecord[],
  keyOf: HistoryServerOptions['keyOf'],
): Promise<{ [replica: string]: string } | undefined> {
  if (keyOf === undefined) return undefined;
  const replicas = [...new Set(events.map((e) => e.replica))];
  const keys = await Promise.all(replicas.map((replica) => keyOf(replica)));
  let out: { [replica: string]: string } | undefined;
  replicas.forEach((replica, i) => {
    const key = keys[i];
    if (key === undefined) return;
    out ??= {};
    out[replica] = key;
  });
  return out;
}

/** The query a request asks, its limit bounded by both sides' batch sizes (invariant 2). */
export function queryOf(request: HistoryMessage, limit: number): CursorQuery {
  const query: CursorQuery = { limit };
  if (request.after !== undefined) query.after = request.after;
  if (request.until !== undefined) query.until = request.until;
  if (request.stream !== undefined) query.stream = request.stream;
  if (request.reverse === true) query.reverse = true;
  return query;
}

export function createHistoryServer(options: HistoryServerOptions) {
  let inFlight = 0;
  const error = (req: number, code: SyncErrorCode, message: string) => {
    const m: SyncMessage = { type: 'error', code, message, req };
    options.send(encodeMessage(m));
  };

  const answer = async (request: HistoryMessage, peerLimits: SyncLimits): Promise<void> => {
    const read = options.read!;
    const limit = Math.min(request.limit, options.limits.maxBatchEvents, peerLimits.maxBatchEvents);
    const found = await read(queryOf(request, limit + 1));
    let more = found.length > limit;
    let events = found.slice(0, limit);
    const held = await keysOf(events, options.keyOf);
    for (;;) {
      const page: SyncMessage = { type: 'history-page', req: request.req, events, more };
      // Only the replicas of what is sent: a receiver refuses more keys than events.
      const keys = held === undefined ? undefined : onlyOf(held, events);
      if (keys !== undefined) page.keys = keys;
      const text = encodeMessage(page);
      // Three bytes per UTF-16 unit bound the UTF-8 size: the exact size only near the limit.
      const bytes = text.length * 3 <= peerLimits.maxMessageBytes ? 0 : utf8Length(text);
      if (bytes <= peerLimits.maxMessageBytes) {
        if (options.sendFrame?.(page, peerLimits.maxMessageBytes) === true) return;
        return options.send(text);
      }
      if (events.length <= 1) {
        return error(
          request.req,
          'LIMIT_EXCEEDED',
          `the next event of this history is larger than the peer's ${peerLimits.maxMessageBytes}-byte messages`,
        );
      }
      events = events.slice(0, Math.ceil(events.length / 2));
      more = true;
    }
  };

  return {
    /** Whether this side serves history (announced in hello). */
    serves: options.read !== undefined,
    /** Answers `request` beside the session (invariant 1): not awaited by the caller. */
    handle(request: HistoryMessage, peerLimits: SyncLimits): void {
      if (options.read === undefined) {
        error(request.req, 'HISTORY_UNAVAILABLE', 'this server keeps no history it can serve');
        return;
      }
      if (inFlight >= MAX_HISTORY_IN_FLIGHT) {
        error(
          request.req,
          'LIMIT_EXCEEDED',
          `more than ${MAX_HISTORY_IN_FLIGHT} history requests at once`,
        );
        return;
      }
      inFlight += 1;
      answer(request, peerLimits)
        .catch((failure: unknown) => {
          const text = failure instanceof Error ? failure.message : String(failure);
          // A refusal of the asker's scope keeps its code; anything else is the storage's.
          if ((failure as { code?: unknown }).code === 'FORBIDDEN') {
            return error(request.req, 'FORBIDDEN', text);
          }
          return error(request.req, 'STORAGE', `history read failed: ${text}`);
        })
        .catch(() => {})
        .finally(() => {
          inFlight -= 1;
        });
    },
  };
}
