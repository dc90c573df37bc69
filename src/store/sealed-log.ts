/**
 * The store's view of an encrypted log: the same EventLog, with every event it hands up opened
 * (core/sealing.ts) and every snapshot sealed on its way down. The storage, and the sync layer
 * (which reads the raw log: StoreInternals.log), only ever hold sealed events.
 *
 * Invariants:
 * 1. Every record this view returns is opened when a key here opens it, and otherwise returned
 *    as stored (still sealed: meta.$sealed names its key), reported once per id to
 *    `onUnreadable`. Never dropped: a page keeps its length, so "a short page means the head"
 *    (adapter.ts invariant 3) holds through the view. With `lazyIngest` (the store's view),
 *    what ingest hands back is the exception: as stored, since its callers read envelopes and
 *    strict meta, which stay in clear; a catch-up then opens nothing until something reads it.
 * 2. Appends arrive sealed already (store/local-appends.ts seals before the queue); the view
 *    writes them as they are.
 * 3. A snapshot's state is sealed under the current key (a stolen disk shows no state); one
 *    that no key here opens reads as absent, so the projection replays instead.
 * 4. What this replica sealed itself is remembered (a bounded map from sealed text to content,
 *    found by the text's IV), so reading back its own appends costs no decryption. A shredded
 *    stream's are forgotten.
 * 5. Records pass hooks.prepare before any is opened (encryption.ts invariant 4); a page with no
 *    sealed event and no `$keyring` event is handed up as it is, without a promise per record,
 *    and so are the events of invariant 4 and shredded ones: only a decryption costs a promise,
 *    and none where the runtime decrypts at once (Node, core/sealing.ts invariant 7).
 * 6. A sealed event of a shredded stream reads as shredded: data null, meta { $shredded: true }.
 * 7. Hidden names (core/sealing.ts invariant 5): a read by stream name reads the pseudonym's
 *    stream; an opened event has its name and type back; streamVersion and conflictStreams
 *    speak names. An event no key opens keeps its pseudonym and the type `~`.
 */

