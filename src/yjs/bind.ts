/**
 * bindYDoc: a Y.Doc whose history is an event stream. Local Yjs updates are appended as
 * `yjs.update` events; events replayed from the store or arriving live (other tabs, sync) are
 * applied with the binding as transaction origin; every so often a `yjs.snapshot` compacts the
 * stream (events.ts describes both).
 *
 * Invariants:
 * 1. An update applied from the store runs in a transaction whose origin is the binding, and
 *    the binding appends only updates of other origins: nothing read is written back. (A
 *    Y.UndoManager tracks the `null` origin by default, so it ignores remote changes too, and its
 *    own undo transactions are local changes that get appended.)
 * 2. Local updates of one tick are merged into one event; appends run one at a time, in order.
 * 3. The binding's ids are made before the append, so its own events are recognised when the
 *    store delivers them back (before or after the append resolves, in-process or via a worker)
 *    and are not applied again.
 * 4. `covers` grows only from update events the doc holds, taken in delivery order (receive
 *    order keeps each replica's seq order), so a snapshot never claims an update it lacks.
 * 5. Live events that arrive during the replay are buffered and applied after it; duplicates of
 *    replayed events are skipped by id or by `covers`.
 * 6. After destroy() nothing is appended and nothing applied; local updates made before it are
 *    still appended (they are the user's edits).
 * 7. A failed append is reported; its content stays in the doc and reaches the log with this
 *    doc's next snapshot.
 */
import * as Y from 'yjs';
import type { StoredEvent } from '../core/events.ts';
import { EventId } from '../core/ids.ts';
import type { EventStore } from '../store/types.ts';
import { encodeBase64 } from './base64.ts';
import {
  type Covers,
  cover,
  isCovered,
  mergeCovers,
  parseYEvent,
  SNAPSHOT_TYPE,
  UPDATE_TYPE,
  type YSnapshotData,
  type YUpdateData,
} from './events.ts';
import { loadDoc } from './load.ts';

export interface BindYDocOptions {
  /** The document to bind (an editor's). Default: a new Y.Doc. */
  doc?: Y.Doc;
  /**
   * After a local update, append a snapshot once this many update events arrived since the last
   * snapshot (own and remote). 0 disables snapshots. Default 200.
   */
  snapshotEvery?: number;
  /** Failed appends and malformed events. Default: rethrown asynchronously (like the store). */
  onError?: (error: unknown) => void;
}

export interface YDocBinding {
  readonly doc: Y.Doc;
  /** Resolves once the stream was replayed into `doc`; rejects if it could not be read. */
  readonly ready: Promise<void>;
  /** Resolves once every local update made so far was appended (or its failure reported). */
  flush(): Promise<void>;
  /** Stops appending and applying (invariant 6); the doc itself is left to its owner. */
  destroy(): void;
}

export const DEFAULT_SNAPSHOT_EVERY = 200;

