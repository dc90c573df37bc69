/**
 * The demo page: connects to the store's worker, appends an event for every change the user
 * makes, and renders the board (a projection), the activity log, time travel and sync status.
 *
 * Invariants:
 * 1. The page never changes state directly: every change is an appended event, and the board
 *    re-renders from the projection (watch), so local, other-tab and synced changes look alike.
 * 2. Time travel only reads (`state` with `at`); the present keeps folding underneath.
 * 3. Activity and time travel show the loaded part of the log (loaded-log.ts): the newest events,
 *    which the device keeps, and older pages read on demand; never the whole log at once.
 */
import {
  type Conflict,
  connectStore,
  type EventStore,
  type StorageNotice,
  type StoredEvent,
  startWorker,
} from '../../src/index.ts';
import { type ActivityInput, ActivityView, type ConflictRole } from './activity-view.ts';
import {
  BOARD_ID,
  type BoardState,
  boardProjection,
  boardStream,
  type Card,
  cardStream,
  deviceStream,
  dropPosition,
  type EventMap,
  type EventType,
  endOf,
  initialBoard,
  newEvent,
  notesStream,
  PROJECTION,
  sortedColumns,
  stepPosition,
} from './board.ts';
import { boardOf, newBoardLink, saveBoardKey, shareLink } from './board-link.ts';
import { type BoardActions, type Direction, renderBoard } from './board-view.ts';
import { type ConflictNote, conflictView, type DeletedNotice } from './conflicts.ts';
import { freshDeviceName } from './device-name.ts';
import { byId } from './dom.ts';
import { FrameRenderer } from './frame.ts';
import { describeHistory, type HistoryEntry } from './history-text.ts';
import { HistoryView } from './history-view.ts';
import { entryCommandId, LANE_COLUMN, laneStream } from './lane.ts';
import { boardAt, isHistoryOffline, LoadedLog } from './loaded-log.ts';
import { bindNotes, type NotesEditor } from './notes.ts';
import { describeRetain, retainFromSearch, storageNoticeText, workerName } from './retention.ts';
import { renderStatus } from './status-view.ts';
import { SyncLink } from './sync.ts';
import { type PlannedEvent, type UndoEntry, UndoStack } from './undo.ts';
import { WipNotices } from './wip-notices.ts';

/** Set by vite.config.ts: true in the production build, whose service worker exists. */
declare const __DEMO_SERVICE_WORKER__: boolean;

const board = boardOf(location);
const { db } = board;
/** What this device keeps (retention.ts): `?keep-events=N` changes it. */
const retain = retainFromSearch(location.search);
/** Events per page of older history (`?history-page=N` changes it). */
const HISTORY_PAGE = pageFromSearch(location.search);

async function main(): Promise<void> {
  setUpBoardLinks();
  // The worker reads an encrypted board's key from this origin's IndexedDB (board-link.ts).
  if (board.key !== undefined) await saveBoardKey(db, board.key);
  if (__DEMO_SERVICE_WORKER__ && 'serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js').catch((error: unknown) => {
      console.warn('service worker not registered', error);
    });
  }
  const worker = startWorker({
    shared: () =>
      new SharedWorker(new URL('./store.worker.ts', import.meta.url), {
        type: 'module',
        name: workerName(db, location.search),
      }),
    dedicated: () =>
      new Worker(new URL('./store.worker.ts', import.meta.url), {
        type: 'module',
        name: workerName(db, location.search),
      }),
  });
  const store = await connectStore<unknown>(worker);
  const app = new App(store);
  app.start();
  // `?devtools`: Chronicle's development panel under the board (loaded only when asked).
  if (new URLSearchParams(location.search).has('devtools')) {
    const { mountDevtools } = await import('../../src/devtools/index.ts');
    const section = byId('devtools');
    section.hidden = false;
    mountDevtools(store, section, { projections: [boardProjection] });
  }
  store.worker.on('status', (status) => {
    if (status.storage === 'closed') {
      byId('fatal').textContent =
        'Another tab upgraded or deleted this board’s database: reload the page.';
      byId('fatal').hidden = false;
    }
  });
}