import type { AppendUnitOutcome, StreamAppendOutcome } from '../core/append-group.ts';
import type { JsonObject, JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { Keyring } from '../core/keyring.ts';
import type { StoredSigningKey } from '../core/replica-identity.ts';
import {
  isSealedState,
  KEYRING_STREAM,
  type OpenResult,
  openSealed,
  openSealedNow,
  openValue,
  PSEUDONYM_PREFIX,
  SEALED_META,
  type SealedEvent,
  SHREDDED_META,
  sealedKid,
  sealValue,
} from '../core/sealing.ts';
import { stateFromText, stateToText } from '../core/state-text.ts';
import type {
  AppendGroupRequest,
  CursorQuery,
  DiscardedEvent,
  EventLog,
  IngestRequest,
  IngestResult,
  LocalAppendRequest,
  LocalAppendResult,
  RestampRequest,
  RestampResult,
  SnapshotRecord,
} from '../storage/adapter.ts';
import { LOCAL_META_PREFIX } from './local-cache.ts';

/** Opened contents kept for the view's own sealed texts (invariant 4). */
const REMEMBERED = 4096;
const SNAPSHOT_PURPOSE = 'chronicle/snapshot';
const LOCAL_PURPOSE = 'chronicle/local';

export interface UnreadableEvent {
  id: string;
  cursor: string;
  kid: string;
  reason: 'key-unknown' | 'corrupt';
}

export interface Opened {
  data: JsonValue;
  meta?: JsonObject;
  /** The name and type, when the envelope hides them (core/sealing.ts invariant 5). */
  stream?: string;
  type?: string;
}

interface Remembered {
  opened: Opened;
  stored: string;
  text: string;
}

/**
 * The remembered texts are found by their IV, the first 16 characters (invariant 4): hashing a
 * whole sealed text, hundreds of characters, cost more than the rest of remembering it. Every
 * sealed text starts with its own IV (random, or synthetic: then the same IV means the same text
 * in all but a collision of HMAC), and recall compares the whole text anyway.
 */
const IV_TEXT = 16;
const rememberedKey = (sealedText: string) => sealedText.slice(0, IV_TEXT);

/** A sealed event of a shredded stream as it reads (invariant 6). */
function shreddedOf(event: StoredEventRecord): StoredEventRecord {
  const { meta: _sealed, ...envelope } = event;
  return { ...envelope, data: null, meta: { [SHREDDED_META]: true } };
}

/** What openSealed reads of a stored event whose meta names a key. */
function sealedOf(event: StoredEventRecord): SealedEvent {
  return {
    stream: event.stream,
    type: event.type,
    data: event.data,
    meta: event.meta as JsonObject,
  };
}

/** What the view asks of the store's encryption (encryption.ts). */
export interface SealedLogHooks {
  prepare(events: readonly StoredEventRecord[]): Promise<void>;
  isShredded(stream: string): boolean;
  onUnreadable(event: UnreadableEvent): void;
  /** Invariant 1. */
  lazyIngest?: boolean;
  /** Hidden names (invariant 7): the stream a name is stored under, and back. */
  streamOf?(name: string): Promise<string>;
  nameOf?(envelope: string): string;
  learnName?(pseudonym: string, name: string): void;
}

const NO_HOOKS: SealedLogHooks = {
  prepare: async () => {},
  isShredded: () => false,
  onUnreadable: () => {},
};

export class SealedLog implements EventLog {
  private readonly raw: EventLog;
  private readonly keyring: Keyring;
  private readonly hooks: SealedLogHooks;
  /**
   * Sealed text → what it opens to, and the stream (as stored) it was sealed for: the newer
   * texts, and the generation before them (invariant 4). Forgetting a whole generation at once
   * costs nothing a text; dropping the oldest entry of one map each time walked past every hole
   * the earlier drops left at its start (~4 µs an append's event in V8).
   */
  private remembered = new Map<string, Remembered>();
  private rememberedBefore = new Map<string, Remembered>();
  /** Trimming works on cursors and slots, which sealing leaves as they are: the raw log's. */
  readonly trim?: NonNullable<EventLog['trim']>;
  readonly horizon?: NonNullable<EventLog['horizon']>;
  readonly trimmedPos?: NonNullable<EventLog['trimmedPos']>;
  /** The raw log's one-transaction read, where it has one, with readByCursor's opening. */
  readonly readByCursorAtHorizon?: NonNullable<EventLog['readByCursorAtHorizon']>;

  constructor(raw: EventLog, keyring: Keyring, hooks: SealedLogHooks = NO_HOOKS) {
    this.raw = raw;
    this.keyring = keyring;
    this.hooks = hooks;
    if (raw.trim !== undefined) this.trim = raw.trim.bind(raw);
    if (raw.horizon !== undefined) this.horizon = raw.horizon.bind(raw);
    if (raw.trimmedPos !== undefined) this.trimmedPos = raw.trimmedPos.bind(raw);
    const atHorizon = raw.readByCursorAtHorizon?.bind(raw);
    if (atHorizon !== undefined) {
      this.readByCursorAtHorizon = async (query) => {
        const read = await atHorizon(await this.storedQuery(query));
        return { records: await this.openRecords(read.records), horizon: read.horizon };
      };
    }
  }

  get replicaId() {
    return this.raw.replicaId;
  }

  get epoch() {
    return this.raw.epoch;
  }

  /** Invariant 4: called by the sealer with each event it sealed. */
  remember(sealedText: string, stored: string, opened: Opened): void {
    if (this.remembered.size >= REMEMBERED / 2) {
      this.rememberedBefore = this.remembered;
      this.remembered = new Map();
    }
    this.remembered.set(rememberedKey(sealedText), { opened, stored, text: sealedText });
  }

  private recall(sealedText: string): Opened | undefined {
    const key = rememberedKey(sealedText);
    const entry = this.remembered.get(key) ?? this.rememberedBefore.get(key);
    return entry?.text === sealedText ? entry.opened : undefined;
  }

  /** Invariant 4: what this replica sealed in shredded streams is forgotten. */
  forget(streams: ReadonlySet<string>): void {
    for (const map of [this.remembered, this.rememberedBefore]) {
      for (const [text, entry] of map) if (streams.has(entry.stored)) map.delete(text);
    }
  }

  /**
   * An event opened without a promise when that needs no key (invariant 5): in clear, shredded,
   * or sealed here (remembered); undefined when it has to be opened.
   */
  private openKnown(event: StoredEventRecord): StoredEventRecord | undefined {
    if (sealedKid(event.meta) === undefined) return event;
    if (this.hooks.isShredded(event.stream)) return shreddedOf(event);
    if (typeof event.data !== 'string') return event;
    const known = this.recall(event.data);
    return known === undefined ? undefined : this.opened(event, known);
  }

  private opened(event: StoredEventRecord, opened: Opened): StoredEventRecord {
    const { meta: _sealedMeta, ...envelope } = event;
    const open: StoredEventRecord = { ...envelope, data: opened.data };
    if (opened.meta !== undefined) open.meta = opened.meta;
    if (opened.stream !== undefined && opened.type !== undefined) {
      // Invariant 7: the name and type were sealed; the envelope held a pseudonym.
      this.hooks.learnName?.(event.stream, opened.stream);
      open.stream = opened.stream;
      open.type = opened.type;
    }
    return open;
  }

  /** An event opened, or as it is (invariant 1), or shredded (invariant 6). */
  async openEvent(event: StoredEventRecord): Promise<StoredEventRecord> {
    const known = this.openKnown(event);
    if (known !== undefined) return known;
    return this.settled(event, await openSealed(this.keyring, sealedOf(event)));
  }

  /** openEvent without a promise, where the runtime opens at once (Node); else undefined. */
  private openNow(event: StoredEventRecord): StoredEventRecord | undefined {
    const known = this.openKnown(event);
    if (known !== undefined || openSealedNow === undefined) return known;
    return this.settled(event, openSealedNow(this.keyring, sealedOf(event)));
  }

  /** The event opened, or as it is and reported (invariant 1). */
  private settled(event: StoredEventRecord, result: OpenResult): StoredEventRecord {
    if (result.ok) {
      const { ok: _ok, ...opened } = result;
      return this.opened(event, opened);
    }
    this.hooks.onUnreadable({
      id: event.id,
      cursor: event.cursor,
      kid: result.kid,
      reason: result.reason,
    });
    return event;
  }

  private async openRecords(records: LocalRecord[]): Promise<LocalRecord[]> {
    return this.openAll(
      records,
      (r) => r.event,
      (r, event) => (event === r.event ? r : { event, pos: r.pos }),
    );
  }

  /**
   * Invariant 5. What openKnown opens (an append's own events read back), and every event where
   * the runtime opens at once (Node: core/sealing.ts invariant 7), is opened in one pass; only
   * the rest costs a promise each.
   */
  private async openAll<T>(
    items: T[],
    eventOf: (item: T) => StoredEventRecord,
    withEvent: (item: T, event: StoredEventRecord) => T,
  ): Promise<T[]> {
    const needed = items.some((item) => {
      const e = eventOf(item);
      return e.stream === KEYRING_STREAM || sealedKid(e.meta) !== undefined;
    });
    if (!needed) return items;
    await this.hooks.prepare(items.map(eventOf));
    const out = new Array<T>(items.length);
    let rest: Promise<void>[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const event = eventOf(item);
      const known = this.openNow(event);
      if (known !== undefined) {
        out[i] = withEvent(item, known);
        continue;
      }
      rest ??= [];
      rest.push(
        this.openEvent(event).then((opened) => {
          out[i] = withEvent(item, opened);
        }),
      );
    }
    if (rest !== undefined) await Promise.all(rest);
    return out;
  }

  private async openOutcome(outcome: StreamAppendOutcome): Promise<StreamAppendOutcome> {
    if (outcome.kind === 'written') {
      return { kind: 'written', records: await this.openRecords(outcome.records) };
    }
    const events = await this.openAll(
      outcome.events,
      (e) => e,
      (_, opened) => opened,
    );
    return { kind: 'duplicate', events };
  }

  async appendLocal(request: LocalAppendRequest): Promise<LocalAppendResult> {
    return this.openOutcome(await this.raw.appendLocal(request));
  }

  async appendGroup(request: AppendGroupRequest): Promise<AppendUnitOutcome[]> {
    const outcomes = await this.raw.appendGroup(request);
    return Promise.all(
      outcomes.map(async (o): Promise<AppendUnitOutcome> => {
        if (o.kind === 'rejected') return o;
        return {
          kind: 'appended',
          streams: await Promise.all(o.streams.map((s) => this.openOutcome(s))),
        };
      }),
    );
  }

  async ingest(request: IngestRequest): Promise<IngestResult> {
    const result = await this.raw.ingest(request);
    if (this.hooks.lazyIngest === true) {
      // Invariant 1: keys and shreds are taken in now; the events are opened when read.
      if (result.written.some((r) => r.event.stream === KEYRING_STREAM)) {
        await this.hooks.prepare(result.written.map((r) => r.event));
      }
      return result;
    }
    const [written, removed, lost] = await Promise.all([
      this.openRecords(result.written),
      this.openRecords(result.removed),
      this.openAll(
        result.lost,
        (l) => l.event,
        (l, event) => ({ ...l, event }),
      ),
    ]);
    return { ...result, written, removed, lost };
  }

  async restamp(request: RestampRequest): Promise<RestampResult> {
    const result = await this.raw.restamp(request);
    return { ...result, changed: await this.openRecords(result.changed) };
  }

  async discard(events: readonly DiscardedEvent[]): Promise<LocalRecord[]> {
    return this.openRecords(await this.raw.discard(events));
  }

  async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    return this.openRecords(await this.raw.readByCursor(await this.storedQuery(query)));
  }

  /** The query as the raw log is asked it: a stream by its stored name (invariant 7). */
  private async storedQuery(query: CursorQuery): Promise<CursorQuery> {
    const stored = await this.storedStream(query.stream);
    return stored === query.stream ? query : { ...query, stream: stored! };
  }

  /** Invariant 7. */
  private async storedStream(name: string | undefined): Promise<string | undefined> {
    return name === undefined || this.hooks.streamOf === undefined
      ? name
      : this.hooks.streamOf(name);
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    return this.openRecords(await this.raw.readByPos(afterPos, limit));
  }

  async getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]> {
    const records = await this.raw.getByIds(ids);
    const held = records.filter((r): r is LocalRecord => r !== undefined);
    const opened = new Map((await this.openRecords(held)).map((r) => [r.event.id, r]));
    return records.map((r) => (r === undefined ? r : opened.get(r.event.id)));
  }

  // Signatures are of the sealed form (core/integrity.ts): these go to the raw log as they are.
  identity() {
    return this.raw.identity();
  }

  adoptIdentity(key: StoredSigningKey) {
    return this.raw.adoptIdentity(key);
  }

  eventsAtSlots(slots: readonly { replica: string; seq: number }[]) {
    return this.raw.eventsAtSlots(slots);
  }

  trimmedSlots(slots: readonly { replica: string; seq: number }[]): Promise<boolean[]> {
    return this.raw.trimmedSlots?.(slots) ?? Promise.resolve(slots.map(() => false));
  }

  replaceOwn(records: readonly LocalRecord[]) {
    return this.raw.replaceOwn(records);
  }

  headPos() {
    return this.raw.headPos();
  }

  ownSeq() {
    return this.raw.ownSeq();
  }

  minCursorSince(pos: number) {
    return this.raw.minCursorSince(pos);
  }

  async streamVersion(stream: string): Promise<number> {
    return this.raw.streamVersion((await this.storedStream(stream))!);
  }

  /** Invariant 7: a pseudonym whose name is not known yet is learnt from one of its events. */
  async conflictStreams(): Promise<string[]> {
    const streams = await this.raw.conflictStreams();
    const nameOf = this.hooks.nameOf;
    if (nameOf === undefined) return streams;
    const out: string[] = [];
    for (const stream of streams) {
      if (nameOf(stream) === stream && stream.startsWith(PSEUDONYM_PREFIX)) {
        await this.openRecords(await this.raw.readByCursor({ stream, limit: 1 }));
      }
      out.push(nameOf(stream));
    }
    return out;
  }

  clock() {
    return this.raw.clock();
  }

  /** Invariant 3. */
  async putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    const key = this.keyring.current;
    if (key === undefined) return this.raw.putSnapshot(snapshot);
    const sealed = await sealValue(key, SNAPSHOT_PURPOSE, stateToText(snapshot.state));
    await this.raw.putSnapshot({ ...snapshot, state: { [SEALED_META]: key.kid, sealed } });
  }

  listSnapshots(projection: string, version: number) {
    return this.raw.listSnapshots(projection, version);
  }

  async getSnapshot(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined> {
    const snapshot = await this.raw.getSnapshot(projection, version, cursor);
    if (snapshot === undefined) return undefined;
    // A snapshot in clear was taken before encryption was on: as good as ever.
    if (!isSealedState(snapshot.state)) return snapshot;
    const state = snapshot.state as { [SEALED_META]: string; sealed: string };
    const opened = await openValue(
      this.keyring,
      SNAPSHOT_PURPOSE,
      state[SEALED_META],
      state.sealed,
    );
    if (opened === undefined || typeof opened.value !== 'string') return undefined;
    return { ...snapshot, state: stateFromText(opened.value) };
  }

  deleteSnapshots(projection: string, which?: readonly { version: number; cursor: string }[]) {
    return this.raw.deleteSnapshots(projection, which);
  }

  /** The app's local cache (local-cache.ts) is sealed like a snapshot: it holds app data. */
  async getMeta(key: string): Promise<JsonValue | undefined> {
    const value = await this.raw.getMeta(key);
    if (!key.startsWith(LOCAL_META_PREFIX) || !isSealedState(value)) return value;
    const sealed = value as { [SEALED_META]: string; sealed: string };
    const opened = await openValue(this.keyring, LOCAL_PURPOSE, sealed[SEALED_META], sealed.sealed);
    return opened === undefined ? undefined : (opened.value as JsonValue);
  }

  async setMeta(key: string, value: JsonValue): Promise<void> {
    const current = this.keyring.current;
    if (!key.startsWith(LOCAL_META_PREFIX) || value === null || current === undefined) {
      return this.raw.setMeta(key, value);
    }
    const sealed = await sealValue(current, LOCAL_PURPOSE, value);
    return this.raw.setMeta(key, { [SEALED_META]: current.kid, sealed });
  }

  onRemoteWrite(listener: Parameters<EventLog['onRemoteWrite']>[0]) {
    return this.raw.onRemoteWrite(listener);
  }

  close() {
    return this.raw.close();
  }
}