function reportAsync(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

class Binding implements YDocBinding {
  readonly doc: Y.Doc;
  readonly ready: Promise<void>;
  private readonly snapshotEvery: number;
  private readonly onError: (error: unknown) => void;
  private queue: Uint8Array[] = [];
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();
  /** Ids of events this binding appended and the store has not delivered back yet (inv. 3). */
  private readonly own = new Set<string>();
  private readonly covers: Covers = {};
  private sinceSnapshot = 0;
  private destroyed = false;
  private replaying = true;
  private buffered: StoredEvent[] = [];
  private replayed: Set<string> | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: EventStore<unknown>,
    private readonly stream: string,
    options: BindYDocOptions,
  ) {
    this.doc = options.doc ?? new Y.Doc();
    this.snapshotEvery = options.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    this.onError = options.onError ?? reportAsync;
    this.doc.on('update', this.onUpdate);
    // Subscribe before reading so that nothing written meanwhile is missed (invariant 5).
    this.unsubscribe = store.subscribe((events) => this.onEvents(events), {
      stream,
      types: [UPDATE_TYPE, SNAPSHOT_TYPE],
    });
    this.ready = this.replay();
    // `ready` may never be awaited; a failure is reported through onError as well.
    this.ready.catch(() => {});
  }

  private readonly onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || this.destroyed) return; // invariant 1
    this.queue.push(update);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.flushQueue();
    });
  };

  private async replay(): Promise<void> {
    try {
      const loaded = await loadDoc(this.store, this.stream, undefined, this.onError);
      if (this.destroyed) return;
      this.applyUpdates(loaded.updates);
      mergeCovers(this.covers, loaded.covers);
      this.sinceSnapshot = loaded.applied.size;
      this.replayed = loaded.applied;
      this.replaying = false;
      const buffered = this.buffered;
      this.buffered = [];
      this.applyLive(buffered);
      this.replayed = undefined;
    } catch (error) {
      this.onError(error);
      throw error;
    }
  }

  private onEvents(events: StoredEvent[]): void {
    if (this.destroyed) return;
    if (this.replaying) this.buffered.push(...events);
    else this.applyLive(events);
  }

  private applyLive(events: StoredEvent[]): void {
    const updates: Uint8Array[] = [];
    for (const event of events) {
      const mine = this.own.delete(event.id);
      if (this.replayed?.has(event.id)) continue;
      if (event.type === UPDATE_TYPE && isCovered(event, this.covers)) continue;
      try {
        const parsed = parseYEvent(event);
        if (parsed === undefined) continue;
        if (parsed.kind === 'update') {
          if (!mine) updates.push(parsed.update);
          cover(this.covers, event.replica, event.seq);
          this.sinceSnapshot += 1;
        } else {
          // A snapshot of another binding may hold updates not delivered here yet: apply it,
          // so that `covers` stays true of the doc (invariant 4).
          if (!mine) updates.push(parsed.state);
          mergeCovers(this.covers, parsed.covers);
          this.sinceSnapshot = 0;
        }
      } catch (error) {
        this.onError(error);
      }
    }
    this.applyUpdates(updates);
  }

  private applyUpdates(updates: Uint8Array[]): void {
    if (updates.length === 0) return;
    // One transaction: observers (the editor) see one change, and the origin marks it (inv. 1).
    this.doc.transact(() => {
      for (const update of updates) Y.applyUpdate(this.doc, update, this);
    }, this);
  }

  private flushQueue(): void {
    if (this.queue.length === 0) return;
    const updates = this.queue;
    this.queue = [];
    const update = updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates);
    const id = EventId.make(Date.now());
    this.own.add(id);
    const data: YUpdateData = { update: encodeBase64(update) };
    this.enqueue(async () => {
      await this.store.append(this.stream, { id, type: UPDATE_TYPE, data });
      await this.maybeSnapshot();
    });
  }

  /** Appends a snapshot if enough updates arrived since the last one. */
  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotEvery <= 0 || this.replaying || this.destroyed) return;
    if (this.sinceSnapshot < this.snapshotEvery) return;
    const id = EventId.make(Date.now());
    const data: YSnapshotData = {
      state: encodeBase64(Y.encodeStateAsUpdate(this.doc)),
      covers: { ...this.covers },
      updates: this.sinceSnapshot,
    };
    this.own.add(id);
    this.sinceSnapshot = 0;
    await this.store.append(this.stream, { id, type: SNAPSHOT_TYPE, data });
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => this.onError(error));
  }

  flush(): Promise<void> {
    this.flushQueue();
    return this.chain;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.flushQueue(); // edits made before destroy are the user's (invariant 6)
    this.destroyed = true;
    this.doc.off('update', this.onUpdate);
    this.unsubscribe();
    this.buffered = [];
  }
}

/**
 * Binds a Y.Doc to an event stream of any EventStore (openStore in-process, or connectStore
 * through a worker: the doc lives where the editor is).
 *
 * @example
 * const { doc, ready } = bindYDoc(store, 'card-1/notes');
 * await ready;
 * doc.getText('notes').insert(0, 'Hello');   // appended as a yjs.update event
 */
export function bindYDoc(
  store: EventStore<unknown>,
  stream: string,
  options: BindYDocOptions = {},
): YDocBinding {
  return new Binding(store, stream, options);
}
