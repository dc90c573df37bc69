/**
 * History for tabs that do not lead (docs/storage-growth.md part 3; host.ts invariant 2): in the
 * fallback mode every tab has its own worker on the one database, and only the leader's runs
 * network sync. When it trims, every tab becomes a partial replica (the horizon is in the shared
 * database), but only the leader has a session to ask the server for what lies below it. The
 * others ask the leader over a BroadcastChannel named for the database, and it reads the server's
 * history for them through its own session.
 *
 * Invariants:
 * 1. Only the worker whose `leads()` is true answers (at most one: the Web Lock), and it answers
 *    every request: first `taken` at once, then the records or the error its own history read
 *    gave (a ChronicleError keeps its class and code, so an offline leader's HISTORY_OFFLINE
 *    reaches the asking tab as HistoryUnavailableError).
 * 2. Every ask settles: rejected with HistoryUnavailableError (HISTORY_OFFLINE) when no leader
 *    says `taken` within `takenMs` (none, or a lost message), when the answer does not come within
 *    `answerMs` after that (its history client has its own timeout, shorter), when more than
 *    MAX_PENDING_ASKS are waiting, or when the relay is closed.
 * 3. Requests and answers carry a random id; a worker reads only the answers to its own asks. The
 *    leader never asks (its own read already failed, and nobody else would answer): its read
 *    rejects at once.
 * 4. The records crossing the channel are the leader's, already checked by its history client
 *    (sync/history-client.ts invariant 2): workers of one origin trust each other as the tabs do.
 */

import type { SerializedError } from '../src/core/errors.ts';
import { ChronicleError, deserializeError, HistoryUnavailableError } from '../src/core/errors.ts';
import type { StoredEventRecord } from '../src/core/events.ts';
import type { CursorQuery } from '../src/storage/adapter.ts';
import type { HistorySource } from '../src/store/history-source.ts';

/** Asks of one worker waiting for answers at once, at most (invariant 2). */
export const MAX_PENDING_ASKS = 64;
/** How long an ask waits for a leader to take it (invariant 2). */
export const DEFAULT_TAKEN_MS = 2_000;
/** How long a taken ask waits for its answer: above the history client's 15 s (invariant 2). */
export const DEFAULT_ANSWER_MS = 20_000;

export type RelayMessage =
  | { type: 'history-ask'; req: string; query: CursorQuery }
  | { type: 'history-taken'; req: string }
  | { type: 'history-answer'; req: string; records: StoredEventRecord[] }
  | { type: 'history-failed'; req: string; error: SerializedError | { message: string } };

export interface HistoryRelayOptions {
  /** The database's name: one channel per database. */
  name: string;
  /** Whether this worker leads now (host.ts invariant 2): only the leader answers. */
  leads(): boolean;
  /** This worker's own history (its sync controller's), read for the others when it leads. */
  history(): HistorySource | undefined;
  takenMs?: number;
  answerMs?: number;
}

interface Ask {
  resolve(records: StoredEventRecord[]): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export const relayChannelName = (name: string) => `chronicle:history:${name}`;

const offline = (why: string) =>
  new HistoryUnavailableError(`older history is on the server, and ${why}`);

export class HistoryRelay implements HistorySource {
  private readonly channel: BroadcastChannel | undefined;
  private readonly asks = new Map<string, Ask>();
  private readonly options: HistoryRelayOptions;
  private closed = false;

  constructor(options: HistoryRelayOptions) {
    this.options = options;
    if (typeof BroadcastChannel === 'undefined') return;
    const channel = new BroadcastChannel(relayChannelName(options.name));
    channel.onmessage = (event: MessageEvent<RelayMessage>) => this.receive(event.data);
    // Node keeps its process alive while a BroadcastChannel is referenced; browsers have no unref.
    (channel as { unref?: () => void }).unref?.();
    this.channel = channel;
  }

  /** Asks the leading worker for the server's history (invariant 2). */
  read(query: CursorQuery): Promise<StoredEventRecord[]> {
    const channel = this.channel;
    if (channel === undefined || this.closed) {
      return Promise.reject(offline('this tab has no channel to the tab that syncs'));
    }
    if (this.options.leads()) {
      return Promise.reject(offline('this store is not connected to one'));
    }
    if (this.asks.size >= MAX_PENDING_ASKS) {
      return Promise.reject(offline(`${MAX_PENDING_ASKS} reads are already waiting for it`));
    }
    const req = crypto.randomUUID();
    return new Promise<StoredEventRecord[]>((resolve, reject) => {
      const timer = setTimeout(
        () => this.settle(req, offline('no tab that syncs took the read')),
        this.options.takenMs ?? DEFAULT_TAKEN_MS,
      );
      this.asks.set(req, { resolve, reject, timer });
      this.post({ type: 'history-ask', req, query });
    });
  }

  close(): void {
    this.closed = true;
    for (const req of [...this.asks.keys()]) this.settle(req, offline('this store closed'));
    this.channel?.close();
  }

  private receive(message: RelayMessage): void {
    switch (message.type) {
      case 'history-ask':
        this.answer(message.req, message.query);
        return;
      case 'history-taken': {
        const ask = this.asks.get(message.req);
        if (ask === undefined) return;
        clearTimeout(ask.timer);
        ask.timer = setTimeout(
          () => this.settle(message.req, offline('the tab that syncs did not answer in time')),
          this.options.answerMs ?? DEFAULT_ANSWER_MS,
        );
        return;
      }
      case 'history-answer':
        this.settle(message.req, undefined, message.records);
        return;
      case 'history-failed': {
        const wire = message.error;
        const error =
          'code' in wire
            ? deserializeError(wire)
            : new Error(`history read failed: ${wire.message}`);
        this.settle(message.req, error);
        return;
      }
      default: {
        const _exhaustive: never = message;
      }
    }
  }

  /** Invariant 1: the leader takes every ask at once and answers it. */
  private answer(req: string, query: CursorQuery): void {
    if (this.closed || !this.options.leads()) return;
    this.post({ type: 'history-taken', req });
    const source = this.options.history();
    const read =
      source === undefined
        ? Promise.reject(offline('the tab that syncs is not connected to a server'))
        : source.read(query);
    const failed = (error: unknown) =>
      this.post({
        type: 'history-failed',
        req,
        error: error instanceof ChronicleError ? error.toJSON() : { message: String(error) },
      });
    read.then((records) => {
      if (!this.post({ type: 'history-answer', req, records })) failed('records not cloneable');
    }, failed);
  }

  private settle(req: string, error: Error | undefined, records?: StoredEventRecord[]): void {
    const ask = this.asks.get(req);
    if (ask === undefined) return;
    this.asks.delete(req);
    clearTimeout(ask.timer);
    if (error !== undefined) ask.reject(error);
    else ask.resolve(records ?? []);
  }

  /** False when the message could not be cloned (DataCloneError). */
  private post(message: RelayMessage): boolean {
    if (this.closed) return true;
    try {
      this.channel?.postMessage(message);
      return true;
    } catch {
      return false;
    }
  }
}