/** Cards drawn anew in one go before the rest follow (renderBoardNow); doubled each time. */
const FIRST_CARDS = 500;
/** The pause between those draws: the page paints and answers input in between. */
const BETWEEN_DRAWS_MS = 30;

class App {
  private present: BoardState = initialBoard();
  private shown: BoardState | undefined;
  private log: StoredEvent<unknown>[] = [];
  /** The highest seq of this replica's own events in the log (ackedUpTo). */
  private ownSeq = 0;
  /**
   * Board and Activity render at most once a frame (frame.ts); conflicts are worked out there
   * too, from the log and the board as they are by then.
   */
  private readonly frame = new FrameRenderer<'conflicts' | 'board' | 'activity'>((views) => {
    if (views.has('conflicts')) this.noteConflicts();
    if (views.has('board') || views.has('conflicts')) this.renderBoardNow();
    if (views.has('activity') || views.has('conflicts')) this.renderActivityNow();
  });
  /** The log as the audit trail's entries (history-text.ts), for Activity and time travel. */
  private entries: HistoryEntry[] = [];
  private cardConflicts = new Map<string, ConflictNote>();
  private deletedNotices: DeletedNotice[] = [];
  private conflicts: Conflict<unknown>[] = [];
  private conflictRoles = new Map<string, ConflictRole>();
  private notes: { card: string; editor: NotesEditor } | undefined;
  private named = false;
  /** Whether sync has been up to date once since the page opened (nameDevice). */
  private synced = false;
  private travels = 0;
  /** The id of the last event the time-travelled board shows. */
  private asOf: string | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  /** The loaded part of the log (invariant 3). */
  private readonly loaded: LoadedLog;
  /** A page of older history was asked for: the next refresh reads it. */
  private wantOlder = false;
  /** The time-travelled point's board needs history no server gives now. */
  private pointOnServer = false;
  private readonly sync: SyncLink;
  private readonly activity: ActivityView;
  private readonly history: HistoryView;
  private readonly actions: BoardActions;
  private readonly undo = new UndoStack();
  /** Refused moves into Doing, moved back and told (wip-notices.ts). */
  private readonly wip: WipNotices;
  /** The most cards drawn anew at once, and the drawing of the rest (renderBoardNow). */
  private boardBudget = FIRST_CARDS;
  private boardLater: ReturnType<typeof setTimeout> | undefined;

  private readonly store: EventStore<unknown>;

  constructor(store: EventStore<unknown>) {
    this.store = store;
    this.wip = new WipNotices({
      store,
      db,
      log: () => this.log,
      present: () => this.present,
      deviceName: (replica) => this.deviceName(replica),
    });
    this.sync = new SyncLink(store, db, board.space);
    this.loaded = new LoadedLog(store, {
      window: retain.events,
      page: HISTORY_PAGE,
      encrypted: board.space !== undefined,
    });
    this.activity = new ActivityView(
      byId('activity-list'),
      byId('filter-card'),
      byId('filter-type'),
      byId('activity-summary'),
      {
        button: byId('activity-older-button'),
        status: byId('activity-older'),
        load: () => this.loadOlder(),
      },
    );
    this.history = new HistoryView(
      {
        slider: byId('history-slider'),
        label: byId('history-label'),
        backToNow: byId('back-to-now'),
        earlier: byId('history-earlier'),
        status: byId('history-status'),
      },
      (at) => void this.travel(at),
      () => this.loadOlder(),
    );
    this.actions = this.makeActions();
  }

