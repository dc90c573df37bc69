/**
 * How the SQLite server storage's writes reach the database: grouped, and run either by a writer
 * thread with a connection of its own (sqlite-writer-thread.ts; a database file) or on the event
 * loop (an in-memory database, or when the thread cannot run). Both run the same SqliteWrites.
 *
 * Invariants:
 * 1. Group commit: the pieces handed over while no group runs (within a turn of the event loop,
 *    or while the previous group ran) go to the database as ONE group, one transaction, one
 *    fsync (sqlite-writes.ts invariant 1). At most one group runs at a time, and groups run in
 *    the order their pieces were handed over.
 * 2. No piece resolves before its group committed. Each piece's `committed` hook runs on the event
 *    loop after that commit, in order, before any piece of the group resolves: the storage
 *    updates its caches and listeners there.
 * 3. A piece that fails is rejected alone; a group whose commit fails rejects all its pieces.
 * 4. If the thread fails to start, the writes run on the event loop instead, from the first piece
 *    on. If it dies later, the pieces of the group it was running are rejected (their commit is
 *    unknown; a client resends, and ids dedupe), and the later ones run on the event loop.
 * 5. drain() resolves once every piece handed over before it has settled; close() drains, then
 *    ends the thread and waits for it.
 */
import type { Worker } from 'node:worker_threads';
import type { StorageError } from '../core/errors.ts';
import { startModuleThread } from './module-thread.ts';
import type { ResultOf, WriteOutcome, WritePiece } from './sqlite-writes.ts';

/** Messages to the writer thread. */
export type WriterRequest = { kind: 'group'; id: number; pieces: WritePiece[] } | { kind: 'close' };

/** Messages from the writer thread. */
export type WriterReply =
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  | { kind: 'done'; id: number; outcomes: WriteOutcome[] };

/** Runs one group and gives its outcomes, one per piece (the thread, or the event loop). */
export type GroupRunner = (pieces: WritePiece[]) => Promise<WriteOutcome[]> | WriteOutcome[];

interface Pending {
  piece: WritePiece;
  committed: ((result: never) => void) | undefined;
  resolve: (result: never) => void;
  reject: (error: unknown) => void;
}

export class SqliteWriter {
  private queue: Pending[] = [];
  private running = false;
  private scheduled = false;
  private drains: (() => void)[] = [];
  private thread: WriterThread | undefined;
  /** Where the writes run now: 'thread' or 'event loop' (for logs and tests). */
  where: 'thread' | 'event loop' = 'event loop';

  /**
   * @param inline runs a group on the event loop (invariant 4)
   * @param thread the database file for a writer thread, and the thread's module (tests give
   *   their own); undefined: no thread
   * @param failure turns an outcome's failure into what the piece rejects with
   */
  constructor(
    private readonly inline: GroupRunner,
    thread: { path: string; entry?: URL } | undefined,
    private readonly failure: (operation: string, message: string) => StorageError,
  ) {
    if (thread === undefined) return;
    try {
      this.thread = new WriterThread(
        thread.path,
        thread.entry ?? new URL('./sqlite-writer-thread.ts', import.meta.url),
        () => this.threadLost(),
      );
      this.where = 'thread';
    } catch {
      // No thread could be made (tsx missing, say): the event loop writes (invariant 4).
    }
  }

  /** Runs `piece` in a coming group (invariants 1, 2). */
  run<K extends WritePiece['kind']>(
    piece: WritePiece & { kind: K },
    committed?: (result: ResultOf<K>) => void,
  ): Promise<ResultOf<K>> {
    return new Promise<ResultOf<K>>((resolve, reject) => {
      this.queue.push({
        piece,
        committed: committed as ((result: never) => void) | undefined,
        resolve: resolve as (result: never) => void,
        reject,
      });
      this.schedule();
    });
  }

