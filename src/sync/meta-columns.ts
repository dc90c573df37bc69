/**
 * The meta fields of tamper evidence and sealing in a wire batch (protocol 4, event-codec.ts):
 * columns, not keys of each event's meta object. A signed event's `$sig` is 86 characters of
 * random base64url that no table shortens, but its key name and quotes need not travel with
 * each; its `$link` mostly names the event of its replica right before it in the same batch,
 * whose seq and id the receiver holds already; `$key` texts and `$sealed` key ids repeat.
 *
 *   shape:      string     one base-36 digit per event, the sum of what it carries in columns:
 *                          1 `$sig`, 2 a near `$link`, 4 another `$link`, 8 `$key`, 16 `$sealed`;
 *                          2 + 4, a near `$link` whose hash is implied (invariant 6)
 *   sigs?:      string     the `$sig` (86 characters) of each event with 1, in order
 *   links?:     string     the hash (22 characters) of each near link: the receiver rebuilds
 *                          "<seq base 36>.<hash>.<id>" of its replica's previous chained event
 *   linkTexts?: [string]   the whole `$link` of each event with 4, in order
 *   keyTexts?:  [string], keyOf?: string   the `$key` texts once each, and each event with 8's
 *   kids?:      [string], kidOf?: string   index into them; likewise the `$sealed` key ids
 *                          (an index takes as many base-36 digits as its table's length needs)
 *   trees?:     string     one entry per event with 1, in order (invariant 7): `.` no `$tree`;
 *                          `p`, `i` or `s` and the two hex digits of its place
 *   paths?:     string     the path (22 characters a hash) of each `p` entry, in order
 *
 * The rest of a meta object (the app's meta, `$strict`, `$prev`, ...) stays in the batch's `meta`
 * column, without the fields above.
 *
 * Invariants:
 * 1. Lossless, key order included (a sealed event is copied byte for byte everywhere: core/
 *    sealing.ts invariant 2): the receiver rebuilds `{ $sealed, ...the meta column's, $tree,
 *    $key, $link, $sig }`. The sender takes fields out only of a meta whose keys come in that
 *    order (`$sealed` first, the integrity fields last) with values of their form (strings; a
 *    `$sig` of 86 base64url characters, a `$tree` with its path, beside a `$sig`); any other
 *    meta travels whole in the `meta` column, as in protocol 3. Sealing and signing write that
 *    order (sealing.ts, integrity.ts signEvents). Implied paths (invariant 7) are the exception:
 *    the receiver's verifyBatch writes them out again.
 * 2. An event's previous chained event is the latest event before it in the batch of the same
 *    replica that is not strict (core/strict.ts): both sides see the same events in the same
 *    order. The sender compares texts, no digest: a link is near when its seq and id are that
 *    event's and its hash is 22 base64url characters.
 * 3. The receiver trusts nothing: a shape digit out of range or with both kinds of link, a
 *    column shorter than its events need, a character out of the base64url alphabet, an index
 *    out of its table, a near link with no event before it, or a field given both in a column
 *    and in the meta column is a ValidationError naming the event's field; a column of the wrong
 *    type, or longer than its events need, is a BatchShapeError.
 * 4. A batch none of whose events carries these fields has no `shape`: its text is protocol 3's.
 * 5. The receiver's size of a rebuilt meta (for maxEventBytes) is its JSON text's UTF-8 length
 *    exactly, counted from the columns without writing the meta out (core/json.ts jsonByteLength).
 * 6. Implied links (protocol.ts invariant 13), only in a batch that says so: a near link with
 *    neither hash nor text. The receiver rebuilds its hash from the digest of the event before
 *    it (invariant 2) as that event was rebuilt (core/integrity.ts eventDigest, kept for
 *    verifyBatch: each event is hashed once). No text check on the sender's side can tell that
 *    hash from the one the link names: a link that named another digest fails its signature,
 *    and the batch is unproven (protocol.ts 13). Elsewhere the digit is refused (invariant 3).
 * 7. Tree signatures (core/sign-trees.ts): each event with a `$sig` in the columns has an entry
 *    in `trees` when any of the batch's has a `$tree`: `.` none; `p` its place, and its path in
 *    `paths`; in an implied-links batch only, where every leaf of its tree travels in it with
 *    its `$sig` (impliedTreeIndexes), `i` its place alone (the path is implied: the receiver
 *    rebuilds it from the leaves), or `s` the same with the `$sig` of the entry before it, which
 *    `sigs` does not repeat. A tree's leaves share one signature: 16 events of one tree carry
 *    it once.
 */
