/**
 * Sealing: an event's data and meta encrypted end to end (AES-256-GCM through WebCrypto, the same
 * code in a page, a worker and Node), so that a sync server stores and forwards what it cannot
 * read. A sealed event is still an ordinary event to every layer below the store:
 *
 *   data: "<base64url of iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes)>"
 *   meta: { $sealed: "<key id>", $strict?, $prev? }
 *
 * The plaintext is the JSON text of `[data]`, or `[data, meta]` with the app's meta. What stays
 * in clear: the envelope (id, replica, seq, stream, type, version, times, schema, sizes) and the
 * meta the server decides on (CLEAR_META: a strict stream's `$strict` and `$prev`).
 *
 * Invariants:
 * 1. The additional data binds the ciphertext to its stream and type: a server that moves it to
 *    another stream or type makes it fail to open ('corrupt'), never open as something else.
 * 2. Sealing happens once, at append; a sealed event is stored, synced, forwarded and re-sent as
 *    it is. No layer seals an event twice, so every copy of an id is byte-for-byte the same and
 *    the copies machinery (core/copies.ts) is unchanged.
 * 3. An event with an app-given id gets a synthetic IV: HMAC(nonce key, stream, type, id,
 *    plaintext). Appending it again with the same content seals to the same text, so an
 *    idempotent retry is recognised as one (IdempotencyError only when the content differs).
 *    AES-GCM stays safe: an IV repeats only for the same key, context and plaintext, which gives
 *    the same ciphertext. Other events get a random IV: equal contents do not show as equal.
 * 4. openSealed never throws for what a peer sent: an event it cannot open comes back as a
 *    reason ('key-unknown': no key of that id here; 'corrupt': the tag or the text is wrong).
 * 5. Hidden names (EncryptionOptions.names): the envelope's stream is a keyed pseudonym of the
 *    name and its type is HIDDEN_TYPE; the name and the type are sealed with the content
 *    (plaintext `[data, meta | null, stream, type]`). The server still orders each stream (one
 *    name, one pseudonym, everywhere) and decides strict streams on it.
 * 6. A batch is sealed together (sealEvents): each event keeps its own key, IV and additional
 *    data; the calls run concurrently and the text of each is what sealEvent alone gives (the
 *    format does not depend on the batch). Plaintexts share one scratch buffer, which is safe
 *    because WebCrypto copies its input before encrypt returns (WebCrypto, "encrypt", step 2).
 * 7. Where the runtime has native AES-GCM (Node: core/aes-gcm.ts), sealing and opening run on it
 *    synchronously, with no promise an event (openSealedNow); the texts are the very ones
 *    WebCrypto gives and opens, which pages and workers keep using. Every function that seals
 *    or opens takes the engine last (`null`: WebCrypto), for the tests that hold both to one.
 */
import { type NativeAead, nativeAead } from './aes-gcm.ts';
import { decodeBase64Url, encodeBase64Url } from './base64.ts';
import type { JsonObject, JsonValue } from './events.ts';
import { canonicalJson } from './json.ts';
import type { Keyring, SpaceKey } from './keyring.ts';
import { STRICT_META } from './strict.ts';

export const SEALED_META = '$sealed';
/** Meta of an event whose stream was shredded, as the store reads it (data null). */
export const SHREDDED_META = '$shredded';
/** The stream of a space's keys (core/keyring-events.ts): no projection folds it. */
export const KEYRING_STREAM = '$keyring';

/**
 * Whether projections and commands take the event: not one still sealed (no key here opened
 * it), nor one of a shredded stream, nor a keyring event.
 */
export function foldable(event: { stream: string; meta?: JsonObject }): boolean {
  return (
    event.stream !== KEYRING_STREAM &&
    sealedKid(event.meta) === undefined &&
    event.meta?.[SHREDDED_META] !== true
  );
}
/** Meta that stays in clear on a sealed event: the server decides on it (invariant 1 above). */
export const CLEAR_META: readonly string[] = [STRICT_META.strict, STRICT_META.prev];

const IV_BYTES = 12;
const encoder = new TextEncoder();
const utf8 = (text: string) => encoder.encode(text) as Uint8Array<ArrayBuffer>;
const decoder = new TextDecoder();

export interface SealInput {
  stream: string;
  type: string;
  data: JsonValue;
  meta?: JsonObject;
  /** The app-given id, if any (invariant 3). */
  id?: string;
  /**
   * Hides the stream's name and the type (invariant 5): the envelope carries this pseudonym
   * and HIDDEN_TYPE, the name and type go inside the seal.
   */
  pseudonym?: string;
}

export interface Sealed {
  data: string;
  meta: JsonObject;
  /** The envelope's stream and type when they are hidden (SealInput.pseudonym). */
  stream?: string;
  type?: string;
}

