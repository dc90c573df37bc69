/**
 * The SQLite server storage's writer thread (started by sqlite-writer.ts): its own connection to
 * the database file, running the groups of writes it is sent (sqlite-writes.ts) one after the
 * other, so that inserting, committing and fsyncing never block the event loop that parses,
 * validates and forwards.
 *
 * Messages in: { kind: 'group', id, pieces } and { kind: 'close' }. Messages out: { kind: 'ready' }
 * once the connection is open, { kind: 'done', id, outcomes } after each group's commit, and
 * { kind: 'failed', message } if the connection cannot open (the thread then ends).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { WRITER_CHECKPOINT_PAGES } from './sqlite-checkpointer.ts';
import type { WriterReply, WriterRequest } from './sqlite-writer.ts';
import { SqliteWrites } from './sqlite-writes.ts';

const port = parentPort;
if (port === null) throw new Error('sqlite-writer-thread.ts runs only as a worker thread');
const post = (reply: WriterReply) => port.postMessage(reply);

let db: Database.Database | undefined;
let writes: SqliteWrites | undefined;
try {
  db = new Database((workerData as { path: string }).path, { fileMustExist: true });
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // Another process (a backup, a second server) may hold the write lock for a moment: waiting
  // here blocks only this thread.
  db.pragma('busy_timeout = 5000');
  // Checkpoints run on their own thread (sqlite-checkpointer.ts); this is the bound if they stop.
  db.pragma(`wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES}`);
  writes = new SqliteWrites(db);
  post({ kind: 'ready' });
} catch (error) {
  db?.close();
  post({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
  port.close();
}

port.on('message', (request: WriterRequest) => {
  if (writes === undefined || db === undefined) return;
  if (request.kind === 'close') {
    db.close();
    port.close();
    return;
  }
  post({ kind: 'done', id: request.id, outcomes: writes.runGroup(request.pieces) });
});