import { BASE64URL_TEXT } from '../core/base64.ts';
import { ValidationError } from '../core/errors.ts';
import type { JsonObject, JsonValue, StoredEvent, StoredEventRecord } from '../core/events.ts';
import { eventDigest, linkText } from '../core/integrity.ts';
import { INTEGRITY_META } from '../core/integrity-meta.ts';
import { jsonByteLength, jsonStringBytes } from '../core/json.ts';
import { SEALED_META } from '../core/sealing.ts';
import { SIG_TEXT } from '../core/segments.ts';
import { type BatchLeaf, pathLength, treePlaceOf, wholeTrees } from '../core/sign-trees.ts';
import { isStrictEvent, STRICT_META } from '../core/strict.ts';
import { BatchShapeError } from './batch-errors.ts';

const SIG = 1;
const NEAR = 2;
const FAR = 4;
const IMPLIED = NEAR | FAR;
const KEY = 8;
const SEALED = 16;
const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';
/** A link's hash: 16 bytes of digest in base64url (integrity.ts linkHash). */
const HASH_TEXT = 22;

/** The columns of this module, besides `shape`. */
const COLUMNS = [
  'sigs',
  'links',
  'linkTexts',
  'keyTexts',
  'keyOf',
  'kids',
  'kidOf',
  'trees',
  'paths',
] as const;

/** Base-36 digits an index into a table of `size` takes (both sides work it out). */
function digitsFor(size: number): number {
  let digits = 1;
  for (let n = 36; n < size; n *= 36) digits += 1;
  return digits;
}

/** A table of texts, each once, and each use's index into it. */
class Table {
  readonly list: string[] = [];
  readonly uses: number[] = [];
  private readonly index = new Map<string, number>();

  use(text: string): void {
    let i = this.index.get(text);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(text);
      this.index.set(text, i);
    }
    this.uses.push(i);
  }

  /** The uses as base-36 digits, digitsFor(list.length) each. */
  usesText(): string {
    // One key id for the whole batch is the common case: a run of zeros.
    if (this.list.length === 1) return '0'.repeat(this.uses.length);
    const digits = digitsFor(this.list.length);
    let out = '';
    for (const i of this.uses)
      out += digits === 1 ? DIGITS[i] : i.toString(36).padStart(digits, '0');
    return out;
  }
}

/** The value of a base-36 digit's character code, or -1. */
function digit36(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 122 ? c - 87 : -1;
}

function isUrlCharCode(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95
  );
}

/**
 * Whether `link` names `previous` (invariant 2): "<its seq as toString(36) writes it>.<22
 * base64url characters>.<its id>". Read in place: it runs for nearly every signed event sent.
 */
function isNear(link: string, previous: StoredEvent): boolean {
  const id = previous.id;
  const idDot = link.length - id.length - 1;
  const seqDot = idDot - HASH_TEXT - 1;
  if (seqDot < 1 || seqDot > 11 || link.charCodeAt(0) === 48) return false;
  if (link.charCodeAt(idDot) !== 46 || link.charCodeAt(seqDot) !== 46 || !link.endsWith(id)) {
    return false;
  }
  let seq = 0;
  for (let k = 0; k < seqDot; k++) {
    const d = digit36(link.charCodeAt(k));
    if (d < 0) return false;
    seq = seq * 36 + d;
  }
  if (seq !== previous.seq) return false;
  for (let k = seqDot + 1; k < idDot; k++) if (!isUrlCharCode(link.charCodeAt(k))) return false;
  return true;
}

/**
 * A key's place in the rebuilt order (invariant 1): the app's keys 1, then `$tree`, `$key`,
 * `$link`, `$sig`.
 */
function rankOf(name: string): number {
  switch (name) {
    case INTEGRITY_META.tree:
      return 2;
    case INTEGRITY_META.key:
      return 3;
    case INTEGRITY_META.link:
      return 4;
    case INTEGRITY_META.sig:
      return 5;
    default:
      return 1;
  }
}

