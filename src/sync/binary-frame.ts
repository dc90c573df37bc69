/**
 * Binary frames (issue 16, bytes on the wire): a batch of events whose signatures, link hashes
 * and sealed payloads travel as raw bytes instead of base64url text, which costs a third more.
 * A connection uses them only where both ends' hellos say `binary: true` (protocol.ts
 * HelloMessage.binary, over a transport with sendBinary/onBinary); anything else stays the text
 * of protocol 4, exactly as before, so a peer that does not offer them never sees one.
 *
 *   offset 0        u8    1, the layout's version
 *          1        u32   J, little-endian: the byte length of the JSON part
 *          5        J bytes of UTF-8: the message's JSON as protocol 4 writes it (event-codec.ts,
 *                   meta-columns.ts), except in its `events` object: `bin: [S, L, B]`, no `sigs`
 *                   nor `links`, and the data slot of each sealed event (shape digit with 16) is
 *                   the byte length of its data
 *          5 + J    S bytes: the `$sig` of each event with shape 1, 64 bytes each, in order
 *      5 + J + S    L bytes: the hash of each near link (shape 2), 16 bytes each, in order
 *  5 + J + S + L    B bytes: each sealed event's data (iv ‖ ciphertext ‖ tag), in batch order
 *                   and as long as its slot says; the frame ends exactly at 5 + J + S + L + B.
 *
 * Invariants:
 * 1. Lossless: the receiver rebuilds the value of protocol 4's text, each signature, hash and
 *    sealed data as the base64url text (no padding) of its bytes. The sender turns into bytes
 *    only texts that come back the same (canonical base64url: the bits past the last byte are
 *    zero); a batch with any other (a sealed event whose data is not such a text, a signature
 *    with stray bits) goes as a text frame, whole.
 * 2. The receiver trusts nothing: a frame shorter than its header, of another version, whose
 *    JSON part runs past its end, is not UTF-8 or not JSON, a message other than `events` and
 *    `history-page`, `bin` that is not three lengths, sections that do not end where the frame
 *    does or are no whole number of their values, `sigs` or `links` given as text as well, or a
 *    sealed event's slot that is not a length within B, is a FrameError (code PROTOCOL) naming
 *    what was wrong. The rebuilt value then goes through every check of a text message
 *    (messages.ts, event-codec.ts), which refuse a column that does not match the shape.
 * 3. A frame's byte length is held to maxMessageBytes as a text message's is (before it is
 *    read); every length it declares is checked against that length. The value it rebuilds is
 *    measured (`textBytes`), and so is a bound of any one event's data and meta text in it
 *    (`eventBytes`: the JSON part, where its data, meta column, ids, link texts and key texts
 *    are, plus the largest sealed data slot as text and EVENT_COLUMNS_TEXT for its signature
 *    and near link), so that a batch none of whose events can pass maxEventBytes is not measured
 *    event by event (event-codec.ts): a batch of signed events is about a fifth larger as text
 *    than its frame's JSON part.
 * 4. Only `events` and `history-page` messages travel as binary frames; all else stays text.
 * 5. permessage-deflate (server/wire-compression.ts) applies to binary frames as to text ones.
 */
import { encodeBase64Url, encodeBase64UrlChunks, URL_VALUES } from '../core/base64.ts';

export const FRAME_VERSION = 1;
const HEADER = 5;
const SIG_BYTES = 64;
const HASH_BYTES = 16;
const SIG_TEXT = 86;
/**
 * Invariant 3: the most one event's signature and near link add to its meta's text beyond the
 * JSON part ("$sig" and 86 characters, "$link" with a seq, a 22-character hash and the previous
 * event's id, at most the receiver's maxIdLength of 128, with quotes and commas), with room.
 */
const EVENT_COLUMNS_TEXT = 1024;
const HASH_TEXT = 22;

/** A malformed binary frame (invariant 2): refused as PROTOCOL, with what was wrong. */
export class FrameError extends Error {
  readonly code = 'PROTOCOL' as const;
}

/** What a batch carries as bytes, collected while it is encoded (event-codec.ts). */
export interface BinaryParts {
  /** The `$sig` texts, in order. */
  sigs: readonly string[];
  /** The near links' hashes, 22 characters each, one after the other. */
  links: string;
  /** Each sealed event's data text, in batch order. */
  blobs: string[];
  /** Set when an event cannot go as bytes: the batch goes as text (invariant 1). */
  textOnly: boolean;
}

