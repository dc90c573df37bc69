/**
 * The part of the log the page has loaded, for Activity and time travel, on a device that keeps
 * only its newest events (retention.ts). The page reads a window of the newest events, which the
 * device always holds, and pages older history in on demand: from the device while it has it,
 * then from the server (store.read below the horizon, src/store/history-reads.ts).
 *
 * Invariants:
 * 1. The window is a reverse read of the policy's `events` newest events: the device keeps at
 *    least that many (retention.ts 1), so it reads offline and never asks the server. Should it
 *    reach below the horizon all the same (an encrypted board's `$keyring` events count in the
 *    policy, not in read()), it is read again smaller rather than fail.
 * 2. `events` is contiguous in the total order: older pages go in front of it, and once the user
 *    has loaded any, what slides out of the window as new events arrive stays loaded. A late
 *    event that sorts below the window shows after the next reload.
 * 3. Until `complete` (the first event of the board is loaded), the oldest loaded event is the
 *    base: its board (`state` at it) is what the next event is described against, so the words
 *    of Activity are those a full log gives. The base is read again only when it changes.
 * 4. History the server must give and cannot (offline: HISTORY_OFFLINE) is said as such
 *    (`older: 'offline'`), never a silent gap and never an empty panel; what is loaded stays.
 * 5. The window never asks the server for more than one event: it is at most as long as the
 *    device's own log (its head position). A device that joined from the server's snapshot
 *    holds only what came after it, and filling its window from the server's history, then
 *    folding the board as of the window's oldest event from ~100,000 events of history, kept
 *    its worker busy for seconds while its board was first shown. Its Activity starts at the
 *    join (the base's board is then the snapshot's, read locally: projection-runtime.ts folds
 *    `at` from the newest snapshot below it), and older pages come when the user asks.
 */
import type { EventStore, StoredEvent } from '../../src/index.ts';
import { type BoardState, PROJECTION } from './board.ts';

export type OlderState =
  | { kind: 'idle' }
  | { kind: 'loading' }
  | { kind: 'offline' }
  | { kind: 'failed'; message: string };

export interface LoadedLogOptions {
  /** The window: the newest this many events (the retain policy's `events`). */
  window: number;
  /** Events per older page. */
  page: number;
  /** An encrypted board: its erasures are `$keyring` events, read beside the log. */
  encrypted: boolean;
}

/**
 * The board as of `event`: by its id, or, for an event this device trimmed (whose id it no
 * longer finds: NOT_FOUND), by its time, which the server's history answers. The time bound
 * also takes in any event stamped in the same millisecond after it.
 */
export async function boardAt(
  store: EventStore<unknown>,
  event: StoredEvent<unknown>,
): Promise<BoardState> {
  try {
    return await store.state<BoardState>(PROJECTION, { at: { eventId: event.id } });
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'NOT_FOUND') throw error;
    return store.state<BoardState>(PROJECTION, { at: event.time });
  }
}

/** Whether an error says that older history is on the server (HistoryUnavailableError). */
export const isHistoryOffline = (error: unknown): boolean =>
  (error as { code?: unknown } | null)?.code === 'HISTORY_OFFLINE';

export class LoadedLog {
  /** The loaded events, oldest first, `$keyring` apart (invariant 2). */
  events: StoredEvent<unknown>[] = [];
  /** The first event of the board is among `events`. */
  complete = false;
  /** The oldest loaded event and the board as of it, while not complete (invariant 3). */
  base: { event: StoredEvent<unknown>; state: BoardState | undefined } | undefined;
  older: OlderState = { kind: 'idle' };

  private keyring = new Map<string, StoredEvent<unknown>>();
  /** The user loaded older pages: keep what slides out of the window (invariant 2). */
  private kept = false;

  private readonly store: EventStore<unknown>;
  private readonly options: LoadedLogOptions;

  constructor(store: EventStore<unknown>, options: LoadedLogOptions) {
    this.store = store;
    this.options = options;
  }

  /** Reads the window again (after new events), keeping older pages in front of it. */
  async refresh(): Promise<void> {
    const { events: window, reachedStart } = await this.readWindow();
    const first = window[0];
    if (reachedStart || first === undefined) {
      this.events = window;
      this.complete = true;
    } else if (this.kept) {
      this.events = [...this.events.filter((e) => e.cursor < first.cursor), ...window];
    } else {
      this.events = window;
      this.complete = false;
    }
    await this.readKeyring();
    await this.readBase();
  }