/**
 * The events of an implied-links batch whose tree path stays out (core/sign-trees.ts invariant
 * 5), by index: each leaf of a tree (events of one replica with one `$sig` and a `$tree`) where
 * every leaf travels in the batch with that `$sig`.
 */
export function impliedTreeIndexes(events: readonly StoredEvent[]): Set<number> {
  const leaves: BatchLeaf<number>[] = [];
  for (let i = 0; i < events.length; i++) {
    const meta = events[i]!.meta;
    const text = meta?.[INTEGRITY_META.tree];
    if (text === undefined) continue;
    const sig = meta?.[INTEGRITY_META.sig];
    const place = treePlaceOf(text);
    if (typeof sig !== 'string' || place?.implied !== false) continue;
    // By signature alone: two trees never share one (each signs its own root and replica's key).
    leaves.push({ item: i, tree: sig, index: place.index, count: place.count });
  }
  // A tree not whole (a copy twice in a batch, a leaf left for the next) keeps its paths.
  return new Set(wholeTrees(leaves).whole.flat());
}

/** The sender's side: takes each event's fields into the columns, in batch order. */
export class MetaColumnsWriter {
  private shape = '';
  private used = false;
  private readonly sigs: string[] = [];
  private links = '';
  private readonly linkTexts: string[] = [];
  private readonly keys = new Table();
  private readonly kids = new Table();
  /** One entry per event with a `$sig` in the columns (invariant 7). */
  private trees = '';
  private paths = '';
  private treesUsed = false;
  /** The `$sig` of the latest event with one in the columns (invariant 7: `s`). */
  private lastSig: string | undefined;
  /** Each replica's latest chained event so far (invariant 2). */
  private readonly chained = new Map<string, StoredEvent>();
  /** Whether the event add() took last went with a `$sealed` column (its data a sealed text). */
  sealedLast = false;
  /** Near links leave their hash out (invariant 6). */
  private readonly impliedLinks: boolean;

  constructor(impliedLinks = false) {
    this.impliedLinks = impliedLinks;
  }

  /**
   * Takes the next event of the batch; returns what of its meta goes in the `meta` column.
   * `implyTree`: its tree's path is left out (impliedTreeIndexes).
   */
  add(e: StoredEvent, implyTree = false): JsonObject | undefined {
    const previous = this.chained.get(e.replica);
    const meta = e.meta;
    this.sealedLast = false;
    if (meta === undefined) {
      this.chained.set(e.replica, e);
      this.shape += '0';
      return undefined;
    }
    // One walk of the keys: their order, the values taken out, and whether the event is strict
    // (a lookup of a key a meta does not hold costs more than the walk).
    const names = Object.keys(meta);
    let sealed: string | undefined;
    let tree: string | undefined;
    let key: string | undefined;
    let link: string | undefined;
    let sig: string | undefined;
    let stage = 0;
    let rest = 0;
    let fits = true;
    let strict = false;
    for (const name of names) {
      const value = meta[name];
      if (name === SEALED_META && stage === 0 && typeof value === 'string') {
        sealed = value;
        stage = 1;
        continue;
      }
      const rank = rankOf(name);
      if (rank === 1) {
        if (name === STRICT_META.strict && value === true) strict = true;
        if (stage > 1) fits = false;
        stage = 1;
        rest += 1;
      } else if (rank <= stage || typeof value !== 'string') {
        fits = false;
      } else {
        stage = rank;
        if (rank === 2) {
          if (treePlaceOf(value)?.implied !== false) fits = false;
          tree = value;
        } else if (rank === 3) key = value;
        else if (rank === 4) link = value;
        else if (value.length === SIG_TEXT && BASE64URL_TEXT.test(value)) sig = value;
        else fits = false;
      }
    }
    // A tree's entry goes beside its `$sig` (invariant 7): a `$tree` alone travels as it is.
    if (tree !== undefined && sig === undefined) fits = false;
    if (!strict) this.chained.set(e.replica, e);
    if (!fits || rest === names.length) {
      this.shape += '0';
      return meta;
    }
    let flags = 0;
    if (sealed !== undefined) {
      flags |= SEALED;
      this.sealedLast = true;
      this.kids.use(sealed);
    }
    if (key !== undefined) {
      flags |= KEY;
      this.keys.use(key);
    }
    if (link !== undefined) {
      if (previous !== undefined && isNear(link, previous)) {
        if (this.impliedLinks) flags |= IMPLIED;
        else {
          flags |= NEAR;
          const from = link.length - previous.id.length - HASH_TEXT - 1;
          this.links += link.slice(from, from + HASH_TEXT);
        }
      } else {
        flags |= FAR;
        this.linkTexts.push(link);
      }
    }
    if (sig !== undefined) {
      flags |= SIG;
      this.addSig(sig, tree, implyTree);
    }
    this.shape += DIGITS[flags];
    this.used = true;
    if (rest === 0) return undefined;
    const kept: [string, JsonValue][] = [];
    for (let k = sealed === undefined ? 0 : 1; k < names.length; k++) {
      const name = names[k]!;
      if (rankOf(name) === 1) kept.push([name, meta[name]!]);
    }
    // fromEntries defines each key (an own `__proto__` stays data, as JSON.parse made it).
    return Object.fromEntries(kept) as JsonObject;
  }

