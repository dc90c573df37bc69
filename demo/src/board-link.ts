/**
 * Encrypted boards, shared by link. A board made with "New encrypted board" has its own space on
 * the sync server and its own key; its link carries the key in the fragment:
 *
 *   https://host/?board=<id>#key=<key text>
 *
 * Browsers never send a fragment to a server, so the server sees the board id (its space) and
 * ciphertext, never the key. The page keeps the key in this origin's IndexedDB (the worker reads
 * it there: a worker cannot see the page's URL), so a reload without the fragment still opens it.
 *
 * Invariants:
 * 1. The default board (no `board` parameter) is not encrypted and uses the demo's space.
 * 2. A board id is 16 characters of [a-z0-9]: its database is `board-<id>`, its space the same
 *    (the demo server mints tokens only for such names, demo/server/app.ts).
 */
import {
  decodeEncryptionKey,
  encodeEncryptionKey,
  generateEncryptionKey,
} from '../../src/index.ts';

const KEYS_DB = 'chronicle-demo-keys';
const BOARD_ID = /^[a-z0-9]{16}$/;

export interface BoardLink {
  /** The local database, and the space on the server for an encrypted board. */
  db: string;
  /** The server's space; undefined for the demo's own. */
  space?: string;
  /** The key from the link's fragment, when the link carried one. */
  key?: Uint8Array<ArrayBuffer>;
}

export const isEncryptedBoard = (db: string): boolean =>
  db.startsWith('board-') && BOARD_ID.test(db.slice(6));

/** What the page's URL names (invariant 1); `?db=` picks another local database of the demo. */
export function boardOf(location: Location): BoardLink {
  const params = new URLSearchParams(location.search);
  const board = params.get('board');
  if (board === null || !BOARD_ID.test(board)) {
    return { db: params.get('db') ?? 'chronicle-demo' };
  }
  const db = `board-${board}`;
  const text = new URLSearchParams(location.hash.slice(1)).get('key');
  if (text === null) return { db, space: db };
  return { db, space: db, key: decodeEncryptionKey(text) };
}

/** A link to a new encrypted board: a fresh id and a fresh key. */
export function newBoardLink(origin: string): string {
  const id = [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36])
    .join('');
  return `${origin}/?board=${id}#key=${encodeEncryptionKey(generateEncryptionKey())}`;
}

/** The link that opens board `db` on another device, key included. */
export async function shareLink(origin: string, db: string): Promise<string | undefined> {
  const key = await loadBoardKey(db);
  if (key === undefined) return undefined;
  return `${origin}/?board=${db.slice(6)}#key=${encodeEncryptionKey(key)}`;
}

function keysDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(KEYS_DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore('keys');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function inKeys<T>(
  mode: IDBTransactionMode,
  run: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const db = await keysDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = run(db.transaction('keys', mode).objectStore('keys'));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

export async function saveBoardKey(db: string, key: Uint8Array<ArrayBuffer>): Promise<void> {
  await inKeys('readwrite', (store) => store.put(key, db));
}

export async function loadBoardKey(db: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const key = await inKeys<unknown>('readonly', (store) => store.get(db));
  return key instanceof Uint8Array ? (key as Uint8Array<ArrayBuffer>) : undefined;
}