/**
 * What seals and opens (invariant 7): Node's native AES-GCM where there is one, else `null`,
 * WebCrypto. The tests pass either to any function below.
 */
export type SealingEngine = NativeAead | null;
const ENGINE: SealingEngine = nativeAead ?? null;

/** The envelope type of an event whose type is hidden (invariant 5). */
export const HIDDEN_TYPE = '~';
/** Pseudonyms of hidden stream names start with it; a store hiding names refuses such names. */
export const PSEUDONYM_PREFIX = '~';

/**
 * The pseudonym of a stream name under a names key (invariant 5): `~` and 22 url-safe base64
 * characters of HMAC-SHA-256 (132 bits). The same name gives the same pseudonym everywhere.
 */
export async function streamPseudonym(
  names: CryptoKey,
  stream: string,
  engine: SealingEngine = ENGINE,
): Promise<string> {
  const mac =
    engine === null
      ? new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', names, utf8(stream)))
      : engine.hmac(names, [stream]);
  return PSEUDONYM_PREFIX + encodeBase64Url(mac).slice(0, 22);
}

export type OpenResult =
  | { ok: true; data: JsonValue; meta?: JsonObject; stream?: string; type?: string }
  | { ok: false; reason: 'key-unknown' | 'corrupt'; kid: string };

/** The key id a sealed event names, or undefined for an event in clear. */
export function sealedKid(meta: JsonObject | undefined): string | undefined {
  const kid = meta?.[SEALED_META];
  return typeof kid === 'string' ? kid : undefined;
}

/**
 * The additional data of a (stream, type), the last few kept by stream, then type: appends and
 * replays repeat them, and two lookups cost less than the JSON text of the pair an event.
 */
const aadCache = new Map<string, Map<string, Uint8Array<ArrayBuffer>>>();

function additionalData(stream: string, type: string): Uint8Array<ArrayBuffer> {
  let types = aadCache.get(stream);
  if (types === undefined) {
    if (aadCache.size >= 256) aadCache.clear();
    types = new Map();
    aadCache.set(stream, types);
  }
  let aad = types.get(type);
  if (aad === undefined) {
    if (types.size >= 64) types.clear();
    aad = utf8(JSON.stringify([stream, type]));
    types.set(type, aad);
  }
  return aad;
}

/**
 * Random IVs drawn a few thousand at a time: one getRandomValues call per 1,024 events. A pool is
 * never written again once handed out (a new one replaces it), so its views stay the IVs they were.
 */
let ivPool = new Uint8Array(0);
let ivAt = 0;

function randomIv(): Uint8Array<ArrayBuffer> {
  if (ivAt + IV_BYTES > ivPool.length) {
    ivPool = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES * 1024));
    ivAt = 0;
  }
  const iv = ivPool.subarray(ivAt, ivAt + IV_BYTES);
  ivAt += IV_BYTES;
  return iv;
}

/**
 * One buffer every plaintext without an id is encoded into (invariant 6): encrypt copies its
 * input before it returns, so the next event may overwrite it. Texts larger than it get their own.
 */
let scratch = new Uint8Array(16 * 1024);
const SCRATCH_MAX = 1024 * 1024;

function scratchUtf8(text: string): Uint8Array<ArrayBuffer> {
  // UTF-8 takes at most 3 bytes a UTF-16 code unit.
  const most = text.length * 3;
  if (most > scratch.length) {
    if (most > SCRATCH_MAX) return utf8(text);
    scratch = new Uint8Array(Math.max(most, scratch.length * 2));
  }
  const { written } = encoder.encodeInto(text, scratch);
  return scratch.subarray(0, written);
}