  /** Invariant 7: a `$sig` and the entry of its tree. */
  private addSig(sig: string, tree: string | undefined, implyTree: boolean): void {
    if (tree === undefined) this.trees += '.';
    else if (!implyTree) {
      this.trees += `p${tree.slice(0, 2)}`;
      this.paths += tree.slice(2);
    } else this.trees += `${sig === this.lastSig ? 's' : 'i'}${tree.slice(0, 2)}`;
    if (tree === undefined || !implyTree || sig !== this.lastSig) this.sigs.push(sig);
    this.treesUsed ||= tree !== undefined;
    this.lastSig = sig;
  }

  /**
   * Adds the columns to the batch's head (nothing when no event used them: invariant 4); with
   * `bytes`, the signatures and near links go there instead, for a binary frame (binary-frame.ts).
   */
  write(head: Record<string, unknown>, bytes?: { sigs: readonly string[]; links: string }): void {
    if (!this.used) return;
    head.shape = this.shape;
    if (bytes !== undefined) {
      bytes.sigs = this.sigs;
      bytes.links = this.links;
    } else {
      if (this.sigs.length > 0) head.sigs = this.sigs.join('');
      if (this.links !== '') head.links = this.links;
    }
    if (this.linkTexts.length > 0) head.linkTexts = this.linkTexts;
    if (this.treesUsed) head.trees = this.trees;
    if (this.paths !== '') head.paths = this.paths;
    if (this.keys.list.length > 0) {
      head.keyTexts = this.keys.list;
      head.keyOf = this.keys.usesText();
    }
    if (this.kids.list.length > 0) {
      head.kids = this.kids.list;
      head.kidOf = this.kids.usesText();
    }
  }
}

// ---- the receiver's side (invariant 3) --------------------------------------------------------

function column(batch: Record<string, unknown>, key: string, type: 'string' | 'array'): unknown {
  const value = batch[key];
  if (value === undefined) return type === 'string' ? '' : [];
  if (type === 'string' ? typeof value !== 'string' : !Array.isArray(value)) {
    throw new BatchShapeError(`events.${key} must be a${type === 'array' ? 'n' : ''} ${type}`);
  }
  return value;
}

/** The value of base-36 digits text[at, at + digits), or -1 when one is not a digit. */
function base36(text: string, at: number, digits: number): number {
  if (at + digits > text.length) return -1;
  let n = 0;
  for (let k = at; k < at + digits; k++) {
    const d = digit36(text.charCodeAt(k));
    if (d < 0) return -1;
    n = n * 36 + d;
  }
  return n;
}

/** One column's values for the events that take one, in order; each read checked. */
class ColumnReader {
  private at = 0;
  private readonly name: string;
  private readonly read: (at: number) => string | undefined;
  private readonly step: number;
  private readonly end: number;

  /** `width` base64url characters a value of the string column `name`. */
  static fixed(batch: Record<string, unknown>, name: string, width: number): ColumnReader {
    const text = column(batch, name, 'string') as string;
    const clean = BASE64URL_TEXT.test(text);
    const read = (at: number) => {
      const value = text.slice(at, at + width);
      return value.length === width && (clean || BASE64URL_TEXT.test(value)) ? value : undefined;
    };
    return new ColumnReader(name, read, width, text.length);
  }

