/**
 * The asking side of `history` (protocol.ts invariant 9): a HistorySource (store/history-source.ts)
 * over a live sync session to a server.
 *
 * Invariants:
 * 1. Every read settles: with the events, or rejected. HistoryUnavailableError (HISTORY_OFFLINE)
 *    when no session to a server that serves history is open, when the session ends before the
 *    answer, when the server cannot answer (HISTORY_UNAVAILABLE, STORAGE, INTERNAL), or after
 *    `timeoutMs` without an answer.
 * 2. Nothing a server sends is trusted: a page must hold only events in the asked range and
 *    stream, strictly in the asked order, at most the asked count, and a page saying `more` must
 *    not be empty; a page that does not (or whose events fail the batch checks) rejects its read
 *    with SyncError PROTOCOL. Every signature of a page is verified as a received batch's is
 *    (core/integrity.ts verifyBatch, with the keys the page names), before any of it is used: a
 *    forged or altered event rejects its read with TAMPERED. The events are never stored.
 * 3. A read returns `limit` events unless the range holds fewer (the meaning of readByCursor): a
 *    server that sends less than asked, with `more`, is asked again after the last one.
 * 4. A read made while a link's connection is opening (a store just opened, a link reconnecting
 *    after its backoff) waits for that link's hello, or its failure, instead of failing at once:
 *    at most `timeoutMs` (the route's wait), a few times over. A link waiting out its backoff is
 *    not opening: offline, a read still fails at once, so the app can say so.
 */
