/**
 * Tamper evidence (issue 16, part 3): every replica signs its events (Ed25519 through WebCrypto,
 * the same code in a page, a worker and Node) and chains them, so that a receiver refuses an
 * event that a peer or a server altered, dropped from the middle of a chain, reordered, or forged
 * for another replica. What an event carries, in meta (so every storage, the wire and the
 * server's tables carry it unchanged, sealed or not):
 *
 *   $sig:  Ed25519 signature (base64url) of the event's digest, or of the root of the tree of
 *          events signed with it (invariant 9)
 *   $tree: the event's place in that tree and its path to the root (core/sign-trees.ts)
 *   $link: "<seq of the replica's previous chained event, base 36>.<its digest, 16 bytes>"
 *   $key:  "<public key>.<nonce>" (base64url), on a replica's first chained event and on every
 *          strict event: the replica id is derived from it (replicaIdOf)
 *
 * Invariants:
 * 1. The digest is SHA-256 over the canonical JSON of every field of the event but `cursor`
 *    (derived from hlc, replica and seq), `$sig` and `$tree`; so it covers `$link` and `$key`.
 * 2. A replica id made by newReplicaIdentity is derived from a public key and a random nonce: an
 *    event whose `$key` does not derive its replica is forged for another replica. Nobody can
 *    sign for a replica without its private key, and the id binds the key everywhere, even on a
 *    receiver that never saw the replica before.
 * 3. The chain: each of a replica's events that is not strict links to the one before it (by seq
 *    and digest). Strict events are outside the chain, each proven on its own: their authority
 *    (the server) may reject them, which would otherwise cut the chain of an honest replica, and
 *    it may legitimately drop them anyway.
 * 4. A receiver verifies every event's own signature before it stores anything of a batch: a
 *    SHA-256 per event, the hashes of its tree path, and one Ed25519 verification per tree (per
 *    event signed alone). An event whose signature fails, whose key is not its replica's, or
 *    that is unsigned where signatures are required, is refused (Tampering): nothing of the
 *    batch is stored. A link that holds does not stand in for the signature of the event it
 *    names: the digest leaves `$sig` and `$tree` out, so a relay could change them and the link
 *    would still hold; the event would then be held here as nobody can prove it, and refused
 *    by every peer that later takes it without that link.
 * 5. Verification never throws for what a peer sent: a bad event is a Tampering naming it and why.
 * 6. A link that does not meet its event does not refuse the event, whose own signature holds:
 *    an honest replica's chain has holes (a copy that lost to another of its id, an event too
 *    large for a peer), and a refusal would cut an honest chain for ever under a positional sync.
 *    It is a finding (LinkCheck), which the receiver keeps and reports until explained
 *    (sync/chain-watch.ts): that is how a dropped or reordered event is caught. A link to an
 *    event this replica held and trimmed since (a partial replica, docs/storage-growth.md) meets
 *    nothing to hash, and is no finding: that event was verified when it came. Reported as
 *    missing, every next event of a replica whose last one was trimmed here showed as tampered.
 * 7. The erased copy of a StreamKey (core/keyring-events.ts, a crypto-shred) is taken unverified:
 *    the replica that shreds is seldom the one that wrote the key, so no signature can hold for
 *    it. What it can do is take a stream's key away, never show or change content.
 * 8. Every event is signed where it is held: no event is taken without its own `$sig`, though
 *    a later event of the batch links to it. (Covered signatures, which let a server leave such
 *    a `$sig` out, were withdrawn: the store that held the event so could prove it only while
 *    the event covering it stayed, and that one may lose to another copy of its id.)
 * 9. Tree signatures (core/sign-trees.ts): signEvents signs the events of one call in trees of
 *    up to TREE_LEAVES, one Ed25519 signature a tree, each event with its path (`$tree`); a
 *    call of one event signs its digest, as before trees. An event's signature holds when its
 *    path leads from its digest to a root the signature is over (each root verified once,
 *    remembered), so each event is still proven alone: one altered anywhere is refused alone
 *    and its tree's other events still verify. A batch may imply paths (the receiver rebuilds
 *    them from the tree's leaves, all in the batch: VerifyOptions.impliedTrees, sign-trees.ts
 *    invariant 5); a batch that verifies is held with every path written out.
 */