  /** Invariant 5: settles once everything handed over so far has. */
  drain(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drains.push(resolve));
  }

  async close(): Promise<void> {
    await this.drain();
    const thread = this.thread;
    this.thread = undefined;
    await thread?.close();
  }

  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    // The rest of this turn's pieces join the group (invariant 1).
    setImmediate(() => {
      this.scheduled = false;
      void this.runNext();
    });
  }

  private async runNext(): Promise<void> {
    if (this.running) return;
    const group = this.queue;
    if (group.length === 0) {
      this.settleDrains();
      return;
    }
    this.queue = [];
    this.running = true;
    const pieces = group.map((p) => p.piece);
    const outcomes = await this.execute(pieces);
    // Invariant 2: every hook first, then every promise.
    for (let i = 0; i < group.length; i++) {
      const outcome = outcomes[i];
      if (outcome?.ok) group[i]!.committed?.(outcome.result as never);
    }
    for (let i = 0; i < group.length; i++) {
      const { piece, resolve, reject } = group[i]!;
      const outcome = outcomes[i];
      if (outcome?.ok) resolve(outcome.result as never);
      else reject(this.failure(piece.kind, outcome?.message ?? 'no outcome'));
    }
    this.running = false;
    if (this.queue.length > 0) this.schedule();
    else this.settleDrains();
  }

  private async execute(pieces: WritePiece[]): Promise<WriteOutcome[]> {
    try {
      const thread = this.thread;
      if (thread !== undefined) {
        try {
          return await thread.runGroup(pieces);
        } catch (error) {
          // Never started: nothing ran there, the event loop runs the group (invariant 4).
          if (!(error instanceof ThreadNeverRan)) throw error;
        }
      }
      return await this.inline(pieces);
    } catch (error) {
      // The thread died with this group (invariant 4): its commit is unknown.
      const message = error instanceof Error ? error.message : String(error);
      return pieces.map(() => ({ ok: false, message, code: undefined }));
    }
  }

  private settleDrains(): void {
    const drains = this.drains;
    this.drains = [];
    for (const resolve of drains) resolve();
  }

  /** Invariant 4: the thread is gone; the event loop writes from now on. */
  private threadLost(): void {
    this.thread = undefined;
    this.where = 'event loop';
  }
}

/** The writer thread as the writer sees it: groups in, outcomes out, one group at a time. */
class WriterThread {
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  private nextId = 1;
  private current:
    | { id: number; resolve: (o: WriteOutcome[]) => void; reject: (e: Error) => void }
    | undefined;
  private closing = false;
  private lost = false;

  constructor(
    path: string,
    entry: URL,
    private readonly onLost: () => void,
  ) {
    this.worker = startModuleThread(entry, { path });
    // Referenced only while a group runs or close() waits: an idle writer keeps no process alive,
    // a pending write does.
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.on('message', (reply: WriterReply) => {
        if (reply.kind === 'ready') resolve();
        else if (reply.kind === 'failed') reject(new Error(reply.message));
        else if (reply.id === this.current?.id) {
          const current = this.current;
          this.current = undefined;
          current.resolve(reply.outcomes);
        }
      });
      this.worker.on('error', (error) => {
        reject(error);
        this.lose(error);
      });
      this.worker.on('exit', () => {
        const error = new Error('the sqlite writer thread exited');
        reject(error);
        if (!this.closing) this.lose(error);
      });
    });
    // Nothing waits on `ready` before the first write: its failure must not go unhandled.
    this.ready.catch(() => {});
  }

  async runGroup(pieces: WritePiece[]): Promise<WriteOutcome[]> {
    this.worker.ref();
    try {
      try {
        await this.ready;
      } catch {
        // Invariant 4: it never started, so nothing of this group ran there.
        this.lose(new Error('the sqlite writer thread did not start'));
        throw new ThreadNeverRan();
      }
      return await new Promise<WriteOutcome[]>((resolve, reject) => {
        const id = this.nextId++;
        this.current = { id, resolve, reject };
        const request: WriterRequest = { kind: 'group', id, pieces };
        this.worker.postMessage(request);
      });
    } finally {
      this.worker.unref();
    }
  }

  async close(): Promise<void> {
    if (this.lost) return;
    this.closing = true;
    await new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      this.worker.ref();
      const request: WriterRequest = { kind: 'close' };
      this.worker.postMessage(request);
    });
  }

  private lose(error: unknown): void {
    if (this.lost) return;
    this.lost = true;
    const current = this.current;
    this.current = undefined;
    current?.reject(error instanceof Error ? error : new Error(String(error)));
    this.onLost();
  }
}

/** The thread never ran a group: the writer runs it on the event loop instead. */
class ThreadNeverRan extends Error {}