  /** Each value of the array column `name`, a string. */
  static texts(batch: Record<string, unknown>, name: string): ColumnReader {
    const list = column(batch, name, 'array') as unknown[];
    const read = (at: number) => (typeof list[at] === 'string' ? (list[at] as string) : undefined);
    return new ColumnReader(name, read, 1, list.length);
  }

  /** The texts of the array column `table`, each use an index into it in the column `name`. */
  static table(batch: Record<string, unknown>, table: string, name: string): ColumnReader {
    const list = column(batch, table, 'array') as unknown[];
    for (let i = 0; i < list.length; i++) {
      if (typeof list[i] !== 'string') {
        throw new BatchShapeError(`events.${table}[${i}] must be a string`);
      }
    }
    const uses = column(batch, name, 'string') as string;
    const digits = digitsFor(list.length);
    const read = (at: number) => list[base36(uses, at, digits)] as string | undefined;
    return new ColumnReader(name, read, digits, uses.length);
  }

  private constructor(
    name: string,
    read: (at: number) => string | undefined,
    step: number,
    end: number,
  ) {
    this.name = name;
    this.read = read;
    this.step = step;
    this.end = end;
  }

  next(path: string): string {
    const value = this.read(this.at);
    if (value === undefined)
      throw new ValidationError(path, `has no valid value in events.${this.name}`);
    this.at += this.step;
    return value;
  }

  finish(): void {
    if (this.at !== this.end)
      throw new BatchShapeError(`events.${this.name} holds more than its events`);
  }
}

/** Invariant 7: the `trees` column's entries, and the `paths` they read, in order. */
class TreeEntries {
  private at = 0;
  private pathAt = 0;
  private readonly trees: string;
  private readonly paths: string;
  private readonly impliedLinks: boolean;

  constructor(batch: Record<string, unknown>, impliedLinks: boolean) {
    this.impliedLinks = impliedLinks;
    this.trees = column(batch, 'trees', 'string') as string;
    this.paths = column(batch, 'paths', 'string') as string;
  }

  /**
   * The next event's entry: `sameSig`, its `$sig` is the one before it; `tree`, its `$tree`
   * (undefined: it has none).
   */
  next(path: string): { sameSig: boolean; tree?: string } {
    if (this.trees === '') return { sameSig: false };
    const kind = this.trees[this.at];
    if (kind === '.') {
      this.at += 1;
      return { sameSig: false };
    }
    const head = this.trees.slice(this.at + 1, this.at + 3);
    const place = treePlaceOf(head);
    const implied = (kind === 'i' || kind === 's') && this.impliedLinks;
    if ((kind !== 'p' && !implied) || place === undefined) {
      throw new ValidationError(`${path}.$tree`, 'has no valid entry in events.trees');
    }
    this.at += 3;
    if (kind !== 'p') return { sameSig: kind === 's', tree: head };
    const width = pathLength(place) * HASH_TEXT;
    const hashes = this.paths.slice(this.pathAt, this.pathAt + width);
    if (hashes.length !== width || !BASE64URL_TEXT.test(hashes)) {
      throw new ValidationError(`${path}.$tree`, 'has no valid path in events.paths');
    }
    this.pathAt += width;
    return { sameSig: false, tree: head + hashes };
  }

  finish(): void {
    if (this.at !== this.trees.length || this.pathAt !== this.paths.length) {
      throw new BatchShapeError('events.trees or events.paths holds more than its events');
    }
  }
}

/** The receiver's side: rebuilds each event's meta, in batch order. */
export class MetaColumnsReader {
  private readonly shape: string;
  private readonly sigs: ColumnReader;
  private readonly links: ColumnReader;
  private readonly linkTexts: ColumnReader;
  private readonly keys: ColumnReader;
  private readonly kids: ColumnReader;
  private readonly trees: TreeEntries;
  /** The `$sig` of the latest event with one in the columns (invariant 7). */
  private lastSig: string | undefined;
  /** Each replica's latest chained event so far (invariant 2), and its index in the batch. */
  private readonly chained = new Map<string, StoredEventRecord>();
  private readonly chainedAt = new Map<string, number>();
  /**
   * The digests implied links took, by index in the batch: verifyBatch takes them instead of
   * hashing those events again (core/integrity.ts rememberDigests).
   */
  readonly digests: (Uint8Array | undefined)[] = [];
  /** The batch said its near links may leave their hash out (invariant 6). */
  private readonly impliedLinks: boolean;