import { BASE64URL_TEXT, decodeBase64Url, encodeBase64Url } from './base64.ts';
import type { JsonObject, JsonValue, StoredEventRecord } from './events.ts';
import { INTEGRITY_META, withoutIntegrity } from './integrity-meta.ts';
import { canonicalJson, canonicalJsonOmitting } from './json.ts';
import { isErasedCopy } from './keyring-events.ts';
import { replicaOfKeyText, type SigningIdentity } from './replica-identity.ts';
import { sha256Text } from './sha256.ts';
import {
  type BatchLeaf,
  pathOf,
  rootFromPath,
  TREE_LEAVES,
  treeMessage,
  treeOfLeaves,
  treePlaceOf,
  treeText,
  wholeTrees,
} from './sign-trees.ts';
import { isStrictEvent } from './strict.ts';

export { INTEGRITY_META, withoutIntegrity } from './integrity-meta.ts';

const DIGEST_DOMAIN = 'chronicle/event/1';
const DIGEST_TEXT = JSON.stringify(DIGEST_DOMAIN);
/** Bytes of a digest a link carries: a forger would need a second preimage of 128 bits. */
const LINK_BYTES = 16;
const ED25519 = { name: 'Ed25519' } as const;

/** WebCrypto operations begun and not yet settled (tests with virtual time wait for them). */
let inFlight = 0;
export function cryptoInFlight(): number {
  return inFlight;
}
function tracked<T>(operation: Promise<T>): Promise<T> {
  inFlight += 1;
  return operation.finally(() => {
    inFlight -= 1;
  });
}

/** Why a receiver refuses an event (invariant 5). */
export type TamperReason =
  /** It carries no signature, where signatures are required or its replica signs. */
  | 'unsigned'
  /** Its signature, link or key is not of the expected form. */
  | 'malformed'
  /** Its `$key` does not derive its replica id (forged for another replica). */
  | 'wrong-key'
  /** Its signature does not verify: its content or its signature was changed. */
  | 'bad-signature'
  /** No key is known for its replica: nothing can verify it. */
  | 'unknown-key'
  /** A chain finding (ChainFinding): the event its link names was never received here. */
  | 'missing-link'
  /** A chain finding: it arrived after an event chained to it (reordered on the way). */
  | 'reordered';

export const TAMPER_REASONS: readonly TamperReason[] = [
  'unsigned',
  'malformed',
  'wrong-key',
  'bad-signature',
  'unknown-key',
  'missing-link',
  'reordered',
];

/** What each reason means, for messages. */
export const TAMPER_TEXT: Record<TamperReason, string> = {
  unsigned: 'it carries no signature',
  malformed: 'its signature, link or key is malformed',
  'wrong-key': 'its key does not belong to its replica (forged for another replica)',
  'bad-signature': 'its signature does not verify (altered)',
  'unknown-key': 'no key is known for its replica',
  'missing-link': "the event before it in its replica's chain never arrived (dropped on the way)",
  reordered: 'it arrived after the event chained to it (reordered on the way)',
};

export interface Tampering {
  event: StoredEventRecord;
  reason: TamperReason;
}

/** What a receiver holds that verification reads (the log, and keys it learned before). */
export interface ChainLookup {
  /** The event held at (replica, seq), if any. */
  eventAt(replica: string, seq: number): Promise<StoredEventRecord | undefined>;
  /** Whether the event at (replica, seq) was held here and trimmed since (invariant 6). */
  trimmedAt?(replica: string, seq: number): Promise<boolean>;
  /** The `$key` text learned for the replica before (self-checking: it derives the id). */
  keyOf(replica: string): Promise<string | undefined>;
}

/**
 * A link that did not meet the event it names (invariant 6): `missing`, nothing is held at that
 * slot (yet); `forked`, another event is (its replica signed two events at one seq: a restored
 * backup or a clone, which core/copies.ts resolves).
 */
export interface LinkCheck {
  event: StoredEventRecord;
  link: ChainLink;
  /** `reordered`: the event it names comes later in the same batch. */
  status: 'missing' | 'forked' | 'reordered';
}