/** Splits meta into what is sealed and what stays in clear. */
function splitMeta(meta: JsonObject | undefined): { secret?: JsonObject; clear: JsonObject } {
  const clear: JsonObject = {};
  if (meta === undefined) return { clear };
  let secret: JsonObject | undefined;
  for (const [key, value] of Object.entries(meta)) {
    if (CLEAR_META.includes(key)) {
      clear[key] = value;
      continue;
    }
    secret ??= {};
    // An own "__proto__" key is data (RELIABILITY 28): defined, never assigned.
    Object.defineProperty(secret, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return secret === undefined ? { clear } : { secret, clear };
}

/** splitMeta's `clear` alone, in the same key order: what opening takes from the envelope. */
function clearMeta(meta: JsonObject): JsonObject {
  const clear: JsonObject = {};
  for (const key of Object.keys(meta)) {
    if (CLEAR_META.includes(key)) clear[key] = meta[key]!;
  }
  return clear;
}

/** Seals one event (invariants 1-3, 5): sealEvents of one. */
export async function sealEvent(
  key: SpaceKey,
  event: SealInput,
  engine: SealingEngine = ENGINE,
): Promise<Sealed> {
  return (await sealEvents(key, [event], engine))[0]!;
}

/** What sealEvents works out of an event before any WebCrypto call. */
interface Prepared {
  /** The envelope's stream and type (a pseudonym and HIDDEN_TYPE when hidden). */
  stream: string;
  type: string;
  text: string;
  clear: JsonObject;
}

function prepare(event: SealInput): Prepared {
  const { secret, clear } = splitMeta(event.meta);
  const hidden = event.pseudonym;
  const parts =
    hidden !== undefined
      ? [event.data, secret ?? null, event.stream, event.type]
      : secret === undefined
        ? [event.data]
        : [event.data, secret];
  // Invariant 3: content jsonEqual calls the same seals the same, whatever its key order.
  const text = event.id === undefined ? JSON.stringify(parts) : canonicalJson(parts);
  return {
    stream: hidden ?? event.stream,
    type: hidden === undefined ? event.type : HIDDEN_TYPE,
    text,
    clear,
  };
}

/** The text the synthetic IV is the HMAC of, before the plaintext (invariant 3). */
const syntheticContext = (p: Prepared, id: string) => `${JSON.stringify([p.stream, p.type, id])}\n`;

function sealedOf(key: SpaceKey, p: Prepared, event: SealInput, data: string): Sealed {
  const sealed: Sealed = { data, meta: { [SEALED_META]: key.kid, ...p.clear } };
  if (event.pseudonym !== undefined) {
    sealed.stream = p.stream;
    sealed.type = HIDDEN_TYPE;
  }
  return sealed;
}

/**
 * Seals a batch (invariant 6): `keys` is one key for all, or each event's own. With the native
 * engine (invariant 7) each event is sealed in turn, synchronously. With WebCrypto every AES-GCM
 * call is issued before the first is awaited, and the batch waits once: WebCrypto runs them while
 * the caller's thread issues the next, and no event costs a chain of promises of its own.
 */
export async function sealEvents(
  keys: SpaceKey | readonly SpaceKey[],
  events: readonly SealInput[],
  engine: SealingEngine = ENGINE,
): Promise<Sealed[]> {
  const keyOf = (i: number): SpaceKey =>
    Array.isArray(keys) ? (keys as readonly SpaceKey[])[i]! : (keys as SpaceKey);
  if (engine !== null) return sealNow(engine, keyOf, events);
  const api = globalThis.crypto.subtle;
  const prepared = new Array<Prepared>(events.length);
  const ivTexts = new Array<string>(events.length);
  const pending = new Array<Promise<ArrayBuffer>>(events.length);
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const p = prepare(event);
    prepared[i] = p;
    if (event.id === undefined) {
      const iv = randomIv();
      // 12 bytes are 16 characters, no remainder: the IV's text is the start of the sealed text.
      ivTexts[i] = encodeBase64Url(iv);
      pending[i] = api.encrypt(
        { name: 'AES-GCM', iv, additionalData: additionalData(p.stream, p.type) },
        keyOf(i).data,
        scratchUtf8(p.text),
      );
    } else {
      pending[i] = sealSynthetic(keyOf(i), p, event.id, (text) => {
        ivTexts[i] = text;
      });
    }
  }
  const ciphertexts = await Promise.all(pending);
  const out = new Array<Sealed>(events.length);
  for (let i = 0; i < events.length; i++) {
    const data = ivTexts[i]! + encodeBase64Url(new Uint8Array(ciphertexts[i]!));
    out[i] = sealedOf(keyOf(i), prepared[i]!, events[i]!, data);
  }
  return out;
}

/** sealEvents on the native engine (invariant 7): the same texts, one event after another. */
function sealNow(
  engine: NativeAead,
  keyOf: (i: number) => SpaceKey,
  events: readonly SealInput[],
): Sealed[] {
  const out = new Array<Sealed>(events.length);
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const key = keyOf(i);
    const p = prepare(event);
    const iv =
      event.id === undefined
        ? randomIv()
        : engine.hmac(key.nonce, [syntheticContext(p, event.id), p.text]).subarray(0, IV_BYTES);
    const data = engine.seal(key.data, iv, additionalData(p.stream, p.type), p.text);
    out[i] = sealedOf(key, p, event, data);
  }
  return out;
}