  start(): void {
    byId('undo').addEventListener('click', () => this.undoLast());
    addEventListener('keydown', (event) => {
      const typing =
        event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
      if ((event.ctrlKey || event.metaKey) && event.key === 'z' && !event.shiftKey && !typing) {
        event.preventDefault();
        this.undoLast();
      }
    });
    const offline = byId<HTMLInputElement>('work-offline');
    offline.checked = this.sync.forcedOffline();
    offline.addEventListener('change', () => {
      this.sync.setForcedOffline(offline.checked);
      this.nameDevice();
    });
    this.sync.on((view) => {
      offline.checked = view.forcedOffline;
      this.renderSync();
      this.renderActivity();
    });
    this.sync.start();
    this.renderSync();
    this.store.sync.on('status', (status) => this.wip.settleRefused(status.rejected));
    this.store.sync.on('status', (status) => {
      if (this.synced || status.state !== 'idle') return;
      this.synced = true;
      this.nameDevice();
    });

    const deviceInput = byId<HTMLInputElement>('device-name');
    deviceInput.addEventListener('change', () => {
      const name = deviceInput.value.trim();
      if (name !== '') this.append(deviceStream(this.store.replicaId), 'DeviceNamed', { name });
    });

    byId('notes-close').addEventListener('click', () => this.closeNotes());
    byId('notes-panel').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.closeNotes();
    });

    this.store.watch<BoardState>(PROJECTION, (state) => {
      // A shred from another device refolds the board without an event to subscribe to.
      if (state.cards !== this.present.cards) void this.refresh();
      this.present = state;
      this.frame.ask('conflicts');
      this.nameDevice();
      const notes = this.notes && state.cards[this.notes.card];
      if (notes) byId('notes-title').textContent = `Notes: ${notes.title}`;
    });
    this.store.subscribe(() => void this.refresh());
    void this.refresh();
    this.store.on('storage', (notice) => this.showStorageNotice(notice));
    byId('storage-notice-dismiss').addEventListener('click', () => {
      byId('storage-notice').hidden = true;
    });
  }

  /** Storage pressure (retention.ts): said once, unobtrusively, until dismissed or replaced. */
  private showStorageNotice(notice: StorageNotice): void {
    byId('storage-notice-text').textContent = storageNoticeText(notice);
    byId('storage-notice').hidden = false;
  }

  /** Asks for the page of history before the loaded part; the panels say it is loading. */
  private loadOlder(): void {
    if (this.loaded.complete || this.loaded.older.kind === 'loading') return;
    this.loaded.markLoading();
    this.renderHistory();
    this.renderActivity();
    this.wantOlder = true;
    void this.refresh();
  }

  private renderHistory(): void {
    this.history.update(this.entries, this.log.length, {
      complete: this.loaded.complete,
      base: this.loaded.base?.event,
      older: this.loaded.older,
      keeps: describeRetain(retain),
    });
  }

  /** A first visit names this device, with an event like any other change. */
  private nameDevice(): void {
    const name = this.present.devices[this.store.replicaId];
    const input = byId<HTMLInputElement>('device-name');
    if (name !== undefined) {
      if (document.activeElement !== input) input.value = name;
      return;
    }
    if (this.named) return;
    // A fresh device joins from the server's snapshot only while its log is empty (src/store/
    // join.ts invariant 1): its name waits for its first sync, or for the user to work offline.
    if (!this.synced && !this.sync.forcedOffline()) return;
    this.named = true;
    this.append(deviceStream(this.store.replicaId), 'DeviceNamed', { name: freshDeviceName() });
  }

  private deviceName = (replica: string): string =>
    this.present.devices[replica] ?? `device ${replica.slice(0, 6)}`;

  /** Re-reads the log and conflicts after events arrive; one refresh at a time, coalesced. */
  private async refresh(): Promise<void> {
    if (this.refreshing !== undefined) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        const [, conflicts] = await Promise.all([this.loaded.refresh(), this.store.conflicts()]);
        if (this.wantOlder) {
          this.wantOlder = false;
          await this.loaded.loadOlder();
        }
        // Erasures belong in the audit trail (history-text.ts): who erased a card, and when.
        const log = this.loaded.shown();
        this.log = log;
        this.ownSeq = 0;
        for (const e of log) {
          if (e.replica === this.store.replicaId && e.seq > this.ownSeq) this.ownSeq = e.seq;
        }
        this.entries = describeHistory(log, this.loaded.base?.state);
        this.conflicts = conflicts;
        this.renderHistory();
        this.wip.settleRefused(this.store.sync.status().rejected);
        this.wip.render();
        this.renderSync();
        this.frame.ask('conflicts');
      } while (this.refreshAgain);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * Card streams only: notes are Yjs updates, which merge (conflicts.ts says the rest). Run again
   * whenever the log or the present board changes: whether a card is gone decides between a
   * badge on it and a notice, and the two arrive apart (the log by refresh, the board by watch).
   */
  private noteConflicts(): void {
    const view = conflictView(this.log, this.conflicts, this.present, this.deviceName);
    this.cardConflicts = view.cards;
    this.conflictRoles = view.roles;
    this.deletedNotices = view.deleted;
  }

  private renderBoard(): void {
    this.frame.ask('board');
  }

  private renderBoardNow(): void {
    if (this.boardLater !== undefined) clearTimeout(this.boardLater);
    this.boardLater = undefined;
    const travelling = this.history.isTravelling();
    const complete = renderBoard(
      byId('board'),
      {
        state: travelling ? (this.shown ?? this.present) : this.present,
        readOnly: travelling,
        conflicts: travelling ? new Map() : this.cardConflicts,
        deleted: travelling ? [] : this.deletedNotices,
        deviceName: this.deviceName,
        erasable: board.space !== undefined && !travelling,
      },
      this.actions,
      this.boardBudget,
    );
    // A board too large to draw at once goes on in the next tasks, each drawing twice as many
    // (board-view.ts renderBoard), so that its first cards show at once and the page answers.
    if (complete) this.boardBudget = FIRST_CARDS;
    else {
      this.boardBudget *= 2;
      this.boardLater = setTimeout(() => this.renderBoard(), BETWEEN_DRAWS_MS);
    }
    byId('history-banner').hidden = !travelling;
    // A point whose board is on the server (offline): no board rather than the wrong one.
    byId('board').hidden = travelling && this.pointOnServer;
  }

  /**
   * How far the server holds this replica's events (by seq): our highest seq − pending, since
   * acknowledgements follow our dense seq. Remembered per replica, for the moments when the
   * status cannot be believed yet (SyncView.trusted).
   */
  private ackedUpTo(): { ackedUpTo: number; pending: number } {
    const key = `chronicle-demo:acked:${db}:${this.store.replicaId}`;
    const own = this.ownSeq;
    const view = this.sync.view();
    if (view.trusted) {
      const ackedUpTo = Math.max(0, own - view.status.pending);
      localStorage.setItem(key, String(ackedUpTo));
      return { ackedUpTo, pending: view.status.pending };
    }
    const ackedUpTo = Math.min(own, Number(localStorage.getItem(key) ?? 0));
    return { ackedUpTo, pending: own - ackedUpTo };
  }

  private renderSync(): void {
    renderStatus(byId('sync-status'), this.sync.view(), this.ackedUpTo().pending);
  }

  private renderActivity(): void {
    this.frame.ask('activity');
  }

  private renderActivityNow(): void {
    const input: ActivityInput = {
      events: this.log,
      entries: this.entries,
      state: this.present,
      replicaId: this.store.replicaId,
      ackedUpTo: this.ackedUpTo().ackedUpTo,
      conflictRoles: this.conflictRoles,
      deviceName: this.deviceName,
      asOf: this.asOf,
      restore: (card, as, eventId) => this.restoreCard(card, as, eventId),
      complete: this.loaded.complete,
      older: this.loaded.older,
      keeps: describeRetain(retain),
    };
    this.activity.update(input);
  }

  private async travel(at: StoredEvent<unknown> | 'start' | 'now'): Promise<void> {
    const request = ++this.travels;
    this.asOf = typeof at === 'object' ? at.id : undefined;
    this.renderActivity();
    this.pointOnServer = false;
    if (at === 'now') {
      this.shown = undefined;
    } else {
      let past: BoardState | undefined;
      try {
        past =
          at === 'start'
            ? await this.store.state<BoardState>(PROJECTION, { at: 0 })
            : await boardAt(this.store, at);
      } catch (error) {
        // Below the device's horizon, offline: said, not shown as an empty or present board.
        if (!isHistoryOffline(error)) throw error;
      }
      // A later slider move may have finished first; show only the latest choice.
      if (request !== this.travels) return;
      this.shown = past;
      this.pointOnServer = past === undefined;
    }
    this.history.pointOnServer(this.pointOnServer);
    this.renderBoard();
  }

  private append<T extends EventType>(stream: string, type: T, data: EventMap[T]): void {
    void this.appendWith(stream, type, data);
  }

  /** Appends; resolves with the stored event's id (undefined when the append failed). */
  private async appendWith<T extends EventType>(
    stream: string,
    type: T,
    data: EventMap[T],
  ): Promise<string | undefined> {
    try {
      const [stored] = await this.store.append(stream, newEvent(type, data));
      return stored?.id;
    } catch (error) {
      console.error('append failed', error);
      return undefined;
    }
  }

  /**
   * Puts a card back as it was after `eventId`, with new events carrying `restoredFrom`: added
   * again if it is gone, else renamed and moved where it differs (history is never rewritten).
   */
  private restoreCard(id: string, as: Card | undefined, eventId: string): void {
    if (as === undefined) return;
    const stream = cardStream(id);
    const now = this.present.cards[id];
    const column = this.present.columns[as.column] ? as.column : 'todo';
    if (now === undefined) {
      this.append(stream, 'CardAdded', {
        title: as.title,
        column,
        position: as.position,
        restoredFrom: eventId,
      });
      return;
    }
    if (now.title !== as.title) {
      this.append(stream, 'CardRenamed', { title: as.title, restoredFrom: eventId });
    }
    if (now.column !== column || now.position !== as.position) {
      this.append(stream, 'CardMoved', { column, position: as.position, restoredFrom: eventId });
    }
  }

  /**
   * Moves a card. Into Doing, it first takes a place in the lane (lane.ts), a command on a strict
   * stream: refused here when Doing is full as this device sees it, else tentative until the
   * server accepts it (settleRefused moves the card back if it does not). Out of Doing, it frees
   * its place. A move through the lane is not undoable: its undo would pass by the limit.
   */
  private async moveCard(
    card: Card,
    column: string,
    position: number,
    back: PlannedEvent,
  ): Promise<void> {
    const target = this.present.columns[column]?.title ?? column;
    const change = {
      stream: cardStream(card.id),
      type: 'CardMoved' as const,
      data: { column, position },
    };
    if (column === LANE_COLUMN && card.column !== LANE_COLUMN) {
      let entered: StoredEvent<unknown>[];
      try {
        entered = await this.store.execute(
          'lane',
          laneStream(BOARD_ID),
          'enter',
          { card: card.id },
          { commandId: entryCommandId(card.id, card.column) },
        );
      } catch (error) {
        const refused = error as { code?: string; message?: string };
        if (refused.code !== 'COMMAND_REJECTED') throw error;
        this.wip.show(`“${card.title}” stays where it is: ${refused.message ?? 'Doing is full'}`);
        return;
      }
      // The move is caused by the place it took (Activity: "because of …").
      const place = entered[0];
      const meta =
        place === undefined
          ? {}
          : { $correlationId: place.meta?.$correlationId ?? place.id, $causationId: place.id };
      this.store
        .append(change.stream, { ...newEvent(change.type, change.data), meta })
        .catch((error: unknown) => console.error('append failed', error));
      return;
    }
    if (card.column === LANE_COLUMN && column !== LANE_COLUMN) {
      this.leaveLane(card.id);
      this.append(change.stream, change.type, change.data);
      return;
    }
    this.undoable(change, `moved “${card.title}” to ${target}`, back);
  }

  private leaveLane(card: string): void {
    this.store.execute('lane', laneStream(BOARD_ID), 'leave', { card }).catch((error: unknown) => {
      console.error('leaving the lane failed', error);
    });
  }

  /** A change this device can take back (undo.ts): appended, with its inverse remembered. */
  private undoable<T extends EventType>(
    change: { stream: string; type: T; data: EventMap[T] },
    label: string,
    inverse: PlannedEvent,
  ): void {
    const entry: UndoEntry = { label, inverse };
    this.undo.push(entry);
    this.renderUndo();
    void this.appendWith(change.stream, change.type, change.data).then((id) => {
      if (id !== undefined) entry.eventId = id;
    });
  }

  /** Appends the inverse of this device's newest change not undone yet (undo.ts invariant 1). */
  private undoLast(): void {
    const entry = this.undo.pop();
    this.renderUndo();
    if (entry === undefined) return;
    const { stream, type, data } = entry.inverse;
    const marked = entry.eventId === undefined ? data : { ...data, undoes: entry.eventId };
    this.append(stream, type, marked as EventMap[typeof type]);
  }

  private renderUndo(): void {
    const button = byId<HTMLButtonElement>('undo');
    const next = this.undo.peek();
    button.hidden = next === undefined;
    button.textContent = next === undefined ? 'Undo' : `Undo: ${next.label}`;
  }

  private makeActions(): BoardActions {
    const move = (card: Card, direction: Direction) => {
      const back: PlannedEvent = {
        stream: cardStream(card.id),
        type: 'CardMoved',
        data: { column: card.column, position: card.position },
      };
      const columns = sortedColumns(this.present);
      const index = columns.findIndex((c) => c.id === card.column);
      if (direction === 'up' || direction === 'down') {
        const position = stepPosition(this.present, card, direction === 'up' ? -1 : 1);
        if (position === undefined) return;
        this.undoable(
          {
            stream: cardStream(card.id),
            type: 'CardMoved',
            data: { column: card.column, position },
          },
          `moved “${card.title}”`,
          back,
        );
        return;
      }
      const target = columns[index + (direction === 'left' ? -1 : 1)];
      if (target === undefined) return;
      const position = endOf(this.present, target.id);
      void this.moveCard(card, target.id, position, back);
    };
    return {
      addCard: (column, title) => {
        const stream = cardStream(crypto.randomUUID());
        this.undoable(
          {
            stream,
            type: 'CardAdded',
            data: { title, column, position: endOf(this.present, column) },
          },
          `added “${title}”`,
          { stream, type: 'CardDeleted', data: {} },
        );
      },
      renameCard: (card, title) =>
        this.undoable(
          { stream: cardStream(card.id), type: 'CardRenamed', data: { title } },
          `renamed “${card.title}”`,
          { stream: cardStream(card.id), type: 'CardRenamed', data: { title: card.title } },
        ),
      moveCard: move,
      dropCard: (id, column, before) => {
        const card = this.present.cards[id];
        const target = this.present.columns[column];
        if (card === undefined || target === undefined) return;
        const position = dropPosition(this.present, id, column, before);
        if (position === undefined) return;
        void this.moveCard(card, column, position, {
          stream: cardStream(id),
          type: 'CardMoved',
          data: { column: card.column, position: card.position },
        });
      },
      deleteCard: (card) => {
        if (this.notes?.card === card.id) this.closeNotes();
        if (card.column === LANE_COLUMN) this.leaveLane(card.id);
        this.undoable(
          { stream: cardStream(card.id), type: 'CardDeleted', data: {} },
          `deleted “${card.title}”`,
          {
            stream: cardStream(card.id),
            type: 'CardAdded',
            data: { title: card.title, column: card.column, position: card.position },
          },
        );
      },
      eraseCard: (card) => void this.eraseCard(card.id),
      openNotes: (card) => this.openNotes(card),
      showActivity: (card) => this.activity.filterByCard(card.id),
      addColumn: (title) => {
        const last = sortedColumns(this.present).at(-1);
        this.append(boardStream(BOARD_ID), 'ColumnAdded', {
          column: crypto.randomUUID(),
          title,
          position: (last?.position ?? 0) + 1,
        });
      },
      renameColumn: (column, title) =>
        this.append(boardStream(BOARD_ID), 'ColumnRenamed', { column: column.id, title }),
      deleteColumn: (column) =>
        this.append(boardStream(BOARD_ID), 'ColumnDeleted', { column: column.id }),
      keepConflictValue: (card, note, option) => {
        const stream = cardStream(card.id);
        const resolves = note.events;
        if (option.shown || option.redo === undefined) {
          this.append(stream, 'ConflictResolved', { events: resolves, kept: option.label });
        } else if (option.redo.type === 'CardRenamed') {
          this.append(stream, 'CardRenamed', { title: option.redo.title, resolves });
        } else {
          const { column } = option.redo;
          this.append(stream, 'CardMoved', {
            column,
            position: endOf(this.present, column),
            resolves,
          });
        }
      },
      restoreCard: (notice) =>
        this.append(cardStream(notice.card), 'CardAdded', {
          title: notice.title,
          column: this.present.columns[notice.column] ? notice.column : 'todo',
          position: endOf(this.present, notice.column),
          resolves: notice.events,
        }),
      dismissDeleted: (notice) =>
        this.append(cardStream(notice.card), 'ConflictResolved', {
          events: notice.events,
          kept: 'deleted',
        }),
    };
  }

  private openNotes(card: Card): void {
    this.closeNotes();
    const textarea = byId<HTMLTextAreaElement>('notes-text');
    textarea.value = '';
    this.notes = { card: card.id, editor: bindNotes(this.store, card.id, textarea) };
    byId('notes-title').textContent = `Notes: ${card.title}`;
    byId('notes-panel').hidden = false;
    void this.notes.editor.binding.ready.then(() => textarea.focus());
  }

  /**
   * Erases a card for good (encrypted boards): its stream and its notes are shredded, on every
   * device once this syncs. A card in Doing leaves the lane first, so the WIP count stays right.
   */
  private async eraseCard(id: string): Promise<void> {
    if (this.notes?.card === id) this.closeNotes();
    if (this.present.cards[id]?.column === LANE_COLUMN) this.leaveLane(id);
    await this.store.shred(cardStream(id));
    await this.store.shred(notesStream(id));
    await this.refresh();
  }

  private closeNotes(): void {
    if (this.notes === undefined) return;
    const card = this.notes.card;
    this.notes.editor.close();
    this.notes = undefined;
    byId('notes-panel').hidden = true;
    document.querySelector<HTMLElement>(`[data-key="notes:${CSS.escape(card)}"]`)?.focus();
  }
}

/** "New encrypted board", and on an encrypted board its share link (board-link.ts). */
function setUpBoardLinks(): void {
  byId('new-encrypted-board').addEventListener('click', () => {
    location.assign(newBoardLink(location.origin));
  });
  if (board.space === undefined) return;
  byId('board-kind').hidden = false;
  const share = byId<HTMLButtonElement>('share-board');
  const output = byId<HTMLInputElement>('share-link');
  share.hidden = false;
  share.addEventListener('click', async () => {
    const link = await shareLink(location.origin, db);
    if (link === undefined) return;
    output.value = link;
    output.hidden = false;
    output.select();
    await navigator.clipboard?.writeText(link).catch(() => {});
  });
}

main().catch((error: unknown) => {
  const fatal = document.getElementById('fatal');
  if (fatal !== null) {
    fatal.textContent = `The board could not start: ${String(error)}`;
    fatal.hidden = false;
  }
  console.error(error);
});

/** `?history-page=N`: events per page of older history (default 200; tests use small pages). */
function pageFromSearch(search: string): number {
  const page = Number(new URLSearchParams(search).get('history-page') ?? Number.NaN);
  return Number.isSafeInteger(page) && page >= 1 ? page : 200;
}