export type BatchVerdict =
  /**
   * `keys`: the `$key` of replicas first seen signing in this batch, for keyOf to remember.
   * `links`: the links that did not meet their event (for sync/chain-watch.ts).
   */
  { ok: true; keys: Map<string, string>; links: LinkCheck[] } | { ok: false; tampering: Tampering };

export interface VerifyOptions {
  /** Refuse every unsigned event (else only those of a replica known to sign). */
  requireSignatures: boolean;
  /** Keys the batch's sender named (EventsMessage.keys): taken where they derive their replica. */
  keys?: { readonly [replica: string]: string };
  /** The batch may imply tree paths (invariant 9): it is asked for again whole if it fails. */
  impliedTrees?: boolean;
}

/** An event as the application sees it: no integrity fields in its meta. */
export function withoutSignature<T extends { meta?: JsonObject | undefined }>(event: T): T {
  const meta = event.meta;
  if (meta === undefined) return event;
  const kept = withoutIntegrity(meta);
  if (kept === meta) return event;
  const out = { ...event };
  if (kept === undefined) delete out.meta;
  else out.meta = kept;
  return out;
}

export function isSigned(event: { meta?: JsonObject | undefined }): boolean {
  return typeof event.meta?.[INTEGRITY_META.sig] === 'string';
}

/** Whether an event is in its replica's chain (invariant 3). */
export function isChained(event: { meta?: JsonObject | undefined }): boolean {
  return !isStrictEvent(event);
}

/** Invariant 1. */
export function eventDigest(event: StoredEventRecord): Uint8Array {
  // The text of canonicalJson([..., data, meta without $sig or null]), built without copying
  // the meta to delete `$sig` from it: that copy was a third of a digest's time, and a receiver
  // takes a digest of every event it verifies.
  const meta =
    event.meta === undefined
      ? undefined
      : canonicalJsonOmitting(event.meta, INTEGRITY_META.sig, INTEGRITY_META.tree);
  const text =
    `[${DIGEST_TEXT},${canonicalJson(event.id)},${canonicalJson(event.replica)},${event.seq},` +
    `${canonicalJson(event.stream)},${canonicalJson(event.type)},${canonicalJson(event.version)},` +
    `${canonicalJson(event.hlc)},${canonicalJson(event.time)},${canonicalJson(event.schema ?? 1)},` +
    `${canonicalJson(event.data)},${meta ?? 'null'}]`;
  return sha256Text(text);
}

/**
 * Digests a decoder took of a batch's events (sync/meta-columns.ts invariant 6: the hash of an
 * implied link), by index, kept by the batch's array for verifyBatch to take instead of hashing
 * those events again. One entry a batch, not one an event: a WeakMap entry an event cost about
 * as much as a tenth of the digest it saved. verifyBatch deletes what it takes.
 */
const decodedDigests = new WeakMap<readonly StoredEventRecord[], (Uint8Array | undefined)[]>();

/** Keeps the digests a decoder took of `events` (by index) for verifyBatch (decodedDigests). */
export function rememberDigests(
  events: readonly StoredEventRecord[],
  digests: (Uint8Array | undefined)[],
): void {
  decodedDigests.set(events, digests);
}

/** `$link`: the previous chained event's seq (base 36), digest (16 bytes) and id. */
export function linkText(seq: number, digest: Uint8Array, id: string): string {
  return `${seq.toString(36)}.${linkHash(digest)}.${id}`;
}

export function linkHash(digest: Uint8Array): string {
  return encodeBase64Url(digest.subarray(0, LINK_BYTES));
}

/** What a `$link` names: the previous event of the chain. */
export interface ChainLink {
  seq: number;
  hash: string;
  id: string;
}

export function parseLink(text: JsonValue | undefined): ChainLink | undefined {
  // By hand rather than by a regular expression: a receiver parses the link of every event.
  if (typeof text !== 'string') return undefined;
  const dot = text.indexOf('.');
  if (dot < 1 || dot > 11 || text.length < dot + 1 + LINK_TEXT + 2) return undefined;
  if (text.charCodeAt(dot + 1 + LINK_TEXT) !== DOT || text.length > dot + LINK_TEXT + 2 + 256) {
    return undefined;
  }
  for (let i = 0; i < dot; i++) if (!isBase36Digit(text.charCodeAt(i))) return undefined;
  const hash = text.slice(dot + 1, dot + 1 + LINK_TEXT);
  if (!BASE64URL_TEXT.test(hash)) return undefined;
  const seq = Number.parseInt(text.slice(0, dot), 36);
  if (!Number.isSafeInteger(seq) || seq < 1) return undefined;
  return { seq, hash, id: text.slice(dot + LINK_TEXT + 2) };
}

