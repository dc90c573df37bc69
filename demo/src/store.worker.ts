/**
 * The demo's worker module, as small as README shows: it imports the projection and the
 * aggregates (reducers and command handlers are code, they cannot cross threads) and serves the
 * store. The page, not the worker, drives the sync connection (sync.ts), because the demo lets
 * the user go offline on purpose. The Doing column's lane is a strict stream (lane.ts). An
 * encrypted board's key is where its page left it (board-link.ts). It keeps what its retain policy
 * says (retention.ts) and reads older history from the server; a new device joins from the
 * server's snapshot of the board.
 */
import { ValidationError } from '../../src/index.ts';
import { serveStore } from '../../worker/index.ts';
import { boardProjection } from './board.ts';
import { isEncryptedBoard, loadBoardKey } from './board-link.ts';
import { lane } from './lane.ts';
import { parseWorkerName } from './retention.ts';

// The database name comes in as the worker's name, so that one build can host several boards,
// with the page's retain knob after it (retention.ts).
const {
  db: name,
  retain,
  join,
} = parseWorkerName((globalThis as unknown as { name?: string }).name || 'chronicle-demo');
/** The key the page left for `board` (board-link.ts), or a clear refusal to open. */
async function boardKey(board: string): Promise<Uint8Array> {
  const key = await loadBoardKey(board);
  if (key !== undefined) return key;
  throw new ValidationError(
    'encryption.key',
    'this board is encrypted: open it with its share link (the key is the part after #)',
  );
}

serveStore({
  name,
  projections: [boardProjection],
  aggregates: [lane],
  strictStreams: ['lane:*'],
  // A bounded device: older events stay on the server, read from there on demand (loaded-log.ts).
  retain,
  // A new device starts from the server's snapshot of the board and the events after it, rather
  // than replaying the whole log (demo/server/app.ts registers the board's projection there).
  join,
  ...(isEncryptedBoard(name) && {
    encryption: {
      key: () => boardKey(name),
      // The board's key is its names secret too (HKDF keeps the two apart): the server sees
      // neither card titles nor stream names nor event types. A demo board never rotates it.
      names: () => boardKey(name),
    },
  }),
});
