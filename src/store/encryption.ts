/**
 * End-to-end encryption of a store (StoreOptions.encryption): the keyring, sealing of appends,
 * rotation, stream keys, and what this replica cannot read.
 *
 * Rotation: a store opened with a new `key` and the old ones in `previousKeys` appends one
 * `KeyAdded` event to the `$keyring` stream: the new key's id and each older key wrapped under
 * it (AES-GCM with the new key's wrap key). It syncs like any event, so a device that is given
 * only the new key learns the older ones from the log and reads everything; the server sees key
 * ids and ciphertext. A device that has only an old key reads the old events, and reports the
 * new ones as unreadable until it is given the new key.
 *
 * Invariants:
 * 1. Every append is sealed before it is queued (store/local-appends.ts), except the `$keyring`
 *    stream's, whose data is wrapped keys already. Meta naming `$sealed` is refused: only the
 *    sealer writes it.
 * 2. An event no key here opens is reported (status: its key ids and a count) and skipped by
 *    projections and commands refuse to decide on its stream (UnreadableError); it stays stored
 *    and synced. The smallest cursor of such events is kept in the log's meta, so that once a key
 *    for them arrives (a KeyAdded ingested, or a reopen with the key) projections fold again
 *    from there.
 * 3. Learning keys is a fixpoint: a KeyAdded wrapping K1 under K2 opens once K2 is known,
 *    whichever arrives first.
 * 4. Every event handed up through the view passes prepare() first: the `$keyring` events among
 *    them are taken in (keys learnt, streams shredded) before any of them is opened, so an event
 *    that arrives in one batch with the key it needs opens at once. What they ask of the store
 *    (fold again, erase) it does through onRefold and onErase, never inside the view's call.
 * 5. Each stream has its own data key (stream-keys.ts): store.shred erases it (shred.ts).
 * 6. An append whose every event has an id stored here already (a retry) is sealed under the keys
 *    its stored copies were sealed under, not the stream's key of the moment: with the same
 *    content that gives the same text (core/sealing.ts invariant 3), so the store answers it as
 *    the duplicate it is. A stream's key may have changed in between (a reopen picked another of
 *    its keys, or another replica's arrived), and the retry was refused as a different payload.
 */
import { ValidationError } from '../core/errors.ts';
import type { StoredEventRecord } from '../core/events.ts';
import { unwrapKey, wrapKey } from '../core/key-wrap.ts';
import { Keyring, namesKey, type SpaceKey, spaceKey } from '../core/keyring.ts';
import { KEY_ADDED, type KeyAdded, keyringEventOf } from '../core/keyring-events.ts';
import {
  KEYRING_STREAM,
  PSEUDONYM_PREFIX,
  SEALED_META,
  type SealInput,
  sealEvents,
  sealedKid,
  streamPseudonym,
} from '../core/sealing.ts';
import type { ValidNewEvent } from '../core/validate.ts';
import type { EventLog, StreamAppendRequest } from '../storage/adapter.ts';
import type { EncryptionOptions, UnreadableStatus } from './encryption-types.ts';
import { type Opened, SealedLog, type UnreadableEvent } from './sealed-log.ts';
import { StreamKeys } from './stream-keys.ts';

/** Meta: { from: smallest cursor, keys: ids } of the unreadable events (invariant 2). */
export const UNREADABLE_META_KEY = 'crypto.unreadable';
/** Ids remembered as unreadable, at most: a count, not a record of the log. */
const UNREADABLE_KEPT = 10_000;
const PAGE = 500;

/** An append's events sealed, with the StreamKey part to write in the same unit if any. */
export interface Sealing {
  events: ValidNewEvent[];
  /** The stream to store them under, when it is not the name (a pseudonym: hidden names). */
  stream?: string;
  keyPart?: StreamAppendRequest;
  /** Call once the unit holding keyPart is durable (stream-keys.ts invariant 1). */
  written?(): void;
}

/** Every event of the `$keyring` stream. */
async function readKeyring(raw: EventLog): Promise<StoredEventRecord[]> {
  const out: StoredEventRecord[] = [];
  for (;;) {
    const after = out[out.length - 1]?.cursor;
    const page = await raw.readByCursor(
      after === undefined
        ? { stream: KEYRING_STREAM, limit: PAGE }
        : { stream: KEYRING_STREAM, after, limit: PAGE },
    );
    out.push(...page.map((r) => r.event));
    if (page.length < PAGE) return out;
  }
}