/** Characters of a link's hash: LINK_BYTES in base64url. */
const LINK_TEXT = 22;
const DOT = 46;

function isBase36Digit(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 97 && code <= 122);
}

/** The end of a replica's chain, as its signer keeps it. */
export interface ChainHead {
  seq: number;
  id: string;
  digest: Uint8Array;
}

/**
 * Signs a replica's own events, given in seq order: each gets its `$link` (or `$key`, the first
 * of the chain and every strict one) and its `$sig`; events signed together share one signature
 * per TREE_LEAVES of them (invariant 9). Returns the signed copies and the new head.
 */
export async function signEvents(
  events: readonly StoredEventRecord[],
  identity: SigningIdentity,
  head: ChainHead | undefined,
): Promise<{ signed: StoredEventRecord[]; head: ChainHead | undefined }> {
  const signed: StoredEventRecord[] = [];
  const digests: Uint8Array[] = [];
  let at = head;
  for (const event of events) {
    const meta: JsonObject = { ...(withoutIntegrity(event.meta) ?? {}) };
    if (!isChained(event) || at === undefined) meta[INTEGRITY_META.key] = identity.keyText;
    else meta[INTEGRITY_META.link] = linkText(at.seq, at.digest, at.id);
    const unsigned: StoredEventRecord = { ...event, meta };
    const digest = eventDigest(unsigned);
    if (isChained(event)) at = { seq: event.seq, id: event.id, digest };
    signed.push(unsigned);
    digests.push(digest);
  }
  const trees: { from: number; root?: string; paths?: string[][] }[] = [];
  for (let from = 0; from < signed.length; from += TREE_LEAVES) {
    const to = Math.min(from + TREE_LEAVES, signed.length);
    if (to - from === 1) trees.push({ from });
    else trees.push({ from, ...treeOfLeaves(digests.slice(from, to).map(linkHash)) });
  }
  const signatures = await Promise.all(
    trees.map((tree) => {
      const message =
        tree.root === undefined ? digests[tree.from]! : treeMessage(tree.root, tree.paths!.length);
      return tracked(
        crypto.subtle.sign(ED25519, identity.privateKey, message as Uint8Array<ArrayBuffer>),
      );
    }),
  );
  for (let t = 0; t < trees.length; t++) {
    const tree = trees[t]!;
    const sig = encodeBase64Url(new Uint8Array(signatures[t]!));
    const count = tree.paths?.length ?? 1;
    for (let i = 0; i < count; i++) {
      const event = signed[tree.from + i]!;
      event.meta = withTree(
        event.meta!,
        tree.paths === undefined ? undefined : treeText({ index: i, count, path: tree.paths[i]! }),
        sig,
      );
    }
  }
  return { signed, head: at };
}

/**
 * A signed meta in the key order the wire's columns take (sync/meta-columns.ts invariant 1):
 * the app's keys, `$tree`, then `$key` or `$link`, then `$sig`.
 */
function withTree(meta: JsonObject, tree: string | undefined, sig: string): JsonObject {
  const entries: [string, JsonValue][] = [];
  for (const name of Object.keys(meta)) {
    if (name !== INTEGRITY_META.key && name !== INTEGRITY_META.link) {
      entries.push([name, meta[name]!]);
    }
  }
  if (tree !== undefined) entries.push([INTEGRITY_META.tree, tree]);
  const key = meta[INTEGRITY_META.key];
  const link = meta[INTEGRITY_META.link];
  if (key !== undefined) entries.push([INTEGRITY_META.key, key]);
  if (link !== undefined) entries.push([INTEGRITY_META.link, link]);
  entries.push([INTEGRITY_META.sig, sig]);
  // fromEntries defines each key (an app's own `__proto__` stays data).
  return Object.fromEntries(entries) as JsonObject;
}

