/**
 * The form in which IndexedDB stores a segment (issue 18, part 1), pure: packSegment's segment
 * with what its JSON-like columns spell out at length written shorter. Browsers compress stored
 * values with Snappy, which finds repeats but cannot shorten random text: a `$sig` is 86
 * characters of base64url for 64 random bytes, and a canonical id repeats the event's replica and
 * seq. Only IndexedDB writes this form; core/segments.ts eventAt reads both (its invariant 7), so
 * every reader of a stored segment gets the same records, and the servers' segments (which go
 * through JSON) never hold bytes.
 *
 * Invariants:
 * 1. Lossless: eventAt gives the same event, field for field and `meta`'s keys in their order,
 *    from a segment and from its compact form.
 * 2. Only a canonical id that is not a custom id (Segment.customIds: found through the `id` index,
 *    read by its text in `ids`) is left out, as ''.
 * 3. `$sig`s move to `sigs` only when every event of the segment has one that decodes to 64 bytes
 *    and encodes back to the same text; each keeps its place in its `meta` as a 0.
 * 4. Idempotent: a compact segment (it has `sigs`, or no id to leave out) comes back as it is.
 * 5. A segment holding events is stored without `streamMax`: since IndexedDB schema 7 no index
 *    reads it, and its events give it (storage/idb-streams.ts heldVersions). A husk keeps it: its
 *    events are gone (core/husks.ts).
 * 6. A segment of several streams lists each event's stream by its place in `streamKeys`
 *    (`streamOf`), which names each once (segments.ts invariant 3), instead of by name again.
 * 7. A `$link` that names its replica's previous seq by that seq's canonical id (the usual link:
 *    core/integrity.ts linkText) moves to `links` as its 16 hash bytes, its place in its `meta`
 *    kept by a 0: only when the text rebuilt from them is the same and the bytes are not all
 *    zeros (a zero slot says "kept as text", so a link of any other form, or a `$link` of 0,
 *    comes back as it was). Per event: a segment of received events, some links of another form,
 *    moves the rest. What is left of a link after its hash (22 random characters, which Snappy
 *    cannot shorten) repeats the event's own replica and seq.
 */
import { decodeBase64Url, URL_ALPHABET } from './base64.ts';
import type { JsonObject } from './events.ts';
import { EventId, type ReplicaId, type Seq } from './ids.ts';
import {
  LINK_HASH_BYTES,
  LINK_HASH_TEXT,
  previousLinkText,
  type Segment,
  SIG_BYTES,
  SIG_TEXT,
} from './segments.ts';

const SIG = '$sig';
const LINK = '$link';

/** The compact form of `s` (invariants 1 to 4); `s` itself when nothing in it gets shorter. */
export function compactSegment(s: Segment): Segment {
  const ids = compactIds(s);
  const sigs = s.sigs === undefined ? signatureBytes(s) : undefined;
  const links = s.links === undefined ? linkBytes(s) : undefined;
  const dropMax = s.n > 0 && s.streamMax !== undefined;
  const streamOf = streamPlaces(s);
  if (
    ids === undefined &&
    sigs === undefined &&
    links === undefined &&
    !dropMax &&
    streamOf === undefined
  ) {
    return s;
  }
  const out: Segment = { ...s };
  if (dropMax) delete out.streamMax;
  if (streamOf !== undefined) {
    out.streamOf = streamOf;
    out.stream = '';
  }
  if (ids !== undefined) out.ids = ids;
  if (sigs !== undefined || links !== undefined) {
    // Copies: the caller's records keep their text.
    out.meta = s.meta!.map((m, i) => {
      if (m === null) return m;
      const copy: JsonObject = { ...m };
      if (sigs !== undefined) copy[SIG] = 0;
      if (links !== undefined && links.moved[i] === true) copy[LINK] = 0;
      return copy;
    });
  }
  if (sigs !== undefined) out.sigs = sigs;
  if (links !== undefined) out.links = links.bytes;
  return out;
}

