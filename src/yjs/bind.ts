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
 * 3. The binding appends without ids (its events get the canonical id, left off the wire) and
 *    recognises its own events by their payload: before each append it notes the base64 text
 *    the event carries (an update's, a snapshot's state) in `own`, and an event delivered with
 *    a noted text is not applied again, whether it comes before or after the append resolves,
 *    in-process or through a worker, with any number of appends in flight. Nothing else would
 *    tell them apart for free: two bindings on one store (tabs, docs) share its replica id, the
 *    seq is known only when the append resolves (mostly after the echo), and a tag in `meta`
 *    would travel with every event.
 *    Skipping by payload is sound whoever made the event (a Y.Doc never loses what it held, so
 *    a text it produced brings it nothing), and a miss only costs time: applying an update the
 *    doc already holds is a no-op in Yjs (no `update` event, no observer call, nothing for an
 *    UndoManager to capture). Old events with random ids are read like any other.
 * 4. `covers` grows only from update events the doc holds, taken in delivery order (receive
 *    order keeps each replica's seq order), so a snapshot never claims an update it lacks.
 * 5. Live events that arrive during the replay are buffered and applied after it; duplicates of
 *    replayed events are skipped by id or by `covers`.
 * 6. After destroy() nothing is appended and nothing applied; local updates made before it are
 *    still appended (they are the user's edits).
 * 7. A failed append is reported; its content stays in the doc and reaches the log with this
 *    doc's next snapshot.
 * 8. Opening uses the local open cache (cache.ts) when there is a valid one: its state, then
 *    every Yjs event of the stream received after its position (readSince), so the open costs
 *    O(events since the cache), not O(stream). Otherwise it loads from the latest snapshot
 *    (load.ts), having read the head position first, so that the cache it then writes promises
 *    nothing the load may have missed.
 * 9. A cache write takes the doc's state and covers at one instant, then adds every event since
 *    the last cache position that they may lack (not covered, not one of this binding's own
 *    appends made before that instant): the written state includes everything up to the new
 *    position (cache-store.ts). Cache failures are ignored (the cache is never needed).
 */
import * as Y from 'yjs';
import { encodeBase64 } from '../core/base64.ts';
import type { NewEvent, StoredEvent } from '../core/events.ts';
import type { EventStore } from '../store/types.ts';
import { cacheKey } from './cache.ts';
import { openFromCache, refreshCache, writeCache } from './cache-store.ts';
import {
  type Covers,
  cover,
  isCovered,
  mergeCovers,
  mergeYEvent,
  payloadOf,
  SNAPSHOT_TYPE,
  UPDATE_TYPE,
  YJS_TYPES,
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
  /**
   * Keep the merged document in the store's local cache (EventStore.local, never synced) so
   * that the next open applies it plus only the events received since (invariant 8). Default true.
   */
  cache?: boolean;
  /** Rewrite the cache after this many update events (own and remote), and on destroy. Default 500. */
  cacheEvery?: number;
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
export const DEFAULT_CACHE_EVERY = 500;

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
  /** Payloads of events this binding appended and the store has not delivered back (inv. 3). */
  private readonly own = new Set<string>();
  private readonly covers: Covers = {};
  private sinceSnapshot = 0;
  private destroyed = false;
  private replaying = true;
  private buffered: StoredEvent[] = [];
  private replayed: Set<string> | undefined;
  private readonly unsubscribe: () => void;
  private readonly cacheKey: string | undefined;
  private readonly cacheEvery: number;
  /** The receive position the doc is known to hold every Yjs event of the stream up to. */
  private position: number | undefined;
  /** Update events applied or appended since the cache was last written. */
  private sinceCache = 0;
  private caching = false;

  private readonly store: EventStore<unknown>;
  private readonly stream: string;

  constructor(store: EventStore<unknown>, stream: string, options: BindYDocOptions) {
    this.store = store;
    this.stream = stream;
    this.doc = options.doc ?? new Y.Doc();
    this.snapshotEvery = options.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    this.onError = options.onError ?? reportAsync;
    this.cacheKey = options.cache === false ? undefined : cacheKey(stream);
    this.cacheEvery = options.cacheEvery ?? DEFAULT_CACHE_EVERY;
    this.doc.on('update', this.onUpdate);
    // Subscribe before reading so that nothing written meanwhile is missed (invariant 5).
    this.unsubscribe = store.subscribe((events) => this.onEvents(events), {
      stream,
      types: YJS_TYPES,
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
      const cached = await this.openFromCache();
      if (this.destroyed) return;
      if (!cached) await this.openFromEvents();
      if (this.destroyed) return;
      this.replaying = false;
      const buffered = this.buffered;
      this.buffered = [];
      this.applyLive(buffered);
      this.replayed = undefined;
      // Before `ready` resolves, so that a store closed right after still receives the write.
      if (this.sinceCache > 0) this.writeCacheAt(this.position);
    } catch (error) {
      this.onError(error);
      throw error;
    }
  }

  /** The cached state plus the events received since it (invariant 8); false when unusable. */
  private async openFromCache(): Promise<boolean> {
    if (this.cacheKey === undefined) return false;
    const opened = await openFromCache(this.store, {
      key: this.cacheKey,
      stream: this.stream,
      onError: this.onError,
    });
    if (opened === undefined) return false;
    if (this.destroyed) return true;
    mergeCovers(this.covers, opened.covers);
    this.sinceSnapshot = opened.sinceSnapshot;
    this.sinceCache += opened.sinceCache;
    this.applyUpdates(opened.updates);
    this.replayed = opened.applied;
    this.position = opened.position;
    return true;
  }

  private async openFromEvents(): Promise<void> {
    // The head first: the load below then holds every event up to it (invariant 8).
    const head =
      this.cacheKey === undefined
        ? undefined
        : await this.store.readSince(0, { limit: 0 }).then(
            (r) => r.head,
            () => undefined,
          );
    const loaded = await loadDoc(this.store, this.stream, undefined, this.onError);
    if (this.destroyed) return;
    this.applyUpdates(loaded.updates);
    mergeCovers(this.covers, loaded.covers);
    this.sinceSnapshot = loaded.applied.size;
    this.replayed = loaded.applied;
    this.position = head;
    this.sinceCache = 1; // no valid cache: write one
  }

  private onEvents(events: StoredEvent[]): void {
    if (this.destroyed) return;
    if (this.replaying) this.buffered.push(...events);
    else this.applyLive(events);
  }

  private applyLive(events: StoredEvent[]): void {
    const updates: Uint8Array[] = [];
    for (const event of events) {
      const payload = payloadOf(event);
      const mine = payload !== undefined && this.own.delete(payload); // invariant 3
      if (this.replayed?.has(event.id)) continue;
      if (event.type === UPDATE_TYPE && isCovered(event, this.covers)) continue;
      if (mine) {
        // Neither decoded nor applied: the doc made it. Its snapshot's covers were copied from
        // `covers`, and sinceSnapshot was reset when it was made.
        if (event.type === UPDATE_TYPE) {
          cover(this.covers, event.replica, event.seq);
          this.countUpdate();
        }
        continue;
      }
      try {
        // A snapshot of another binding may hold updates not delivered here yet: it is applied,
        // so that `covers` stays true of the doc (invariant 4).
        const kind = mergeYEvent(event, updates, this.covers);
        if (kind === 'update') this.countUpdate();
        else if (kind === 'snapshot') this.sinceSnapshot = 0;
      } catch (error) {
        this.onError(error);
      }
    }
    this.applyUpdates(updates);
    if (!this.replaying && this.sinceCache >= this.cacheEvery) void this.refreshCache();
  }

  /** One more update event held since the last snapshot and cache (covered by the caller). */
  private countUpdate(): void {
    this.sinceSnapshot += 1;
    this.sinceCache += 1;
  }

  /** Writes the cache for a position the doc is known to hold everything up to (invariant 9). */
  private writeCacheAt(position: number | undefined): void {
    if (this.cacheKey === undefined || position === undefined) return;
    this.sinceCache = 0;
    writeCache(this.store, this.cacheKey, {
      replica: this.store.replicaId,
      position,
      state: Y.encodeStateAsUpdate(this.doc),
      covers: { ...this.covers },
      sinceSnapshot: this.sinceSnapshot,
    });
  }

  /**
   * Writes the cache with the events received since its position merged in, without touching
   * the doc (so it works after destroy too; invariant 9).
   */
  private async refreshCache(): Promise<void> {
    const key = this.cacheKey;
    const from = this.position;
    if (key === undefined || from === undefined || this.caching || this.replaying) return;
    this.caching = true;
    this.sinceCache = 0;
    // One instant: what the doc holds now.
    const instant = {
      state: Y.encodeStateAsUpdate(this.doc),
      covers: { ...this.covers },
      sinceSnapshot: this.sinceSnapshot,
      own: new Set(this.own),
    };
    try {
      const written = await refreshCache(this.store, { key, stream: this.stream, from, instant });
      if (written !== undefined && (this.position === undefined || written > this.position)) {
        this.position = written;
      }
    } finally {
      this.caching = false;
    }
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
    const data: YUpdateData = { update: encodeBase64(update) };
    this.sinceCache += 1;
    this.enqueue(async () => {
      await this.appendOwn({ type: UPDATE_TYPE, data }, data.update);
      await this.maybeSnapshot();
      if (this.sinceCache >= this.cacheEvery && !this.destroyed) void this.refreshCache();
    });
  }

  /** Appends a snapshot if enough updates arrived since the last one. */
  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotEvery <= 0 || this.replaying || this.destroyed) return;
    if (this.sinceSnapshot < this.snapshotEvery) return;
    const data: YSnapshotData = {
      state: encodeBase64(Y.encodeStateAsUpdate(this.doc)),
      covers: { ...this.covers },
      updates: this.sinceSnapshot,
    };
    this.sinceSnapshot = 0;
    await this.appendOwn({ type: SNAPSHOT_TYPE, data }, data.state);
  }

  /**
   * Appends without an id (the store gives it the canonical one), noting its payload first so
   * that its delivery is recognised however early it comes (invariant 3).
   */
  private async appendOwn(event: NewEvent, payload: string): Promise<void> {
    this.own.add(payload);
    try {
      await this.store.append(this.stream, event);
    } catch (error) {
      // Nothing will come back (and if it was written after all, applying it is a no-op).
      this.own.delete(payload);
      throw error;
    }
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
    if (this.sinceCache > 0 && !this.replaying) void this.refreshCache();
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
