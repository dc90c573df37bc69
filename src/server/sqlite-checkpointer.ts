/**
 * WAL checkpoints of the SQLite server storage (sqlite.ts), on a thread of their own. A checkpoint
 * copies committed pages from the WAL into the database file and fsyncs it; run by the writing
 * connection (SQLite's automatic checkpoint, every 1,000 pages), that work sat inside the commit
 * of every few ingests: measured, 100 of the server's 660 ms of commits in a 2 × 50,000-event
 * catch-up, on the event loop that also parses, validates and forwards.
 *
 * Invariants:
 * 1. Durability does not depend on checkpoints: a commit is durable once the WAL is fsynced
 *    (sqlite.ts invariant 1). A checkpoint only moves pages already durable.
 * 2. Checkpoints here are PASSIVE, on a connection of their own: they never wait for or block the
 *    writer or readers, so a slow disk cannot stall the event loop through them.
 * 3. The writer still checkpoints by itself once the WAL passes WRITER_CHECKPOINT_PAGES: the WAL
 *    stays bounded if this thread falls behind, dies, or cannot start (then the writer goes back
 *    to SQLite's default of 1,000 pages).
 * 4. Requests coalesce: at most one checkpoint runs at a time, and one more runs after the last
 *    commit that asked for one.
 * 5. The thread does not keep an idle process alive (unref), except while close() waits for it to
 *    end, which it does before the storage's own connection closes.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The writer's own automatic checkpoint threshold while this thread runs (invariant 3). */
export const WRITER_CHECKPOINT_PAGES = 16_384;
/** SQLite's default, for the writer when the thread is gone. */
const SQLITE_DEFAULT_CHECKPOINT_PAGES = 1_000;

/**
 * The thread's code: CommonJS, plain JavaScript, evaluated (`eval: true`) so that it loads the
 * same way under tsx, vitest and a bundler, none of which a worker file in TypeScript would.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  let error;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  parentPort.postMessage({ done: true, error });
});
`;

export class SqliteCheckpointer {
  private readonly worker: Worker | undefined;
  private running = false;
  private again = false;
  private closed = false;
  private failed = false;
  /** Settles when a checkpoint requested so far has run (for tests): see idle(). */
  private waiters: (() => void)[] = [];
  /** The last error a checkpoint reported, if any (kept for diagnostics; never thrown). */
  lastError: string | undefined;

  private readonly setWriterThreshold: (pages: number) => void;

  /**
   * @param path the database file (not `:memory:`: there is no WAL to checkpoint there)
   * @param setWriterThreshold sets the writer connection's `wal_autocheckpoint` (invariant 3)
   */
  constructor(path: string, setWriterThreshold: (pages: number) => void) {
    this.setWriterThreshold = setWriterThreshold;
    try {
      const driver = createRequire(import.meta.url).resolve('better-sqlite3');
      this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { driver, path } });
      this.worker.unref();
      this.worker.on('message', (message: { done?: boolean; error?: string }) => {
        if (message.done !== true) return;
        if (message.error !== undefined) this.lastError = message.error;
        this.running = false;
        if (this.again) this.request();
        else this.settle();
      });
      this.worker.on('error', (error) => this.fail(error));
      this.worker.on('exit', () => {
        if (!this.closed) this.fail(new Error('the checkpoint thread exited'));
      });
      setWriterThreshold(WRITER_CHECKPOINT_PAGES);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Asks for a checkpoint after a commit (invariant 4). */
  request(): void {
    if (this.closed || this.failed || this.worker === undefined) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.again = false;
    this.running = true;
    this.worker.postMessage('checkpoint');
  }

  /** Resolves once no checkpoint is running or asked for. */
  idle(): Promise<void> {
    if (!this.running || this.worker === undefined) return Promise.resolve();
    const worker = this.worker;
    worker.ref();
    return new Promise((resolve) =>
      this.waiters.push(() => {
        worker.unref();
        resolve();
      }),
    );
  }

  /** Ends the thread and waits for it (invariant 5). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    if (worker === undefined || this.failed) return this.settle();
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      // Referenced while it winds down: a process with nothing else to do must wait for it, not
      // exit with this promise unsettled.
      worker.ref();
      worker.postMessage('close');
    });
    this.settle();
  }

  /** Invariant 3: the writer checkpoints as SQLite does by default again. */
  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.running = false;
    this.lastError = error instanceof Error ? error.message : String(error);
    if (!this.closed) {
      try {
        this.setWriterThreshold(SQLITE_DEFAULT_CHECKPOINT_PAGES);
      } catch {
        // The writer is closed already: nothing left to checkpoint.
      }
    }
    this.settle();
  }

  private settle(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