/** The bytes `length` characters of base64url stand for. */
export function base64UrlBytes(length: number): number {
  const rest = length & 3;
  return (length >> 2) * 3 + (rest === 0 ? 0 : rest - 1);
}

/** `bin` of a batch: the byte lengths of its three sections. */
export function sectionSizes(parts: BinaryParts): [number, number, number] {
  let blobs = 0;
  for (const text of parts.blobs) blobs += base64UrlBytes(text.length);
  return [parts.sigs.length * SIG_BYTES, (parts.links.length / HASH_TEXT) * HASH_BYTES, blobs];
}

function valueAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  return c < 128 ? URL_VALUES[c]! : -1;
}

/**
 * Writes the bytes of base64url `text[from, to)` at `out[at]`; false when it is not canonical
 * (a character out of the alphabet, a lone last character, stray bits: invariant 1).
 */
function decodeInto(text: string, from: number, to: number, out: Uint8Array, at: number): boolean {
  const rest = (to - from) & 3;
  if (rest === 1) return false;
  const full = to - rest;
  let o = at;
  for (let i = from; i < full; i += 4) {
    const a = valueAt(text, i);
    const b = valueAt(text, i + 1);
    const c = valueAt(text, i + 2);
    const d = valueAt(text, i + 3);
    if ((a | b | c | d) < 0) return false;
    out[o] = (a << 2) | (b >> 4);
    out[o + 1] = ((b & 15) << 4) | (c >> 2);
    out[o + 2] = ((c & 3) << 6) | d;
    o += 3;
  }
  if (rest === 0) return true;
  const a = valueAt(text, full);
  const b = valueAt(text, full + 1);
  if ((a | b) < 0) return false;
  out[o] = (a << 2) | (b >> 4);
  if (rest === 2) return (b & 15) === 0;
  const c = valueAt(text, full + 2);
  if (c < 0 || (c & 3) !== 0) return false;
  out[o + 1] = ((b & 15) << 4) | (c >> 2);
  return true;
}