  /** The reader of a batch's columns, or undefined when it has none (invariant 4). */
  static of(
    batch: Record<string, unknown>,
    count: number,
    impliedLinks = false,
  ): MetaColumnsReader | undefined {
    const shape = batch.shape;
    if (shape === undefined) {
      for (const key of COLUMNS) {
        if (batch[key] !== undefined)
          throw new BatchShapeError(`events.${key} without events.shape`);
      }
      return undefined;
    }
    if (typeof shape !== 'string' || shape.length !== count) {
      throw new BatchShapeError('events.shape must hold one digit per event');
    }
    return new MetaColumnsReader(batch, shape, impliedLinks);
  }

  private constructor(batch: Record<string, unknown>, shape: string, impliedLinks: boolean) {
    this.shape = shape;
    this.impliedLinks = impliedLinks;
    this.sigs = ColumnReader.fixed(batch, 'sigs', SIG_TEXT);
    this.links = ColumnReader.fixed(batch, 'links', HASH_TEXT);
    this.linkTexts = ColumnReader.texts(batch, 'linkTexts');
    this.keys = ColumnReader.table(batch, 'keyTexts', 'keyOf');
    this.kids = ColumnReader.table(batch, 'kids', 'kidOf');
    this.trees = new TreeEntries(batch, impliedLinks);
  }

  /**
   * Sets the meta of the `i`th event of the batch from the columns and `rest`, what the `meta`
   * column holds for it. Throws a ValidationError naming the field (invariant 3). With
   * `measure`, returns the UTF-8 size of the meta's JSON text (0 for none), the fields from the
   * columns counted by what the columns know of them (invariant 5); else 0.
   */
  rebuild(
    i: number,
    record: StoredEventRecord,
    rest: JsonObject | undefined,
    measure = false,
  ): number {
    const path = `events[${i}].meta`;
    const c = this.shape.charCodeAt(i);
    const flags = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 118 ? c - 87 : -1;
    const implied = (flags & IMPLIED) === IMPLIED;
    if (flags < 0 || (implied && !this.impliedLinks)) {
      throw new ValidationError(path, 'has no valid digit in events.shape');
    }
    // Only `rest` can say strict; most events have none (cheaper than isStrictEvent's lookup).
    const strict = rest !== undefined && isStrictEvent({ meta: rest });
    let size = 0;
    if (flags === 0) {
      if (rest !== undefined) {
        record.meta = rest;
        if (measure) size = jsonByteLength(rest);
      }
    } else {
      if (rest !== undefined && twice(flags, rest)) {
        throw new ValidationError(path, 'gives a field both in a column and in meta');
      }
      // Measured before the columns' fields join it (the meta is `rest` itself, unless sealed).
      const restBytes = measure && rest !== undefined ? jsonByteLength(rest) : 0;
      let meta: JsonObject;
      if ((flags & SEALED) !== 0) {
        const kid = this.kids.next(`${path}.${SEALED_META}`);
        // A spread defines each key: an own `__proto__` of `rest` stays data (invariant 3 there).
        meta = rest === undefined ? { [SEALED_META]: kid } : { [SEALED_META]: kid, ...rest };
      } else {
        meta = rest ?? {};
      }
      const entry = (flags & SIG) !== 0 ? this.trees.next(path) : undefined;
      if (entry?.tree !== undefined) {
        if (rest !== undefined && Object.hasOwn(rest, INTEGRITY_META.tree)) {
          throw new ValidationError(path, 'gives a field both in a column and in meta');
        }
        meta[INTEGRITY_META.tree] = entry.tree;
      }
      if ((flags & KEY) !== 0) meta[INTEGRITY_META.key] = this.keys.next(`${path}.$key`);
      if (implied) meta[INTEGRITY_META.link] = this.impliedLink(record, `${path}.$link`);
      else if ((flags & NEAR) !== 0) {
        meta[INTEGRITY_META.link] = this.nearLink(record, `${path}.$link`);
      } else if ((flags & FAR) !== 0) {
        meta[INTEGRITY_META.link] = this.linkTexts.next(`${path}.$link`);
      }
      if (entry !== undefined) {
        if (entry.sameSig && this.lastSig === undefined) {
          throw new ValidationError(`${path}.$sig`, 'repeats a signature, but none comes before');
        }
        const sig = entry.sameSig ? this.lastSig! : this.sigs.next(`${path}.$sig`);
        meta[INTEGRITY_META.sig] = sig;
        this.lastSig = sig;
      }
      record.meta = meta;
      if (measure) size = columnsSize(flags, meta, restBytes, entry?.tree !== undefined);
    }
    if (!strict) {
      this.chained.set(record.replica, record);
      this.chainedAt.set(record.replica, i);
    }
    return size;
  }