export class Encryption {
  readonly keyring: Keyring;
  readonly view: SealedLog;
  readonly streams: StreamKeys;
  /** Set by the store: fold every projection again from a cursor (invariant 4). */
  onRefold: (from: string) => void = () => {};
  /** Set by the store: erase these shredded streams here (shred.ts). */
  onErase: (streams: string[]) => void = () => {};
  private readonly raw: EventLog;
  /** Every KeyAdded seen, for the fixpoint (invariant 3). */
  private readonly added: KeyAdded[] = [];
  /** Keyring events taken in, by id (and `<id>:erased` for an erased copy). */
  private readonly noted = new Set<string>();
  private readonly unreadable = new Map<string, UnreadableEvent>();
  private readonly unreadableKids = new Set<string>();
  private unreadableFrom: string | undefined;
  private readonly listeners = new Set<() => void>();
  /** The log position refresh() has looked up to (the whole keyring was read at open). */
  private seenPos = 0;
  /** Hidden names (EncryptionOptions.names): the HMAC key, and the pseudonyms met both ways. */
  private names: CryptoKey | undefined;
  private readonly pseudonyms = new Map<string, string>();
  private readonly realNames = new Map<string, string>();

  private constructor(raw: EventLog, keyring: Keyring) {
    this.raw = raw;
    this.keyring = keyring;
    this.streams = new StreamKeys(keyring);
    this.view = new SealedLog(raw, keyring, {
      prepare: (events) => this.prepare(events),
      isShredded: (stream) => this.streams.isShredded(stream),
      onUnreadable: (event) => this.noteUnreadable(event),
      lazyIngest: true,
      streamOf: (name) => this.envelopeStream(name),
      nameOf: (envelope) => this.nameOf(envelope),
      learnName: (pseudonym, name) => this.learnName(pseudonym, name),
    });
  }

