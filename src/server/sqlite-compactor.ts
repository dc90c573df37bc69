/**
 * When the SQLite server storage seals its logs into blocks (sqlite-blocks.ts; issue 18): in the
 * background, off the hot path. better-sqlite3 is synchronous, so every step runs on the event
 * loop; the steps are small and wait for the server to be idle.
 *
 * Invariants:
 * 1. A step seals one block (BLOCK_EVENTS events, a few milliseconds) in one transaction, then
 *    yields (setImmediate): sockets and ingests run between steps.
 * 2. Steps start `idleMs` after the last commit; a commit meanwhile stops the run and re-arms the
 *    wait. A server never idle that long still compacts: once a wait has lasted `maxDelayMs`,
 *    steps run between commits until nothing is left, so the tail stays bounded under load.
 * 3. Only whole blocks (event-blocks.ts BLOCK_EVENTS) are sealed in the background, of positions at least `tailEvents` below the
 *    head: appends and live tailing touch rows only. `compact()` (runAll) also seals a last
 *    partial block, and `eager` (tests) runs it after every commit.
 * 4. A failing step (another process holding the write lock past busy_timeout, a full disk)
 *    drops its space until the space's next commit: it never fails an ingest, nor loops.
 * 5. After sealing, free pages beyond RESERVE_PAGES are given back to the file system a few at a
 *    step (incremental vacuum, on files made by this version); the reserve is what the tail's
 *    next rows reuse.
 */
import type Database from 'better-sqlite3';
import type { CompactionOptions } from './compaction-options.ts';
import type { BlockStore } from './sqlite-blocks.ts';
import type { Statements } from './sqlite-schema.ts';
import type { CompactionReport } from './storage.ts';

/** What the compactor drives: the storage's sealing and vacuum steps. */
export interface CompactionWork {
  spaces(): string[];
  /** Seals one block of `space` (partial: a short one too); events sealed, 0 when none. */
  seal(space: string, tailEvents: number, partial: boolean): number;
  /** Frees up to `pages` pages beyond `reserve` (invariant 5); how many remain to free. */
  vacuum(reserve: number, pages: number): number;
}

const RESERVE_PAGES = 2048;
const VACUUM_STEP_PAGES = 256;

export class SqliteCompactor {
  private readonly work: CompactionWork;
  private readonly tailEvents: number;
  private readonly idleMs: number;
  private readonly maxDelayMs: number;
  private readonly eager: boolean;
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stepping = false;
  private commits = 0;
  /** When the current wait for quiet began (invariant 2). */
  private waitingSince: number | undefined;
  private closed = false;

  constructor(work: CompactionWork, options: CompactionOptions) {
    this.work = work;
    this.tailEvents = Math.max(0, Math.floor(options.tailEvents ?? 8192));
    this.idleMs = options.idleMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.eager = options.eager ?? false;
    // A file from before blocks (or a run cut short) is compacted once the server is quiet.
    for (const space of work.spaces()) this.dirty.add(space);
    if (this.dirty.size > 0 && !this.eager) this.arm();
  }

  /** An ingest into `space` is about to commit. */
  touch(space: string): void {
    this.dirty.add(space);
  }

  /** A group of ingests committed (invariant 2). */
  afterCommit(): void {
    if (this.closed) return;
    if (this.eager) {
      try {
        this.runAll(true, false);
      } catch {
        // Invariant 4: the commit stands; the next one tries again.
      }
      return;
    }
    this.commits += 1;
    if (!this.stepping) this.arm();
  }

  /** Seals everything past the tails now (invariant 3); `vacuum`: then frees every free page. */
  runAll(partial: boolean, vacuum: boolean): CompactionReport {
    const report: CompactionReport = { blocks: 0, events: 0 };
    for (const space of new Set([...this.dirty, ...this.work.spaces()])) {
      this.dirty.delete(space);
      for (;;) {
        const sealed = this.work.seal(space, this.tailEvents, partial);
        if (sealed === 0) break;
        report.blocks += 1;
        report.events += sealed;
      }
    }
    if (vacuum) while (this.work.vacuum(0, 1 << 20) > 0);
    return report;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private arm(): void {
    const now = Date.now();
    this.waitingSince ??= now;
    if (now - this.waitingSince >= this.maxDelayMs) {
      this.start();
      return;
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.start();
      }, this.idleMs);
      this.timer.unref();
    } else {
      this.timer.refresh();
    }
  }

  private start(): void {
    if (this.stepping || this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.stepping = true;
    const commits = this.commits;
    const step = (): void => {
      if (this.closed) return;
      const busy = this.commits !== commits;
      if (busy && Date.now() - this.waitingSince! < this.maxDelayMs) {
        this.stepping = false;
        this.arm();
        return;
      }
      if (!this.stepOnce()) {
        this.stepping = false;
        this.waitingSince = undefined;
        return;
      }
      setImmediate(step);
    };
    setImmediate(step);
  }

  /** One block, or one vacuum chunk; false when there is nothing left to do. */
  private stepOnce(): boolean {
    for (const space of this.dirty) {
      const sealed = this.safely(space, () => this.work.seal(space, this.tailEvents, false));
      if (sealed > 0) return true;
      this.dirty.delete(space);
    }
    try {
      return this.work.vacuum(RESERVE_PAGES, VACUUM_STEP_PAGES) > 0;
    } catch {
      return false;
    }
  }

  /** Invariant 4. */
  private safely(space: string, seal: () => number): number {
    try {
      return seal();
    } catch {
      this.dirty.delete(space);
      return 0;
    }
  }
}

/** The compactor's steps on this database (sqlite-compactor.ts), each its own transaction. */
export function sqliteCompactionWork(
  db: Database.Database,
  st: Statements,
  blocks: BlockStore,
): CompactionWork {
  const sealTx = db.transaction((space: string, tail: number, partial: boolean) => {
    const row = st.getSpace.get(space);
    if (row === undefined || row.head - tail <= 0) return 0;
    return blocks.seal(space, row.sid, row.head - tail, partial);
  });
  const incremental = db.pragma('auto_vacuum', { simple: true }) === 2;
  return {
    spaces: () => st.listSpaces.all().map((row) => row.space),
    seal(space, tail, partial) {
      // As a checkpoint (invariant 5): a power cut can only undo a seal whole, which loses nothing.
      st.syncNormal.run();
      try {
        return sealTx.immediate(space, tail, partial);
      } finally {
        st.syncFull.run();
      }
    },
    vacuum(reserve, pages) {
      if (!incremental) return 0;
      const free = db.pragma('freelist_count', { simple: true }) as number;
      if (free <= reserve) return 0;
      const now = Math.min(pages, free - reserve);
      st.syncNormal.run();
      try {
        db.pragma(`incremental_vacuum(${now})`);
      } finally {
        st.syncFull.run();
      }
      return free - reserve - now;
    },
  };
}