const publicKeys = new Map<string, Promise<CryptoKey | undefined>>();

/** The verifying key of a `$key` text (cached: a replica keeps one key). */
function publicKeyOf(keyText: string): Promise<CryptoKey | undefined> {
  let key = publicKeys.get(keyText);
  if (key === undefined) {
    const raw = decodeBase64Url(keyText.slice(0, keyText.indexOf('.')));
    key = tracked(crypto.subtle.importKey('raw', raw, ED25519, false, ['verify'])).catch(
      () => undefined,
    );
    if (publicKeys.size > 10_000) publicKeys.clear();
    publicKeys.set(keyText, key);
  }
  return key;
}

/** Verdicts on tree roots (invariant 9), by key, signature, root and leaf count. */
const rootVerdicts = new Map<string, Promise<boolean>>();

/**
 * The tree root verdict taken last: a batch carries a tree's leaves one after another, so most
 * events ask for the root the event before asked for, without building its memo text.
 */
let lastRoot:
  | { keyText: string; sig: string; root: string; count: number; verdict: Promise<boolean> }
  | undefined;

const SIG_FORM = /^[A-Za-z0-9_-]{86}$/;

/**
 * Whether an event's own signature holds (invariant 4): false at once where its form does not;
 * else the verdict on its tree's root (one verification a tree, remembered: invariant 9) or on
 * its digest. Synchronous up to the verification, so that a batch's events that share a tree
 * wait on one promise.
 */
function signatureHolds(
  event: StoredEventRecord,
  digest: Uint8Array,
  keyText: string,
  /** The root of the event's tree, where its path is implied (rebuilt from the batch). */
  impliedRoot?: string,
): boolean | Promise<boolean> {
  const sig = event.meta?.[INTEGRITY_META.sig];
  if (typeof sig !== 'string') return false;
  const last = lastRoot;
  // The same text as a signature that had its form already.
  const sameSig = last !== undefined && sig === last.sig;
  if (!sameSig && !SIG_FORM.test(sig)) return false;
  const treeValue = event.meta?.[INTEGRITY_META.tree];
  if (treeValue === undefined) return verifiesText(keyText, sig, digest);
  const place = treePlaceOf(treeValue);
  if (place === undefined) return false;
  const root = place.implied
    ? impliedRoot
    : rootFromPath(linkHash(digest), { ...place, path: pathOf(treeValue as string) });
  if (root === undefined) return false;
  const count = place.count;
  if (sameSig && root === last.root && keyText === last.keyText && count === last.count) {
    return last.verdict;
  }
  // The leaves of one tree share its root: one verification for all of them, in any batch.
  const memo = `${keyText} ${sig} ${root} ${count}`;
  let verdict = rootVerdicts.get(memo);
  if (verdict === undefined) {
    verdict = verifiesText(keyText, sig, treeMessage(root, count));
    if (rootVerdicts.size > 10_000) rootVerdicts.clear();
    rootVerdicts.set(memo, verdict);
  }
  lastRoot = { keyText, sig, root, count, verdict };
  return verdict;
}

async function verifiesText(keyText: string, sig: string, message: Uint8Array): Promise<boolean> {
  const key = await publicKeyOf(keyText);
  return key !== undefined && verifies(key, sig, message);
}

async function verifies(key: CryptoKey, sig: string, message: Uint8Array): Promise<boolean> {
  try {
    return await tracked(
      crypto.subtle.verify(ED25519, key, decodeBase64Url(sig), message as Uint8Array<ArrayBuffer>),
    );
  } catch {
    return false;
  }
}

/**
 * Invariant 9: the trees whose paths the batch implies, rebuilt from their leaves. `roots` gives
 * each such event's root, `paths` its whole `$tree` text; a tree not whole in the batch (a leaf
 * missing or twice, counts that differ) is malformed, as is an implied path where the batch may
 * not imply any.
 */
