/**
 * The store's view of an encrypted log: the same EventLog, with every event it hands up opened
 * (core/sealing.ts) and every snapshot sealed on its way down. The storage, and the sync layer
 * (which reads the raw log: StoreInternals.log), only ever hold sealed events.
 *
 * Invariants:
 * 1. Every record this view returns is opened when a key here opens it, and otherwise returned
 *    as stored (still sealed: meta.$sealed names its key), reported once per id to
 *    `onUnreadable`. Never dropped: a page keeps its length, so "a short page means the head"
 *    (adapter.ts invariant 3) holds through the view.
 * 2. Appends arrive sealed already (store/local-appends.ts seals before the queue); the view
 *    writes them as they are.
 * 3. A snapshot's state is sealed under the current key (a stolen disk shows no state); one
 *    that no key here opens reads as absent, so the projection replays instead.
 * 4. What this replica sealed itself is remembered (a bounded map from sealed text to content),
 *    so reading back its own appends costs no decryption.
 */
import type { AppendUnitOutcome, StreamAppendOutcome } from '../core/append-group.ts';
import type { JsonObject, JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { Keyring } from '../core/keyring.ts';
import {
  isSealedState,
  openSealed,
  openValue,
  SEALED_META,
  sealedKid,
  sealValue,
} from '../core/sealing.ts';
import { stateFromText, stateToText } from '../core/state-text.ts';
import type {
  AppendGroupRequest,
  CursorQuery,
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

interface Opened {
  data: JsonValue;
  meta?: JsonObject;
}

export class SealedLog implements EventLog {
  private readonly raw: EventLog;
  private readonly keyring: Keyring;
  private readonly onUnreadable: (event: UnreadableEvent) => void;
  private readonly remembered = new Map<string, Opened>();

  constructor(
    raw: EventLog,
    keyring: Keyring,
    onUnreadable: (event: UnreadableEvent) => void = () => {},
  ) {
    this.raw = raw;
    this.keyring = keyring;
    this.onUnreadable = onUnreadable;
  }

  get replicaId() {
    return this.raw.replicaId;
  }

  get epoch() {
    return this.raw.epoch;
  }

  /** Invariant 4: called by the sealer with each event it sealed. */
  remember(sealedText: string, opened: Opened): void {
    if (this.remembered.size >= REMEMBERED) {
      const oldest = this.remembered.keys().next().value;
      if (oldest !== undefined) this.remembered.delete(oldest);
    }
    this.remembered.set(sealedText, opened);
  }

  /** An event opened, or as it is (invariant 1). */
  async openEvent(event: StoredEventRecord): Promise<StoredEventRecord> {
    if (sealedKid(event.meta) === undefined || typeof event.data !== 'string') return event;
    const known = this.remembered.get(event.data);
    const opened: Opened | undefined =
      known ??
      (await openSealed(this.keyring, {
        stream: event.stream,
        type: event.type,
        data: event.data,
        meta: event.meta as JsonObject,
      }).then((result) => {
        if (result.ok) return result.meta === undefined ? { data: result.data } : result;
        this.onUnreadable({
          id: event.id,
          cursor: event.cursor,
          kid: result.kid,
          reason: result.reason,
        });
        return undefined;
      }));
    if (opened === undefined) return event;
    const { meta: _sealedMeta, ...envelope } = event;
    const open: StoredEventRecord = { ...envelope, data: opened.data };
    if (opened.meta !== undefined) open.meta = opened.meta;
    return open;
  }

  private async openRecord(record: LocalRecord): Promise<LocalRecord> {
    const event = await this.openEvent(record.event);
    return event === record.event ? record : { event, pos: record.pos };
  }

  private async openRecords(records: LocalRecord[]): Promise<LocalRecord[]> {
    // Most pages of most stores hold nothing sealed: no promise per record for them.
    if (!records.some((r) => sealedKid(r.event.meta) !== undefined)) return records;
    return Promise.all(records.map((r) => this.openRecord(r)));
  }

  private async openOutcome(outcome: StreamAppendOutcome): Promise<StreamAppendOutcome> {
    return outcome.kind === 'written'
      ? { kind: 'written', records: await this.openRecords(outcome.records) }
      : {
          kind: 'duplicate',
          events: await Promise.all(outcome.events.map((e) => this.openEvent(e))),
        };
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
    const [written, removed, lost] = await Promise.all([
      this.openRecords(result.written),
      this.openRecords(result.removed),
      Promise.all(result.lost.map(async (l) => ({ ...l, event: await this.openEvent(l.event) }))),
    ]);
    return { ...result, written, removed, lost };
  }

  async restamp(request: RestampRequest): Promise<RestampResult> {
    const result = await this.raw.restamp(request);
    return { ...result, changed: await this.openRecords(result.changed) };
  }

  async discard(events: readonly { id: string; seq: number }[]): Promise<LocalRecord[]> {
    return this.openRecords(await this.raw.discard(events));
  }

  async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    return this.openRecords(await this.raw.readByCursor(query));
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    return this.openRecords(await this.raw.readByPos(afterPos, limit));
  }

  async getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]> {
    const records = await this.raw.getByIds(ids);
    return Promise.all(records.map((r) => (r === undefined ? r : this.openRecord(r))));
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

  streamVersion(stream: string) {
    return this.raw.streamVersion(stream);
  }

  conflictStreams() {
    return this.raw.conflictStreams();
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
