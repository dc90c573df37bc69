/**
 * End-to-end encryption of a store (StoreOptions.encryption): the keyring, sealing of appends,
 * rotation, and what this replica cannot read.
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
 */
import { decodeBase64Url, encodeBase64Url } from '../core/base64.ts';
import { ValidationError } from '../core/errors.ts';
import type { JsonObject, LocalRecord } from '../core/events.ts';
import { Keyring, type SpaceKey, spaceKey } from '../core/keyring.ts';
import { KEYRING_STREAM, SEALED_META, sealEvent } from '../core/sealing.ts';
import type { ValidNewEvent } from '../core/validate.ts';
import type { EventLog } from '../storage/adapter.ts';
import type { EncryptionOptions, UnreadableStatus } from './encryption-types.ts';
import { SealedLog, type UnreadableEvent } from './sealed-log.ts';

export const KEY_ADDED = 'KeyAdded';
/** Meta: { from: smallest cursor, keys: ids } of the unreadable events (invariant 2). */
export const UNREADABLE_META_KEY = 'crypto.unreadable';
/** Ids remembered as unreadable, at most: a count, not a record of the log. */
const UNREADABLE_KEPT = 10_000;
const WRAP_IV_BYTES = 12;
const encoder = new TextEncoder();
const wrapContext = (kid: string) =>
  encoder.encode(`chronicle/wrap/${kid}`) as Uint8Array<ArrayBuffer>;

async function wrapKey(under: SpaceKey, key: SpaceKey): Promise<string> {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(WRAP_IV_BYTES));
  const sealed = new Uint8Array(
    await globalThis.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: wrapContext(key.kid) },
      under.wrap,
      key.raw,
    ),
  );
  const out = new Uint8Array(WRAP_IV_BYTES + sealed.length);
  out.set(iv);
  out.set(sealed, WRAP_IV_BYTES);
  return encodeBase64Url(out);
}

/** The wrapped key, or undefined when the text does not open to the key it names. */
async function unwrapKey(
  under: SpaceKey,
  kid: string,
  text: string,
): Promise<SpaceKey | undefined> {
  try {
    const bytes = decodeBase64Url(text);
    const raw = new Uint8Array(
      await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.subarray(0, WRAP_IV_BYTES), additionalData: wrapContext(kid) },
        under.wrap,
        bytes.subarray(WRAP_IV_BYTES),
      ),
    );
    const key = await spaceKey(raw);
    return key.kid === kid ? key : undefined;
  } catch {
    return undefined;
  }
}

interface KeyAdded {
  kid: string;
  wrapped: Record<string, string>;
}

function keyAddedOf(record: LocalRecord): KeyAdded | undefined {
  const { event } = record;
  if (event.stream !== KEYRING_STREAM || event.type !== KEY_ADDED) return undefined;
  const data = event.data as { kid?: unknown; wrapped?: unknown } | null;
  if (typeof data !== 'object' || data === null || typeof data.kid !== 'string') return undefined;
  const wrapped = data.wrapped;
  if (typeof wrapped !== 'object' || wrapped === null || Array.isArray(wrapped)) return undefined;
  const out: Record<string, string> = {};
  for (const [kid, text] of Object.entries(wrapped)) if (typeof text === 'string') out[kid] = text;
  return { kid: data.kid, wrapped: out };
}

/** Every event of the `$keyring` stream. */
async function readKeyring(raw: EventLog): Promise<LocalRecord[]> {
  const out: LocalRecord[] = [];
  for (;;) {
    const after = out[out.length - 1]?.event.cursor;
    const page = await raw.readByCursor(
      after === undefined
        ? { stream: KEYRING_STREAM, limit: 500 }
        : { stream: KEYRING_STREAM, after, limit: 500 },
    );
    out.push(...page);
    if (page.length < 500) return out;
  }
}