/** Invariant 3: the IV is HMAC(nonce key, stream, type, id, plaintext); then AES-GCM under it. */
async function sealSynthetic(
  key: SpaceKey,
  p: Prepared,
  id: string,
  ivText: (text: string) => void,
): Promise<ArrayBuffer> {
  const api = globalThis.crypto.subtle;
  const plaintext = utf8(p.text);
  const context = encoder.encode(syntheticContext(p, id));
  const input = new Uint8Array(context.length + plaintext.length);
  input.set(context);
  input.set(plaintext, context.length);
  const iv = new Uint8Array(await api.sign('HMAC', key.nonce, input)).slice(0, IV_BYTES);
  ivText(encodeBase64Url(iv));
  return api.encrypt(
    { name: 'AES-GCM', iv, additionalData: additionalData(p.stream, p.type) },
    key.data,
    plaintext,
  );
}

/** A sealed event as it is stored: `meta` must name a key (sealedKid). */
export interface SealedEvent {
  stream: string;
  type: string;
  data: JsonValue;
  meta: JsonObject;
}

/** Opens a sealed event (invariant 4). */
export async function openSealed(
  keyring: Keyring,
  event: SealedEvent,
  engine: SealingEngine = ENGINE,
): Promise<OpenResult> {
  if (engine !== null) return openWith(engine, keyring, event);
  const kid = sealedKid(event.meta) ?? '';
  const key = keyring.get(kid);
  if (key === undefined) return { ok: false, reason: 'key-unknown', kid };
  try {
    if (typeof event.data !== 'string') throw new Error('not a sealed text');
    const bytes = decodeBase64Url(event.data);
    const plaintext = await globalThis.crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: bytes.subarray(0, IV_BYTES),
        additionalData: additionalData(event.stream, event.type),
      },
      key.data,
      bytes.subarray(IV_BYTES),
    );
    return openedOf(decoder.decode(plaintext), event);
  } catch {
    return { ok: false, reason: 'corrupt', kid };
  }
}

/** openSealed on the native engine: no promise (invariants 4, 7). */
function openWith(engine: NativeAead, keyring: Keyring, event: SealedEvent): OpenResult {
  const kid = sealedKid(event.meta) ?? '';
  const key = keyring.get(kid);
  if (key === undefined) return { ok: false, reason: 'key-unknown', kid };
  const text =
    typeof event.data === 'string'
      ? engine.open(key.data, additionalData(event.stream, event.type), event.data)
      : undefined;
  try {
    if (text === undefined) throw new Error('does not open');
    return openedOf(text, event);
  } catch {
    return { ok: false, reason: 'corrupt', kid };
  }
}

/**
 * Opens a sealed event at once where the runtime has native AES-GCM (invariant 7): what
 * openSealed resolves to, without its promise. Undefined where there is none (browsers).
 */
export const openSealedNow: ((keyring: Keyring, event: SealedEvent) => OpenResult) | undefined =
  ENGINE === null ? undefined : (keyring, event) => openWith(ENGINE, keyring, event);

/** The opened event of a plaintext; throws when its shape is not one sealEvents makes. */
function openedOf(plaintext: string, event: SealedEvent): OpenResult {
  const parts = JSON.parse(plaintext) as unknown;
  if (!Array.isArray(parts) || parts.length < 1 || parts.length > 4 || parts.length === 3) {
    throw new Error('shape');
  }
  // Only CLEAR_META is taken from outside the seal: a server cannot add meta to an event.
  const clear = clearMeta(event.meta);
  const secret = (parts[1] ?? undefined) as JsonObject | undefined;
  const meta = secret === undefined ? clear : Object.assign(secret, clear);
  const data = parts[0] as JsonValue;
  const opened: OpenResult = { ok: true, data };
  if (Object.keys(meta).length > 0) opened.meta = meta;
  if (parts.length === 4) {
    // Invariant 5: the name and type were hidden; the envelope held a pseudonym.
    if (typeof parts[2] !== 'string' || typeof parts[3] !== 'string') throw new Error('shape');
    opened.stream = parts[2];
    opened.type = parts[3];
  }
  return opened;
}

/** Whether a stored value is one sealValue made, wrapped as { $sealed: kid, sealed: text }. */
export function isSealedState(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { [SEALED_META]?: unknown; sealed?: unknown };
  return typeof v[SEALED_META] === 'string' && typeof v.sealed === 'string';
}

/** Seals a value kept only on this replica (a snapshot's state): no stream, no envelope. */
export async function sealValue(key: SpaceKey, purpose: string, value: unknown): Promise<string> {
  return (await sealEvent(key, { stream: purpose, type: '', data: value as JsonValue })).data;
}

/** The inverse of sealValue; undefined when it cannot be opened (then the value is not used). */
export async function openValue(
  keyring: Keyring,
  purpose: string,
  kid: string,
  text: string,
): Promise<{ value: unknown } | undefined> {
  const opened = await openSealed(keyring, {
    stream: purpose,
    type: '',
    data: text,
    meta: { [SEALED_META]: kid },
  });
  return opened.ok ? { value: opened.data } : undefined;
}
