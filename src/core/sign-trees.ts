/**
 * Tree signatures (issue 16, part 3): one Ed25519 signature for up to TREE_LEAVES events signed
 * together, with each event still proven alone. The events' digests are the leaves of a Merkle
 * tree; the replica signs its root, and each event carries that signature (`$sig`, the same for
 * every leaf) and its own path to the root (`$tree`). Pure: no I/O, no WebCrypto.
 *
 *   $tree: "<leaf index, hex><leaf count - 1, hex><path>", the path the hashes of the
 *          sibling subtrees from the leaf up, 22 base64url characters (16 bytes) each;
 *          "<index><count - 1>" alone is the _implied_ form: the path is left out because the
 *          batch holds every leaf of the tree (invariant 5).
 *
 * Invariants:
 * 1. Why a tree and not a signature per run of linked events: an event altered on a server
 *    makes only itself fail. Its siblings' paths hold the hash of the subtree it is in as the
 *    signer made it, so each still reaches the signed root. Signed runs (one signature covering
 *    a run through its links) lose every event before the altered one, which nothing proves
 *    then: honest events lost.
 * 2. The shape is RFC 6962's: a tree of n > 1 leaves splits at the largest power of two below
 *    n. A path has at most 4 hashes (n <= 16), one leaf's own.
 * 3. A leaf is the first 16 bytes of an event's digest (integrity.ts eventDigest, a link's hash);
 *    an inner node the first 16 bytes of SHA-256 over a domain text and its two children; the
 *    message signed is the SHA-256 of a domain text, the leaf count and the root: never an event
 *    digest, whose text starts with another domain. 16 bytes: a forger needs a second preimage of
 *    128 bits, as for a link.
 * 4. The digest of an event leaves `$tree` out, as it leaves `$sig` out: both are written after
 *    it, and copies that differ only in them are one copy (core/copies.ts).
 * 5. Implied paths: a sender may leave an event's path out when every leaf of its tree travels in
 *    the same batch with its `$sig` (sync/meta-columns.ts). The receiver rebuilds the tree from
 *    those leaves (treeOfLeaves), verifies its root once (core/integrity.ts invariant 4: every
 *    event's own signature), and stores each event with its whole path, so that it can prove
 *    every event alone later (invariant 1).
 */
import { encodeBase64Url } from './base64.ts';
import { sha256Text } from './sha256.ts';

/** The most events one signature covers. */
export const TREE_LEAVES = 16;
/** Characters of one hash of a path: 16 bytes in base64url. */
const HASH_TEXT = 22;
const NODE_DOMAIN = 'chronicle/tree-node/1';
const ROOT_DOMAIN = JSON.stringify('chronicle/tree/1');

/** A leaf's place in its tree, and its path (undefined: implied, invariant 5). */
export interface TreePlace {
  index: number;
  count: number;
  path?: string[];
}

function hash16(text: string): string {
  return encodeBase64Url(sha256Text(text).subarray(0, 16));
}

function node(left: string, right: string): string {
  return hash16(`${NODE_DOMAIN} ${left}${right}`);
}

/** Invariant 3: the 32 bytes that are signed for a tree of `count` leaves with this root. */
export function treeMessage(root: string, count: number): Uint8Array {
  return sha256Text(`[${ROOT_DOMAIN},${count},"${root}"]`);
}

/** The largest power of two below n (n > 1). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The roots of a tree's subtrees, each hashed once (a path takes one from each level). */
class Subtrees {
  private readonly roots = new Map<number, string>();
  private readonly leaves: readonly string[];

  constructor(leaves: readonly string[]) {
    this.leaves = leaves;
  }

  rootOf(lo: number, hi: number): string {
    if (hi - lo === 1) return this.leaves[lo]!;
    const key = lo * 32 + hi;
    let root = this.roots.get(key);
    if (root === undefined) {
      const k = split(hi - lo);
      root = node(this.rootOf(lo, lo + k), this.rootOf(lo + k, hi));
      this.roots.set(key, root);
    }
    return root;
  }

  pathOf(i: number, lo: number, hi: number): string[] {
    if (hi - lo === 1) return [];
    const k = split(hi - lo);
    if (i < lo + k) return [...this.pathOf(i, lo, lo + k), this.rootOf(lo + k, hi)];
    return [...this.pathOf(i, lo + k, hi), this.rootOf(lo, lo + k)];
  }
}

/** The root of a tree over `leaves` (1 to TREE_LEAVES of them) and each leaf's path. */
export function treeOfLeaves(leaves: readonly string[]): { root: string; paths: string[][] } {
  if (leaves.length < 1 || leaves.length > TREE_LEAVES) {
    throw new RangeError(`a tree holds 1 to ${TREE_LEAVES} leaves, not ${leaves.length}`);
  }
  const tree = new Subtrees(leaves);
  return {
    root: tree.rootOf(0, leaves.length),
    paths: leaves.map((_, i) => tree.pathOf(i, 0, leaves.length)),
  };
}