function impliedTrees(
  events: readonly StoredEventRecord[],
  allowed: boolean,
  /** linkHash of the digest of the event at an index. */
  leafAt: (index: number) => string,
): { roots: Map<StoredEventRecord, string>; paths: Map<StoredEventRecord, string> } | Tampering {
  const leaves: BatchLeaf<number>[] = [];
  for (let at = 0; at < events.length; at++) {
    const event = events[at]!;
    const text = event.meta?.[INTEGRITY_META.tree];
    if (typeof text !== 'string' || text.length !== 2) continue;
    const sig = event.meta?.[INTEGRITY_META.sig];
    const place = treePlaceOf(text);
    if (!allowed || typeof sig !== 'string' || place === undefined) {
      return { event, reason: 'malformed' };
    }
    // The replica stays in the key so that no tree mixes two replicas' events.
    const tree = `${event.replica} ${sig}`;
    leaves.push({ item: at, tree, index: place.index, count: place.count });
  }
  const { whole, broken } = wholeTrees(leaves);
  if (broken !== undefined) return { event: events[broken]!, reason: 'malformed' };
  const roots = new Map<StoredEventRecord, string>();
  const paths = new Map<StoredEventRecord, string>();
  for (const ordered of whole) {
    const tree = treeOfLeaves(ordered.map((at) => leafAt(at)));
    const count = ordered.length;
    ordered.forEach((at, index) => {
      const event = events[at]!;
      roots.set(event, tree.root);
      paths.set(event, treeText({ index, count, path: tree.paths[index]! }));
    });
  }
  return { roots, paths };
}

/** Values by replica, then seq: no "replica.seq" text built per event (one verify per event). */
type SlotMap<T> = Map<string, Map<number, T>>;

function slotSet<T>(map: SlotMap<T>, replica: string, seq: number, value: T): void {
  let seqs = map.get(replica);
  if (seqs === undefined) {
    seqs = new Map();
    map.set(replica, seqs);
  }
  seqs.set(seq, value);
}

interface Checked {
  event: StoredEventRecord;
  digest: Uint8Array;
  /** Its signature is to be verified (not an erasure, nor an unsigned event taken as it is). */
  signed: boolean;
}

/**
 * Invariant 4: the verdict on one batch, in order. The first tampered event in batch order is
 * named; nothing of the batch is to be stored then. A batch that verifies has its implied tree
 * paths written into its events' metas (invariant 9).
 */