  /** Marks a page of older history as on its way (the panel says so before it is read). */
  markLoading(): void {
    if (!this.complete) this.older = { kind: 'loading' };
  }

  /** Reads the page of history just older than what is loaded, from the device or the server. */
  async loadOlder(): Promise<void> {
    const oldest = this.events[0];
    if (this.complete || oldest === undefined) {
      this.older = { kind: 'idle' };
      return;
    }
    this.older = { kind: 'loading' };
    try {
      const page = (
        await this.store.read({ reverse: true, after: oldest.cursor, limit: this.options.page })
      ).reverse();
      if (this.options.encrypted) {
        const erasures = await this.store.read({
          stream: '$keyring',
          reverse: true,
          after: oldest.cursor,
          limit: this.options.page,
        });
        for (const e of erasures) this.keyring.set(e.id, e);
      }
      this.events = [...page, ...this.events];
      this.kept = true;
      if (page.length < this.options.page) this.complete = true;
      await this.readBase();
      this.older = { kind: 'idle' };
    } catch (error) {
      this.older = isHistoryOffline(error)
        ? { kind: 'offline' }
        : { kind: 'failed', message: error instanceof Error ? error.message : String(error) };
    }
  }

  /** The loaded events after the base, with erasures in their place (history-text.ts). */
  shown(): StoredEvent<unknown>[] {
    const from = this.base === undefined ? 0 : 1;
    const events = this.events.slice(from);
    // Erasures after the base only (the base's own board already holds what came before).
    const start = this.base?.event.cursor;
    const erasures = [...this.keyring.values()].filter(
      (e) => e.type === 'StreamShredded' && (start === undefined || e.cursor > start),
    );
    if (erasures.length === 0) return events;
    return [...events, ...erasures].sort((a, b) =>
      a.cursor < b.cursor ? -1 : a.cursor > b.cursor ? 1 : 0,
    );
  }

  /** Invariant 1. */
  private async readWindow(): Promise<{ events: StoredEvent<unknown>[]; reachedStart: boolean }> {
    // Invariant 5: positions are dense per database, so the head bounds what the device holds.
    const { head } = await this.store.readSince(0, { limit: 0 });
    let limit = Math.max(1, Math.min(this.options.window, head));
    for (;;) {
      try {
        const events = (await this.store.read({ reverse: true, limit })).reverse();
        const oldest = events[0];
        if (events.length < limit || oldest === undefined) return { events, reachedStart: true };
        if (limit === this.options.window) return { events, reachedStart: false };
        // Short of the window because the device holds little: is there anything before it?
        // One event at most, from the server on a device that joined from its snapshot.
        return { events, reachedStart: !(await this.holdsBefore(oldest)) };
      } catch (error) {
        if (!isHistoryOffline(error) || limit === 1) throw error;
        limit = Math.floor(limit / 2);
      }
    }
  }

  /** Whether any event sorts before `oldest` (offline, older history is on the server: yes). */
  private async holdsBefore(oldest: StoredEvent<unknown>): Promise<boolean> {
    try {
      return (await this.store.read({ reverse: true, after: oldest.cursor, limit: 1 })).length > 0;
    } catch (error) {
      if (isHistoryOffline(error)) return true;
      throw error;
    }
  }

  /** An encrypted board's erasures over the loaded range (kept when the server cannot say). */
  private async readKeyring(): Promise<void> {
    if (!this.options.encrypted) return;
    const oldest = this.events[0];
    try {
      const erasures = await this.store.read(
        this.complete || oldest === undefined
          ? { stream: '$keyring' }
          : { stream: '$keyring', after: oldest.cursor },
      );
      for (const e of erasures) this.keyring.set(e.id, e);
    } catch (error) {
      if (!isHistoryOffline(error)) throw error;
    }
  }

  /** Invariant 3. */
  private async readBase(): Promise<void> {
    const oldest = this.events[0];
    if (this.complete || oldest === undefined) {
      this.base = undefined;
      return;
    }
    if (this.base?.event.id === oldest.id && this.base.state !== undefined) return;
    let state: BoardState | undefined;
    try {
      state = await boardAt(this.store, oldest);
    } catch (error) {
      // Words against an empty board rather than no Activity at all (read again next time).
      if (!isHistoryOffline(error)) console.warn('the board before the loaded history', error);
    }
    this.base = { event: oldest, state };
  }
}