/** Whether each level of a leaf's path, from the leaf up, has the sibling on the right. */
function sides(index: number, count: number): boolean[] {
  const top: boolean[] = [];
  let i = index;
  let n = count;
  while (n > 1) {
    const k = split(n);
    if (i < k) {
      top.push(true);
      n = k;
    } else {
      top.push(false);
      i -= k;
      n -= k;
    }
  }
  return top.reverse();
}

/** The hashes a leaf's path holds. */
export function pathLength(place: TreePlace): number {
  return PATH_LENGTHS[place.count]![place.index]!;
}

/** The root a leaf's path leads to (a place parseTree gave: its path has the length it needs). */
export function rootFromPath(leaf: string, place: TreePlace & { path: string[] }): string {
  const levels = sides(place.index, place.count);
  let at = leaf;
  for (let l = 0; l < levels.length; l++) {
    at = levels[l] ? node(at, place.path[l]!) : node(place.path[l]!, at);
  }
  return at;
}

/** The `$tree` text of a place (invariant 5: without a path, the implied form). */
export function treeText(place: TreePlace): string {
  const head = place.index.toString(16) + (place.count - 1).toString(16);
  return place.path === undefined ? head : head + place.path.join('');
}

/** Hashes of a path, by leaf index and count (invariant 2): PATH_LENGTHS[count][index]. */
const PATH_LENGTHS: readonly (readonly number[])[] = Array.from(
  { length: TREE_LEAVES + 1 },
  (_, n) => Array.from({ length: n }, (_, i) => sides(i, n).length),
);

function hexDigit(code: number): number {
  return code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 102 ? code - 87 : -1;
}

/**
 * The place a `$tree` text gives, or undefined when it is not of the form: read in place, with
 * no path split out (every signed event a receiver takes goes through it). `implied`: the text
 * has no path. The path's characters are not checked: a path that is not base64url leads to
 * another root, and its signature fails.
 */
export function treePlaceOf(
  text: unknown,
): { index: number; count: number; implied: boolean } | undefined {
  if (typeof text !== 'string' || text.length < 2) return undefined;
  const index = hexDigit(text.charCodeAt(0));
  const count = hexDigit(text.charCodeAt(1)) + 1;
  if (index < 0 || count < 2 || index >= count) return undefined;
  if (text.length === 2) return { index, count, implied: true };
  if (text.length !== 2 + PATH_LENGTHS[count]![index]! * HASH_TEXT) return undefined;
  return { index, count, implied: false };
}

/** A leaf as a batch carries it: the tree it belongs to, and its place there. */
export interface BatchLeaf<T> {
  item: T;
  /** What the leaves of one tree share: their `$sig`, with their replica where that matters. */
  tree: string;
  index: number;
  count: number;
}

/**
 * Invariant 5: the trees of a batch that it holds whole, each as its items by index (every
 * index from 0 to count - 1 once, every leaf naming the same count), and the first leaf that
 * breaks another tree (a count that differs, or an index held twice), if any.
 */
export function wholeTrees<T>(leaves: readonly BatchLeaf<T>[]): { whole: T[][]; broken?: T } {
  const trees = new Map<string, BatchLeaf<T>[]>();
  for (const leaf of leaves) {
    const tree = trees.get(leaf.tree);
    if (tree === undefined) trees.set(leaf.tree, [leaf]);
    else tree.push(leaf);
  }
  const whole: T[][] = [];
  let broken: T | undefined;
  for (const tree of trees.values()) {
    const ordered: T[] = [];
    // A count equal to the leaves held, with no index twice, leaves no index out.
    const breaking = tree.find((leaf) => {
      if (leaf.count !== tree.length || leaf.index in ordered) return true;
      ordered[leaf.index] = leaf.item;
      return false;
    });
    if (breaking === undefined) whole.push(ordered);
    else broken ??= breaking.item;
  }
  return broken === undefined ? { whole } : { whole, broken };
}

/** A `$tree` text read back, or undefined when it is not of that form. */
export function parseTree(text: unknown): TreePlace | undefined {
  const place = treePlaceOf(text);
  if (place === undefined) return undefined;
  const { index, count } = place;
  if (place.implied) return { index, count };
  if (!/^[A-Za-z0-9_-]*$/.test(text as string)) return undefined;
  return { index, count, path: pathOf(text as string) };
}

/**
 * The hashes of a `$tree` text's path, its characters unchecked (a place treePlaceOf read: a
 * path not in base64url leads to another root, and its signature fails).
 */
export function pathOf(text: string): string[] {
  const path: string[] = [];
  for (let at = 2; at < text.length; at += HASH_TEXT) path.push(text.slice(at, at + HASH_TEXT));
  return path;
}