export async function verifyBatch(
  events: readonly StoredEventRecord[],
  lookup: ChainLookup,
  options: VerifyOptions,
): Promise<BatchVerdict> {
  // By replica, once a batch: undefined where none is known (every unsigned event of a batch
  // asks, and a storage lookup each took a seventh of a plain catch-up's server time).
  const keys = new Map<string, string | undefined>();
  const learned = new Map<string, string>();
  const keyFor = async (replica: string): Promise<string | undefined> => {
    if (keys.has(replica)) return keys.get(replica);
    const held = await lookup.keyOf(replica);
    if (held !== undefined && replicaOfKeyText(held) === replica) {
      keys.set(replica, held);
      return held;
    }
    const named = Object.hasOwn(options.keys ?? {}, replica) ? options.keys?.[replica] : undefined;
    if (named === undefined || replicaOfKeyText(named) !== replica) {
      keys.set(replica, undefined);
      return undefined;
    }
    keys.set(replica, named);
    learned.set(replica, named);
    return named;
  };
  const checked: Checked[] = [];
  const links: LinkCheck[] = [];
  /** Every chained slot of the batch, to tell a link to a later event of it (reordered). */
  let batchSlots: SlotMap<true> | undefined;
  const inBatch = (replica: string, seq: number): boolean => {
    if (batchSlots === undefined) {
      batchSlots = new Map();
      for (const e of events) if (isChained(e)) slotSet(batchSlots, e.replica, e.seq, true);
    }
    return batchSlots.get(replica)?.get(seq) === true;
  };
  /** Index in `events` of each chained event seen so far, by replica and seq. */
  const bySlot: SlotMap<number> = new Map();
  const bad = (event: StoredEventRecord, reason: TamperReason): BatchVerdict => ({
    ok: false,
    tampering: { event, reason },
  });
  const digests = decodedDigests.get(events) ?? [];
  decodedDigests.delete(events);
  const digestAt = (at: number): Uint8Array => {
    let digest = digests[at];
    if (digest === undefined) {
      digest = eventDigest(events[at]!);
      digests[at] = digest;
    }
    return digest;
  };
  // A tree's leaf and a link's hash are the same text: made once an event.
  const hashes: (string | undefined)[] = [];
  const hashAt = (at: number): string => {
    let hash = hashes[at];
    if (hash === undefined) {
      hash = linkHash(digestAt(at));
      hashes[at] = hash;
    }
    return hash;
  };
  const implied = impliedTrees(events, options.impliedTrees === true, hashAt);
  if ('reason' in implied) return { ok: false, tampering: implied };

  for (let at = 0; at < events.length; at++) {
    const event = events[at]!;
    const meta = event.meta;
    // Invariant 7: an erasure carries no signature that holds; it only takes a key away.
    if (isErasedCopy(event)) {
      checked.push({ event, digest: digestAt(at), signed: false });
      continue;
    }
    // A `$tree` beside no `$sig` proves nothing and is let be: the event is unsigned, as it
    // would be without.
    const tree = meta?.[INTEGRITY_META.tree];
    if (tree !== undefined && isSigned(event) && treePlaceOf(tree) === undefined) {
      return bad(event, 'malformed');
    }
    if (!isSigned(event)) {
      if (options.requireSignatures || (await keyFor(event.replica)) !== undefined) {
        return bad(event, 'unsigned');
      }
      checked.push({ event, digest: new Uint8Array(0), signed: false });
      continue;
    }
    const digest = digestAt(at);
    const chained = isChained(event);
    const keyText = meta?.[INTEGRITY_META.key];
    const link = meta?.[INTEGRITY_META.link];
    if (keyText !== undefined) {
      if (typeof keyText !== 'string' || link !== undefined) return bad(event, 'malformed');
      const derived = replicaOfKeyText(keyText);
      if (derived === undefined) return bad(event, 'malformed');
      if (derived !== event.replica) return bad(event, 'wrong-key');
      const known = await keyFor(event.replica);
      if (known === undefined) {
        keys.set(event.replica, keyText);
        learned.set(event.replica, keyText);
      }
    } else if (!chained) {
      return bad(event, 'malformed');
    }
    const entry: Checked = { event, digest, signed: true };
    if (chained && link !== undefined) {
      const parsed = parseLink(link);
      if (parsed === undefined || parsed.seq >= event.seq) return bad(event, 'malformed');
      const index = bySlot.get(event.replica)?.get(parsed.seq);
      if (index !== undefined) {
        if (hashAt(index) !== parsed.hash) {
          links.push({ event, link: parsed, status: 'forked' });
        }
      } else if (inBatch(event.replica, parsed.seq)) {
        links.push({ event, link: parsed, status: 'reordered' });
      } else {
        const held = await lookup.eventAt(event.replica, parsed.seq);
        if (held === undefined) {
          if (!(await lookup.trimmedAt?.(event.replica, parsed.seq))) {
            links.push({ event, link: parsed, status: 'missing' });
          }
        } else if (linkHash(eventDigest(held)) !== parsed.hash) {
          links.push({ event, link: parsed, status: 'forked' });
        }
      }
    }
    if (chained) slotSet(bySlot, event.replica, event.seq, at);
    checked.push(entry);
  }

  // Invariant 4: every event's own signature; a tree's root is verified once (signatureHolds).
  const signed = checked.filter((c) => c.signed);
  // keyFor remembers each replica's answer in `keys`, which the verdicts then read at once.
  for (const { event } of signed) if (!keys.has(event.replica)) await keyFor(event.replica);
  const verdicts = await Promise.all(
    signed.map((c) => {
      const keyText = keys.get(c.event.replica);
      if (keyText === undefined) return 'unknown-key' as const;
      return signatureHolds(c.event, c.digest, keyText, implied.roots.get(c.event));
    }),
  );
  const failed = verdicts.findIndex((v) => v !== true);
  if (failed >= 0) {
    const verdict = verdicts[failed];
    return bad(signed[failed]!.event, verdict === 'unknown-key' ? verdict : 'bad-signature');
  }
  // Invariant 9: held with whole paths. In place: the events are the receiver's own decoded
  // copies, and a copy of each would lose what the codec remembers of it (its data's text).
  for (const [event, path] of implied.paths) event.meta![INTEGRITY_META.tree] = path;
  return { ok: true, keys: learned, links };
}