import { ChronicleError, HistoryUnavailableError, SyncError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { TAMPER_TEXT, verifyBatch } from '../core/integrity.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import type { HistorySource } from '../store/history-source.ts';
import type { SyncIntegrity } from './log.ts';
import type { HistoryMessage } from './protocol.ts';
import type { HistoryReply } from './session-types.ts';

/** How long a history request may wait for its answer by default (invariant 1). */
export const DEFAULT_HISTORY_TIMEOUT_MS = 15_000;

export interface HistoryTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

interface Pending {
  query: CursorQuery;
  resolve(page: { events: StoredEventRecord[]; more: boolean }): void;
  reject(error: Error): void;
  timer: unknown;
}

/** Why a page does not answer `query` (invariant 2), or undefined when it does. */
export function pageProblem(
  query: CursorQuery,
  events: readonly StoredEventRecord[],
  more: boolean,
): string | undefined {
  if (events.length > query.limit) return `${events.length} events where ${query.limit} were asked`;
  if (more && events.length === 0) return 'an empty page that says there is more';
  const reverse = query.reverse === true;
  let previous: string | undefined;
  for (const event of events) {
    const c = event.cursor;
    if (query.stream !== undefined && event.stream !== query.stream) {
      return `event ${event.id} is of stream ${event.stream}, not ${query.stream}`;
    }
    const outside = reverse
      ? (query.after !== undefined && c >= query.after) ||
        (query.until !== undefined && c < query.until)
      : (query.after !== undefined && c <= query.after) ||
        (query.until !== undefined && c > query.until);
    if (outside) return `event ${event.id} lies outside the asked range`;
    if (previous !== undefined && (reverse ? c >= previous : c <= previous)) {
      return `event ${event.id} is out of the total order`;
    }
    previous = c;
  }
  return undefined;
}

/**
 * Checks a page's signatures (invariant 2): undefined when they hold, else the refusal. Without
 * tamper evidence (a store with signing off) nothing is verified, as for batches.
 */
export type PageVerifier = (
  events: StoredEventRecord[],
  keys: { [replica: string]: string } | undefined,
) => Promise<ChronicleError | undefined>;

/** The verifier of a log's integrity, as a session verifies a batch (session-receiver.ts invariant 5). */
export function pageVerifier(integrity: SyncIntegrity | undefined): PageVerifier | undefined {
  if (integrity === undefined) return undefined;
  return async (events, keys) => {
    if (events.length === 0) return undefined;
    const verdict = await verifyBatch(events, integrity, {
      requireSignatures: integrity.requireSignatures,
      ...(keys === undefined ? {} : { keys }),
    });
    if (verdict.ok) return undefined;
    const { event, reason } = verdict.tampering;
    return new ChronicleError(
      'TAMPERED',
      `the server's history page holds event ${event.id}, refused: ${TAMPER_TEXT[reason]}`,
      { eventId: event.id, reason },
    );
  };
}

/** The requests of one session (one link to a server). */
export class HistoryRequests {
  private nextReq = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly timers: HistoryTimers;
  private readonly timeoutMs: number;

  private readonly verify: PageVerifier | undefined;

  constructor(
    timers: HistoryTimers,
    timeoutMs = DEFAULT_HISTORY_TIMEOUT_MS,
    verify?: PageVerifier,
  ) {
    this.timers = timers;
    this.timeoutMs = timeoutMs;
    this.verify = verify;
  }

  /** One page of `query` through `send` (false: the session is closed). */
  page(
    send: (request: HistoryMessage) => boolean,
    query: CursorQuery,
  ): Promise<{ events: StoredEventRecord[]; more: boolean }> {
    return new Promise((resolve, reject) => {
      const req = this.nextReq++;
      const request: HistoryMessage = { type: 'history', req, limit: query.limit };
      if (query.after !== undefined) request.after = query.after;
      if (query.until !== undefined) request.until = query.until;
      if (query.stream !== undefined) request.stream = query.stream;
      if (query.reverse === true) request.reverse = true;
      const timer = this.timers.setTimeout(() => {
        this.settle(req)?.reject(
          new HistoryUnavailableError(
            `older history is on the server, which did not answer within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
      this.pending.set(req, { query, resolve, reject, timer });
      if (!send(request)) {
        this.settle(req)?.reject(
          new HistoryUnavailableError('older history is on the server, and the connection closed'),
        );
      }
    });
  }

  /** A page or error from the server (invariant 2). */
  onReply(reply: HistoryReply): void {
    const waiting = this.settle(reply.req);
    if (waiting === undefined) return; // late (timed out) or never asked: ignored
    if ('error' in reply) {
      waiting.reject(errorOf(reply.error));
      return;
    }
    const { events, more } = reply.page;
    const problem = pageProblem(waiting.query, events, more);
    if (problem !== undefined) {
      waiting.reject(
        new SyncError('PROTOCOL', `the server's history page does not hold: ${problem}`),
      );
      return;
    }
    if (this.verify === undefined) {
      waiting.resolve({ events, more });
      return;
    }
    this.verify(events, reply.page.keys).then(
      (refusal) =>
        refusal === undefined ? waiting.resolve({ events, more }) : waiting.reject(refusal),
      (failure: unknown) =>
        waiting.reject(failure instanceof Error ? failure : new Error(String(failure))),
    );
  }

  /** The session ended: every read waiting on it rejects (invariant 1). */
  closeAll(): void {
    for (const req of [...this.pending.keys()]) {
      this.settle(req)?.reject(
        new HistoryUnavailableError(
          'older history is on the server, and the connection closed before it answered',
        ),
      );
    }
  }

  private settle(req: number): Pending | undefined {
    const waiting = this.pending.get(req);
    if (waiting === undefined) return undefined;
    this.pending.delete(req);
    this.timers.clearTimeout(waiting.timer);
    return waiting;
  }
}

function errorOf(error: { code: string; message: string }): Error {
  switch (error.code) {
    case 'FORBIDDEN':
      return new SyncError('FORBIDDEN', error.message);
    case 'LIMIT_EXCEEDED':
      return new SyncError('LIMIT_EXCEEDED', error.message);
    case 'PROTOCOL':
    case 'VALIDATION':
      // A page that failed the checks (parsed here), or a request the server found malformed.
      return new SyncError('PROTOCOL', `history: ${error.message}`, { code: error.code });
    default:
      // HISTORY_UNAVAILABLE, STORAGE, INTERNAL, or a code this side does not know.
      return new HistoryUnavailableError(
        `older history is on the server, which cannot serve it now (${error.code}: ${error.message})`,
        { code: error.code },
      );
  }
}

/** What a history read needs of a link: a way to ask, or why there is none. */
export type HistoryRoute =
  | { ok: true; send: (request: HistoryMessage) => boolean; requests: HistoryRequests }
  | {
      ok: false;
      why: string;
      /**
       * Set when some link's connection is opening (invariant 4): resolves true once a link's
       * hello or failure may have changed the route, false when the wait timed out.
       */
      wait?: () => Promise<boolean>;
    };

/** Waits for an opening link at most this many times per read (invariant 4): links may flap. */
const MAX_ROUTE_WAITS = 4;

/**
 * The first route that is open; else why none is (a server's reason first, or an opening
 * link's), with a wait when some link is opening (invariant 4).
 */
export function firstRoute(
  links: readonly { route: HistoryRoute | undefined; server: boolean }[],
): HistoryRoute {
  let why = 'older history is on the server, and no server is connected';
  let wait: (() => Promise<boolean>) | undefined;
  for (const { route, server } of links) {
    if (route === undefined) continue;
    if (route.ok) return route;
    if (route.wait !== undefined) wait = route.wait;
    if (server || route.wait !== undefined) why = route.why;
  }
  return wait === undefined ? { ok: false, why } : { ok: false, why, wait };
}

/** History reads waiting for a link's connection to open (invariant 4). */
export class RouteWaiters {
  private readonly waiting = new Set<(woken: boolean) => void>();
  private readonly timers: HistoryTimers;
  private readonly timeoutMs: number;

  constructor(timers: HistoryTimers, timeoutMs = DEFAULT_HISTORY_TIMEOUT_MS) {
    this.timers = timers;
    this.timeoutMs = timeoutMs;
  }

  /** Resolves true at the next wake(), false after the timeout. */
  wait(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        this.waiting.delete(done);
        this.timers.clearTimeout(timer);
        resolve(woken);
      };
      const timer = this.timers.setTimeout(() => done(false), this.timeoutMs);
      this.waiting.add(done);
    });
  }

  /** A link's hello or failure may have changed the route: every read waiting looks again. */
  wake(): void {
    for (const done of [...this.waiting]) done(true);
  }
}

/**
 * A HistorySource over the routes `route` gives (the controller's links), filling each read to
 * its `limit` across pages (invariant 3).
 */
export function historySource(route: () => HistoryRoute): HistorySource {
  return {
    async read(request: CursorQuery): Promise<StoredEventRecord[]> {
      const out: StoredEventRecord[] = [];
      // Whole events only: a fractional limit reads what readByCursor would (its floor).
      const query = { ...request, limit: Math.floor(request.limit) };
      let asked = query;
      if (!(query.limit >= 1)) return out;
      let waits = 0;
      while (out.length < query.limit) {
        const link = route();
        if (!link.ok) {
          if (link.wait !== undefined && waits < MAX_ROUTE_WAITS && (await link.wait())) {
            waits += 1;
            continue;
          }
          throw new HistoryUnavailableError(link.why);
        }
        const { events, more } = await link.requests.page(link.send, asked);
        out.push(...events);
        if (!more || events.length === 0) break;
        asked = {
          ...query,
          after: events[events.length - 1]!.cursor,
          limit: query.limit - out.length,
        };
      }
      return out;
    },
  };
}