/** The three sections of a batch as one array, or undefined when a text is not canonical. */
export function packSections(parts: BinaryParts): Uint8Array | undefined {
  if (parts.textOnly) return undefined;
  const [s, l, b] = sectionSizes(parts);
  const out = new Uint8Array(s + l + b);
  let at = 0;
  for (const sig of parts.sigs) {
    if (sig.length !== SIG_TEXT || !decodeInto(sig, 0, SIG_TEXT, out, at)) return undefined;
    at += SIG_BYTES;
  }
  for (let i = 0; i < parts.links.length; i += HASH_TEXT) {
    if (!decodeInto(parts.links, i, i + HASH_TEXT, out, at)) return undefined;
    at += HASH_BYTES;
  }
  for (const blob of parts.blobs) {
    if (!decodeInto(blob, 0, blob.length, out, at)) return undefined;
    at += base64UrlBytes(blob.length);
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A frame of the message's JSON text and its batch's sections (the layout above). */
export function frameOf(json: string, sections: Uint8Array): Uint8Array {
  const text = encoder.encode(json);
  const frame = new Uint8Array(HEADER + text.length + sections.length);
  frame[0] = FRAME_VERSION;
  new DataView(frame.buffer).setUint32(1, text.length, true);
  frame.set(text, HEADER);
  frame.set(sections, HEADER + text.length);
  return frame;
}

/** The JSON text of a frame (for guards that look at it before the session does). */
export function frameJson(frame: Uint8Array): string {
  const part = jsonPart(frame);
  // A server checks the text before its session unpacks the frame: decoded once for both.
  decodedParts.set(frame, part);
  return part.json;
}

/** The JSON parts frameJson decoded, for unpackFrame on the same frame. */
const decodedParts = new WeakMap<Uint8Array, { json: string; end: number }>();

/** The JSON part of a frame and where it ends. */
function jsonPart(frame: Uint8Array): { json: string; end: number } {
  const decoded = decodedParts.get(frame);
  if (decoded !== undefined) {
    decodedParts.delete(frame);
    return decoded;
  }
  if (frame.length < HEADER) throw new FrameError('binary frame shorter than its 5-byte header');
  if (frame[0] !== FRAME_VERSION) {
    throw new FrameError(`binary frame of layout ${frame[0]}, this side reads ${FRAME_VERSION}`);
  }
  const length = new DataView(frame.buffer, frame.byteOffset, frame.length).getUint32(1, true);
  if (length > frame.length - HEADER) {
    throw new FrameError(`binary frame's JSON length ${length} runs past its end`);
  }
  try {
    return { json: decoder.decode(frame.subarray(HEADER, HEADER + length)), end: HEADER + length };
  } catch {
    throw new FrameError("binary frame's JSON part is not UTF-8");
  }
}

export interface UnpackedFrame {
  /** The message's value, as JSON.parse would give protocol 4's text of it. */
  value: Record<string, unknown>;
  /** An upper bound of the UTF-8 size of that text (invariant 3). */
  textBytes: number;
  /** An upper bound of any one event's data and meta text in it (invariant 3). */
  eventBytes: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isLength(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The value a frame stands for (invariants 1, 2); throws FrameError. */
export function unpackFrame(frame: Uint8Array): UnpackedFrame {
  const { json, end: start } = jsonPart(frame);
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new FrameError("binary frame's JSON part is not valid JSON");
  }
  if (!isRecord(value) || (value.type !== 'events' && value.type !== 'history-page')) {
    throw new FrameError('a binary frame carries only an events or history-page message');
  }
  const batch = value.events;
  if (!isRecord(batch)) throw new FrameError('binary frame: events must be an object');
  const bin = batch.bin;
  if (!Array.isArray(bin) || bin.length !== 3 || !bin.every(isLength)) {
    throw new FrameError('binary frame: events.bin must be three byte lengths');
  }
  const [s, l, b] = bin as [number, number, number];
  if (start + s + l + b !== frame.length) {
    throw new FrameError(
      `binary frame: its sections (${s} + ${l} + ${b} bytes) do not end where the frame does`,
    );
  }
  if (s % SIG_BYTES !== 0) throw new FrameError('binary frame: sigs is not 64 bytes a signature');
  if (l % HASH_BYTES !== 0) throw new FrameError('binary frame: links is not 16 bytes a hash');
  if (batch.sigs !== undefined || batch.links !== undefined) {
    throw new FrameError('binary frame: events.sigs or events.links given as text as well');
  }
  delete batch.bin;
  let textBytes = start - HEADER;
  if (s > 0) {
    batch.sigs = encodeBase64UrlChunks(frame.subarray(start, start + s), SIG_BYTES);
    textBytes += (s / SIG_BYTES) * SIG_TEXT;
  }
  if (l > 0) {
    batch.links = encodeBase64UrlChunks(frame.subarray(start + s, start + s + l), HASH_BYTES);
    textBytes += (l / HASH_BYTES) * HASH_TEXT;
  }
  const blobs = rebuildBlobs(batch, frame, start + s + l, b);
  textBytes += blobs.added;
  return { value, textBytes, eventBytes: start - HEADER + blobs.largest + EVENT_COLUMNS_TEXT };
}

/**
 * Sets each sealed event's data slot to its text; returns the characters added, and the most
 * one slot's text takes.
 */
function rebuildBlobs(
  batch: Record<string, unknown>,
  frame: Uint8Array,
  at: number,
  length: number,
): { added: number; largest: number } {
  const shape = batch.shape;
  const data = batch.data;
  const end = at + length;
  let added = 0;
  let largest = 0;
  if (typeof shape === 'string' && Array.isArray(data)) {
    for (let i = 0; i < shape.length && i < data.length; i++) {
      const c = shape.charCodeAt(i);
      // Digits g to v: 16 to 31, the sealed flag set (meta-columns.ts shape).
      if (c < 103 || c > 118) continue;
      const n = data[i];
      if (!isLength(n) || n > end - at) {
        throw new FrameError(`binary frame: events.data[${i}] must be a length within its section`);
      }
      data[i] = encodeBase64Url(frame.subarray(at, at + n));
      at += n;
      const text = Math.ceil((n * 4) / 3) + 2;
      added += text;
      if (text > largest) largest = text;
    }
  }
  if (at !== end) {
    throw new FrameError('binary frame: the sealed data section holds more than its events');
  }
  return { added, largest };
}