export class Encryption {
  readonly keyring: Keyring;
  readonly view: SealedLog;
  private readonly raw: EventLog;
  /** Every KeyAdded seen, for the fixpoint (invariant 3), and their ids. */
  private readonly added: KeyAdded[] = [];
  private readonly seen = new Set<string>();
  private readonly unreadable = new Map<string, UnreadableEvent>();
  private readonly unreadableKids = new Set<string>();
  private unreadableFrom: string | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(raw: EventLog, keyring: Keyring) {
    this.raw = raw;
    this.keyring = keyring;
    this.view = new SealedLog(raw, keyring, (event) => this.noteUnreadable(event));
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
  ): Promise<{ encryption: Encryption; refoldFrom?: string }> {
    // Without encryption: an empty keyring, so sealed events are still told apart (invariant 2).
    if (options === undefined) return { encryption: new Encryption(raw, new Keyring()) };
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError('encryption', 'must be an object { key }');
    }
    const material = typeof options.key === 'function' ? await options.key() : options.key;
    const current = await spaceKey(material);
    const previous = await Promise.all(
      (options.previousKeys ?? []).map((k, i) => spaceKey(k, `encryption.previousKeys[${i}]`)),
    );
    const encryption = new Encryption(raw, new Keyring(current, previous));
    await encryption.learnFrom(await readKeyring(raw));
    await encryption.announce(now);
    const stored = (await raw.getMeta(UNREADABLE_META_KEY)) as {
      from?: unknown;
      keys?: unknown;
    } | null;
    if (typeof stored?.from !== 'string' || !Array.isArray(stored.keys)) return { encryption };
    const opened = stored.keys.some(
      (kid) => typeof kid === 'string' && encryption.keyring.has(kid),
    );
    if (!opened) {
      // Still unreadable: the next one seen keeps the smallest cursor (invariant 2).
      encryption.unreadableFrom = stored.from;
      for (const kid of stored.keys)
        if (typeof kid === 'string') encryption.unreadableKids.add(kid);
      return { encryption };
    }
    await raw.setMeta(UNREADABLE_META_KEY, null);
    return { encryption, refoldFrom: stored.from };
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
    const missing = this.keyring.kids().filter((k) => k !== current.kid && !wrappedHere.has(k));
    if (missing.length === 0) return;
    const wrapped: Record<string, string> = {};
    for (const kid of missing) wrapped[kid] = await wrapKey(current, this.keyring.get(kid)!);
    const data: KeyAdded = { kid: current.kid, wrapped };
    await this.raw.appendLocal({
      stream: KEYRING_STREAM,
      events: [{ type: KEY_ADDED, data: data as unknown as JsonObject, schema: 1 }],
      expectedVersion: 'any',
      now: now(),
    });
    this.added.push(data);
  }

  /**
   * New records (any source): learns the keys of KeyAdded events among them. Resolves with the
   * cursor to fold again from when keys were learnt while events were unreadable (invariant 2).
   */
  async learnFrom(records: readonly LocalRecord[]): Promise<string | undefined> {
    if (this.keyring.current === undefined) return undefined;
    let found = false;
    for (const record of records) {
      const added = keyAddedOf(record);
      if (added === undefined || this.seen.has(record.event.id)) continue;
      this.seen.add(record.event.id);
      this.added.push(added);
      found = true;
    }
    if (!found || !(await this.settleKeys())) return undefined;
    const from = this.unreadableFrom;
    if (from === undefined) return undefined;
    this.unreadable.clear();
    this.unreadableKids.clear();
    this.unreadableFrom = undefined;
    await this.raw.setMeta(UNREADABLE_META_KEY, null);
    this.changed();
    return from;
  }

  /**
   * learnFrom the whole `$keyring` stream: after another tab wrote (its sync may have brought a
   * rotation). The stream holds one event per rotation and device: small.
   */
  async refresh(): Promise<string | undefined> {
    if (this.keyring.current === undefined) return undefined;
    return this.learnFrom(await readKeyring(this.raw));
  }

  /** Seals an append's events (invariant 1). */
  async seal(stream: string, events: ValidNewEvent[]): Promise<ValidNewEvent[]> {
    for (const [i, e] of events.entries()) {
      if (e.meta !== undefined && Object.hasOwn(e.meta, SEALED_META)) {
        throw new ValidationError(`events[${i}].meta.${SEALED_META}`, 'is set by encryption only');
      }
    }
    if (stream === KEYRING_STREAM) {
      throw new ValidationError('stream', `${KEYRING_STREAM} is kept by encryption only`);
    }
    const key = this.keyring.current;
    if (key === undefined) return events;
    return Promise.all(
      events.map(async (e) => {
        const input = { stream, type: e.type, data: e.data, ...(e.meta && { meta: e.meta }) };
        const sealed = await sealEvent(key, e.id === undefined ? input : { ...input, id: e.id });
        this.view.remember(
          sealed.data,
          e.meta === undefined ? { data: e.data } : { data: e.data, meta: e.meta },
        );
        return { ...e, data: sealed.data, meta: sealed.meta };
      }),
    );
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