/** Each event's place in `streamKeys` (invariant 6), or undefined for a segment of one stream. */
function streamPlaces(s: Segment): number[] | undefined {
  if (typeof s.stream === 'string' || s.streamKeys === undefined) return undefined;
  const place = new Map(s.streamKeys.map(([name], k) => [name, k]));
  const out: number[] = new Array(s.n);
  for (let i = 0; i < s.n; i++) {
    const k = place.get(s.stream[i]!);
    if (k === undefined) return undefined;
    out[i] = k;
  }
  return out;
}

/** `ids` with each canonical id that is not custom as '' (invariant 2), or undefined if none is. */
function compactIds(s: Segment): Segment['ids'] | undefined {
  const custom = s.customIds === undefined ? undefined : new Set<string>(s.customIds);
  let out: Segment['ids'] | undefined;
  for (let i = 0; i < s.n; i++) {
    const id = s.ids[i]!;
    if (id === '' || custom?.has(id) === true) continue;
    const replica = typeof s.replica === 'string' ? s.replica : s.replica[i]!;
    const seq = typeof s.seq === 'number' ? s.seq + i : s.seq[i]!;
    if (!EventId.isCanonical(id, replica, seq)) continue;
    out ??= [...s.ids];
    out[i] = '' as EventId;
  }
  return out;
}

/** Every event's `$sig` as bytes (invariant 3), or undefined when one has none of that form. */
function signatureBytes(s: Segment): Uint8Array | undefined {
  if (s.meta === undefined || s.n === 0) return undefined;
  const out = new Uint8Array(s.n * SIG_BYTES);
  for (let i = 0; i < s.n; i++) {
    const text = s.meta[i]?.[SIG];
    if (typeof text !== 'string' || text.length !== SIG_TEXT) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64Url(text);
    } catch {
      return undefined;
    }
    // 86 characters carry 516 bits: text whose last 4 bits are not 0 would not come back.
    if (bytes.length !== SIG_BYTES || !lastBitsClear(text)) return undefined;
    out.set(bytes, i * SIG_BYTES);
  }
  return out;
}

/** Whether the last character of 86 carries only the 2 bits of the 64th byte (the rest 0). */
function lastBitsClear(text: string): boolean {
  return (URL_ALPHABET.indexOf(text[text.length - 1]!) & 15) === 0;
}

/** The hash bytes of each `$link` that moves (invariant 7), or undefined when none does. */
function linkBytes(s: Segment): { bytes: Uint8Array; moved: boolean[] } | undefined {
  if (s.meta === undefined || s.n === 0) return undefined;
  let out: { bytes: Uint8Array; moved: boolean[] } | undefined;
  for (let i = 0; i < s.n; i++) {
    const text = s.meta[i]?.[LINK];
    if (typeof text !== 'string') continue;
    const seq = (typeof s.seq === 'number' ? s.seq + i : s.seq[i]!) as Seq;
    if (seq < 2) continue;
    const dot = text.indexOf('.');
    if (dot < 1) continue;
    const hashText = text.slice(dot + 1, dot + 1 + LINK_HASH_TEXT);
    if (hashText.length !== LINK_HASH_TEXT) continue;
    const replica = (typeof s.replica === 'string' ? s.replica : s.replica[i]!) as ReplicaId;
    if (previousLinkText(replica, seq, hashText) !== text) continue;
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64Url(hashText);
    } catch {
      continue;
    }
    // 22 characters carry 132 bits: text whose last 4 bits are not 0 would not come back.
    if (bytes.length !== LINK_HASH_BYTES || !lastBitsClear(hashText)) continue;
    if (bytes.every((b) => b === 0)) continue;
    out ??= { bytes: new Uint8Array(s.n * LINK_HASH_BYTES), moved: [] };
    out.bytes.set(bytes, i * LINK_HASH_BYTES);
    out.moved[i] = true;
  }
  return out;
}