  /**
   * The keyring from the options and the log's `$keyring` stream; appends a KeyAdded when this
   * key is new and older ones are known. Resolves with the cursor projections must fold again
   * from, when keys now here open events that were unreadable before.
   */
  static async open(
    options: EncryptionOptions | undefined,
    raw: EventLog,
    now: () => number,
  ): Promise<{ encryption: Encryption; refoldFrom?: string; shredded: string[] }> {
    // Without encryption: an empty keyring, so sealed events are still told apart (invariant 2).
    if (options === undefined) {
      return { encryption: new Encryption(raw, new Keyring()), shredded: [] };
    }
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError('encryption', 'must be an object { key }');
    }
    const material = typeof options.key === 'function' ? await options.key() : options.key;
    const current = await spaceKey(material);
    const previous = await Promise.all(
      (options.previousKeys ?? []).map((k, i) => spaceKey(k, `encryption.previousKeys[${i}]`)),
    );
    const encryption = new Encryption(raw, new Keyring(current, previous));
    if (options.names !== undefined) {
      const names = typeof options.names === 'function' ? await options.names() : options.names;
      encryption.names = await namesKey(names);
    }
    const shredded: string[] = [];
    encryption.onErase = (streams) => shredded.push(...streams);
    encryption.seenPos = await raw.headPos();
    await encryption.prepare(await readKeyring(raw));
    encryption.onErase = () => {};
    await encryption.announce(now);
    const stored = (await raw.getMeta(UNREADABLE_META_KEY)) as {
      from?: unknown;
      keys?: unknown;
    } | null;
    if (typeof stored?.from !== 'string' || !Array.isArray(stored.keys)) {
      return { encryption, shredded };
    }
    const kids = stored.keys.filter((k): k is string => typeof k === 'string');
    let opened = false;
    for (const kid of kids) if (await encryption.opens(kid)) opened = true;
    if (!opened) {
      // Still unreadable: the next one seen keeps the smallest cursor (invariant 2).
      encryption.unreadableFrom = stored.from;
      for (const kid of kids) encryption.unreadableKids.add(kid);
      return { encryption, shredded };
    }
    await raw.setMeta(UNREADABLE_META_KEY, null);
    return { encryption, refoldFrom: stored.from, shredded };
  }

  /** Whether a key of this id is here, or can be unwrapped now. */
  private async opens(kid: string): Promise<boolean> {
    return this.keyring.has(kid) || (await this.streams.resolve(kid));
  }

  /** Invariant 4. */
  async prepare(events: readonly StoredEventRecord[]): Promise<void> {
    let rotation = false;
    const erase = new Set<string>();
    for (const event of events) {
      if (event.stream !== KEYRING_STREAM) continue;
      const tag = event.data === null ? `${event.id}:erased` : event.id;
      if (this.noted.has(tag)) continue;
      this.noted.add(tag);
      const k = keyringEventOf(event);
      if (k?.kind === 'key-added') {
        this.added.push(k);
        rotation = true;
      } else if (k?.kind === 'stream-key') {
        // A key arriving late for a shredded stream is erased on arrival (stream-keys.ts 3).
        if (!this.streams.noteKey(event, k)) erase.add(k.stream);
      } else if (k?.kind === 'stream-key-erased') {
        this.streams.noteErased(event.id);
      } else if (k?.kind === 'stream-shredded') {
        // Fresh here: erase (shred.ts invariant 1). The shredding store erases on its own.
        if (this.streams.noteShredded(k.stream, k.kids)) erase.add(k.stream);
      }
    }
    let learnt = rotation && this.keyring.current !== undefined && (await this.settleKeys());
    for (const event of events) {
      const kid = sealedKid(event.meta);
      if (kid === undefined || this.keyring.has(kid)) continue;
      if ((await this.streams.resolve(kid)) && this.unreadableKids.has(kid)) learnt = true;
    }
    if (learnt) this.keysLearnt();
    if (erase.size > 0) this.onErase([...erase]);
  }

  /** Keys came that may open what was unreadable: fold again from there (invariant 2). */
  private keysLearnt(): void {
    const from = this.unreadableFrom;
    if (from === undefined) return;
    this.unreadable.clear();
    this.unreadableKids.clear();
    this.unreadableFrom = undefined;
    void this.raw.setMeta(UNREADABLE_META_KEY, null).catch(() => {});
    this.changed();
    this.onRefold(from);
  }

  /** Unwraps what the known keys open, until nothing new opens (invariant 3). */
  private async settleKeys(): Promise<boolean> {
    let learnt = false;
    for (let progress = true; progress; ) {
      progress = false;
      for (const added of this.added) {
        const under = this.keyring.get(added.kid);
        if (under === undefined) continue;
        for (const [kid, text] of Object.entries(added.wrapped)) {
          if (this.keyring.has(kid)) continue;
          const key = await unwrapKey(under, kid, text);
          if (key !== undefined && this.keyring.add(key)) progress = learnt = true;
        }
      }
    }
    return learnt;
  }

  /** Wraps every known older key under the current one, unless the log has them so already. */
  private async announce(now: () => number): Promise<void> {
    const current = this.keyring.current;
    if (current === undefined) return;
    const wrappedHere = new Set(
      this.added.filter((a) => a.kid === current.kid).flatMap((a) => Object.keys(a.wrapped)),
    );
    const missing = this.keyring
      .kids()
      .filter((k) => k !== current.kid && !wrappedHere.has(k) && this.isSpaceKey(k));
    if (missing.length === 0) return;
    const wrapped: Record<string, string> = {};
    for (const kid of missing) wrapped[kid] = await wrapKey(current, this.keyring.get(kid)!);
    await this.raw.appendLocal({
      stream: KEYRING_STREAM,
      events: [{ type: KEY_ADDED, data: { kid: current.kid, wrapped }, schema: 1 }],
      expectedVersion: 'any',
      now: now(),
    });
    this.added.push({ kind: 'key-added', kid: current.kid, wrapped });
  }

  /** Space keys are the ones given or learnt by rotation; stream keys are not rotated. */
  private isSpaceKey(kid: string): boolean {
    return !this.streams.isStreamKey(kid);
  }

  /**
   * After another tab wrote (its sync may have brought a rotation or a shred): the keyring
   * events received since the last look, through prepare. O(what arrived), not O(keyring).
   */
  async refresh(): Promise<void> {
    for (;;) {
      const page = await this.raw.readByPos(this.seenPos, PAGE);
      const last = page[page.length - 1];
      if (last === undefined) return;
      this.seenPos = Math.max(this.seenPos, last.pos);
      await this.prepare(page.map((r) => r.event).filter((e) => e.stream === KEYRING_STREAM));
      if (page.length < PAGE) return;
    }
  }

  /** Seals an append's events under their stream's key (invariant 1, stream-keys.ts). */
  async seal(stream: string, events: ValidNewEvent[]): Promise<Sealing> {
    for (const [i, e] of events.entries()) {
      if (e.meta !== undefined && Object.hasOwn(e.meta, SEALED_META)) {
        throw new ValidationError(`events[${i}].meta.${SEALED_META}`, 'is set by encryption only');
      }
    }
    if (stream === KEYRING_STREAM) {
      throw new ValidationError('stream', `${KEYRING_STREAM} is kept by encryption only`);
    }
    const space = this.keyring.current;
    if (space === undefined) return { events };
    // Hidden names (sealing.ts invariant 5): keys, shreds and the envelope go by the pseudonym.
    const envelope = await this.envelopeStream(stream);
    const name = this.nameOf(envelope);
    const hide = envelope !== stream || envelope.startsWith(PSEUDONYM_PREFIX);
    const retried = await this.storedKeysOf(envelope, events);
    const { key, keyPart, written } =
      retried === undefined
        ? await this.streams.sealingKey(envelope, space)
        : { key: space, keyPart: undefined, written: () => {} };
    const pseudonym = this.names !== undefined && hide ? envelope : undefined;
    const inputs = events.map((e): SealInput => {
      const input: SealInput = { stream: name, type: e.type, data: e.data };
      if (e.meta !== undefined) input.meta = e.meta;
      if (pseudonym !== undefined) input.pseudonym = pseudonym;
      if (e.id !== undefined) input.id = e.id;
      return input;
    });
    // One batch (core/sealing.ts invariant 6): every AES-GCM call in flight at once.
    const out = await sealEvents(retried ?? key, inputs);
    const sealed = events.map((e, i): ValidNewEvent => {
      const s = out[i]!;
      const opened: Opened = { data: e.data };
      if (e.meta !== undefined) opened.meta = e.meta;
      if (s.stream !== undefined) {
        opened.stream = name;
        opened.type = e.type;
      }
      this.view.remember(s.data, envelope, opened);
      const sealedEvent = { ...e, data: s.data, meta: s.meta };
      if (s.type !== undefined) sealedEvent.type = s.type;
      return sealedEvent;
    });
    const sealing: Sealing = { events: sealed, written };
    if (keyPart !== undefined) sealing.keyPart = keyPart;
    if (envelope !== stream) sealing.stream = envelope;
    return sealing;
  }

  /**
   * Invariant 6: when every event has an id that is stored already, sealed under a key this
   * replica holds, those keys (in order); otherwise undefined (the stream's key is taken).
   */
  private async storedKeysOf(
    envelope: string,
    events: readonly ValidNewEvent[],
  ): Promise<SpaceKey[] | undefined> {
    const ids: string[] = [];
    for (const e of events) {
      if (e.id === undefined) return undefined;
      ids.push(e.id);
    }
    const stored = await this.raw.getByIds(ids);
    const keys: SpaceKey[] = [];
    for (const record of stored) {
      const kid = record?.event.stream === envelope ? sealedKid(record.event.meta) : undefined;
      if (kid === undefined || !(await this.opens(kid))) return undefined;
      keys.push(this.keyring.get(kid)!);
    }
    return keys;
  }

  /**
   * The stream an event of `name` is stored under: its pseudonym when names are hidden
   * (remembered both ways), else the name. A name starting with `~` is a pseudonym already.
   */
  async envelopeStream(name: string): Promise<string> {
    if (this.names === undefined || name.startsWith(PSEUDONYM_PREFIX) || name === KEYRING_STREAM) {
      return name;
    }
    let pseudonym = this.pseudonyms.get(name);
    if (pseudonym === undefined) {
      pseudonym = await streamPseudonym(this.names, name);
      this.learnName(pseudonym, name);
    }
    return pseudonym;
  }

  /** The name of an envelope's stream, when known here (else the envelope's). */
  nameOf(envelope: string): string {
    return this.realNames.get(envelope) ?? envelope;
  }

  learnName(pseudonym: string, name: string): void {
    if (this.realNames.has(pseudonym)) return;
    this.realNames.set(pseudonym, name);
    this.pseudonyms.set(name, pseudonym);
  }

  status(): UnreadableStatus | undefined {
    if (this.unreadable.size === 0) return undefined;
    return { events: this.unreadable.size, keys: [...this.unreadableKids] };
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private noteUnreadable(event: UnreadableEvent): void {
    if (this.unreadable.has(event.id) || this.unreadable.size >= UNREADABLE_KEPT) return;
    this.unreadable.set(event.id, event);
    this.unreadableKids.add(event.kid);
    if (this.unreadableFrom === undefined || event.cursor < this.unreadableFrom) {
      this.unreadableFrom = event.cursor;
    }
    const from = this.unreadableFrom;
    void this.raw
      .setMeta(UNREADABLE_META_KEY, { from, keys: [...this.unreadableKids] })
      .catch(() => {});
    this.changed();
  }
}
