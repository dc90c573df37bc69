/**
 * A snapshot too large for one message, sent in parts (protocol.ts invariant 10): the serving
 * side cuts the snapshot's JSON text into `snapshot-part` messages, each within the joining
 * side's maxMessageBytes and what the server sends at once; the joining side puts them back
 * together and parses the whole strictly (snapshot-messages.ts) before anything is installed.
 * A device joining a 1M-event space of the demo gets ~24 MB of board and streams: more than
 * one message may carry (a server sends at most half its send buffer at once: 4 MiB by default).
 *
 * Invariants:
 * 1. The parts' texts, in index order, are the snapshot's JSON text, of exactly the `length`
 *    (UTF-16 code units) its header announced, in exactly `parts` parts, none of them empty.
 * 2. The joining side takes part i only after parts 0..i-1, and never holds more than the
 *    header announced nor more than its join's maxBytes (UTF-8 bytes): a part that breaks this
 *    ends the assembly with SnapshotPartsError, and nothing is installed.
 * 3. A part never splits a surrogate pair (each part is well-formed text on its own).
 */
import { utf8Length } from '../core/json.ts';

/** Room for a part's envelope: `{"type":"snapshot-part","index":N,"text":""}`. */
const ENVELOPE_BYTES = 64;

/** A snapshot sent in parts that does not hold together (invariants 1 and 2). */
export class SnapshotPartsError extends Error {
  readonly code = 'SNAPSHOT_INVALID' as const;
}

/**
 * The texts of the `snapshot-part` messages that carry `text`, each at most `maxMessageBytes`
 * (UTF-8) once JSON-encoded (invariant 3).
 */
export function splitSnapshotText(text: string, maxMessageBytes: number): string[] {
  const room = maxMessageBytes - ENVELOPE_BYTES;
  if (room < 16) throw new RangeError(`no room for a snapshot part in ${maxMessageBytes} bytes`);
  const parts: string[] = [];
  let from = 0;
  // A guess of characters per part, corrected per part: JSON text escapes its quotes once more.
  let take = Math.floor(room / 1.5);
  while (from < text.length) {
    let end = Math.min(text.length, from + Math.max(1, take));
    for (;;) {
      // Invariant 3: never end between a high and a low surrogate.
      if (end < text.length && end - from > 1 && isHighSurrogate(text.charCodeAt(end - 1))) end--;
      const message = partMessage(parts.length, text.slice(from, end));
      const bytes = utf8Length(message);
      if (bytes <= maxMessageBytes) {
        parts.push(message);
        // The next part: as large as this one's bytes suggest.
        take = Math.max(1, Math.floor(((end - from) * room) / Math.max(1, bytes)));
        break;
      }
      const shorter = from + Math.floor(((end - from) * room) / bytes);
      end = Math.max(from + 1, Math.min(end - 1, shorter));
    }
    from = end;
  }
  return parts;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

function partMessage(index: number, text: string): string {
  return JSON.stringify({ type: 'snapshot-part', index, text });
}

/** The joining side's assembly of one snapshot's parts (invariants 1 and 2). */
export class SnapshotAssembly {
  private readonly texts: string[] = [];
  private received = 0;
  private bytes = 0;
  readonly parts: number;
  readonly length: number;
  private readonly maxBytes: number;

  constructor(header: { parts: number; length: number }, maxBytes: number) {
    this.parts = header.parts;
    this.length = header.length;
    this.maxBytes = maxBytes;
    if (header.parts > header.length) {
      throw new SnapshotPartsError(
        `${header.parts} parts cannot carry ${header.length} characters`,
      );
    }
    // A character is at least one UTF-8 byte.
    if (header.length > maxBytes) {
      throw new SnapshotPartsError(
        `a snapshot of ${header.length} characters is larger than this side takes (${maxBytes} bytes)`,
      );
    }
  }

  /** How many parts are in. */
  get count(): number {
    return this.texts.length;
  }

  /** Takes part `index`; the whole text once the last part is in, else undefined. */
  add(index: number, text: string): string | undefined {
    const expected = this.texts.length;
    if (index !== expected) {
      throw new SnapshotPartsError(`snapshot part ${index} came where part ${expected} was due`);
    }
    if (expected >= this.parts) {
      throw new SnapshotPartsError(`more snapshot parts than the ${this.parts} announced`);
    }
    this.received += text.length;
    if (this.received > this.length) {
      throw new SnapshotPartsError(
        `the snapshot's parts hold more than the ${this.length} characters announced`,
      );
    }
    this.bytes += utf8Length(text);
    if (this.bytes > this.maxBytes) {
      throw new SnapshotPartsError(
        `the snapshot's parts hold more than this side takes (${this.maxBytes} bytes)`,
      );
    }
    this.texts.push(text);
    if (this.texts.length < this.parts) return undefined;
    if (this.received !== this.length) {
      throw new SnapshotPartsError(
        `the snapshot's ${this.parts} parts hold ${this.received} characters, not the ${this.length} announced`,
      );
    }
    return this.texts.join('');
  }
}