  /** Throws when a column held more than the batch's events took. */
  finish(): void {
    for (const c of [this.sigs, this.links, this.linkTexts, this.keys, this.kids]) c.finish();
    this.trees.finish();
  }

  /** Invariant 6: the link to the event before, hashed as it was rebuilt here. */
  private impliedLink(record: StoredEventRecord, path: string): string {
    const previous = this.previousOf(record, path);
    const at = this.chainedAt.get(record.replica)!;
    const digest = this.digests[at] ?? eventDigest(previous);
    this.digests[at] = digest;
    return linkText(previous.seq, digest, previous.id);
  }

  private nearLink(record: StoredEventRecord, path: string): string {
    const previous = this.previousOf(record, path);
    return `${previous.seq.toString(36)}.${this.links.next(path)}.${previous.id}`;
  }

  /** The event a near link names (invariant 2). */
  private previousOf(record: StoredEventRecord, path: string): StoredEventRecord {
    const previous = this.chained.get(record.replica);
    if (previous === undefined) {
      throw new ValidationError(path, 'is near, but no chained event of its replica comes before');
    }
    return previous;
  }
}

/**
 * The UTF-8 size of a rebuilt meta's JSON text (invariant 5): what the `meta` column held
 * (`restBytes`, walked: core/json.ts jsonByteLength; 0 for none), and each column's field as its form says: a `$sig` is 86 base64url
 * characters, a near link's seq and hash are too; key ids, `$key` texts and ids are measured.
 */
function columnsSize(
  flags: number,
  meta: JsonObject,
  restBytes: number,
  /** The `$tree` came from the `trees` column (not counted in restBytes). */
  treeColumn: boolean,
): number {
  // `{}` and rest's entries with their commas; then each column's entry (`"key":value`), each
  // with a comma unless it is the first entry of all. No closure: run from source under tsx, each
  // would be named (Object.defineProperty) at every call.
  const inner = restBytes === 0 ? 0 : restBytes - 2;
  let entries = 0;
  let bytes = 0;
  if ((flags & SEALED) !== 0) {
    bytes += 9 + 1 + jsonStringBytes(meta[SEALED_META] as string);
    entries += 1;
  }
  if (treeColumn) {
    bytes += 7 + 1 + (meta[INTEGRITY_META.tree] as string).length + 2;
    entries += 1;
  }
  if ((flags & KEY) !== 0) {
    bytes += 6 + 1 + jsonStringBytes(meta[INTEGRITY_META.key] as string);
    entries += 1;
  }
  if ((flags & (NEAR | FAR)) !== 0) {
    bytes += 7 + 1 + jsonStringBytes(meta[INTEGRITY_META.link] as string);
    entries += 1;
  }
  if ((flags & SIG) !== 0) {
    bytes += 6 + 1 + SIG_TEXT + 2;
    entries += 1;
  }
  const commas = inner > 0 ? entries : Math.max(entries - 1, 0);
  return inner + bytes + commas + 2;
}

/** Whether `rest` holds a field the event's shape says a column gives. */
function twice(flags: number, rest: JsonObject): boolean {
  return (
    ((flags & SEALED) !== 0 && Object.hasOwn(rest, SEALED_META)) ||
    ((flags & KEY) !== 0 && Object.hasOwn(rest, INTEGRITY_META.key)) ||
    ((flags & (NEAR | FAR)) !== 0 && Object.hasOwn(rest, INTEGRITY_META.link)) ||
    ((flags & SIG) !== 0 && Object.hasOwn(rest, INTEGRITY_META.sig))
  );
}
