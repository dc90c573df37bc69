/**
 * When the SQLite server storage seals its logs into blocks (sqlite-blocks.ts; issue 18): in the
 * background, off the hot path. better-sqlite3 is synchronous, so every step runs on the event
 * loop; the steps are small and wait for the server to be idle.
 *
 * Invariants:
 * 1. A step seals one block (BLOCK_EVENTS events, a few milliseconds) in one transaction, then
 *    yields (setImmediate): sockets and ingests run between steps.
 * 2. Steps start `idleMs` after the last commit or read; a commit or a read meanwhile stops the
 *    run and re-arms the wait: clients catching up are never served between seals. A server
 *    never idle that long still compacts: once a wait has lasted `maxDelayMs`, steps run between
 *    commits, sealing BACKLOG_DRAIN times the events committed since (their credit), each step
 *    followed by a pause so that steps take at most LOAD_SHARE of the time. Sealing an event costs
 *    about a third of ingesting it (13 against 35 µs in the catch-up benchmark), so the tail stays
 *    bounded under load and shrinks, without a burst that starves the traffic (a backlog of
 *    `maxDelayMs` of ingest, sealed back to back, held a 2 × 50k catch-up up for a second).
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
/** Invariant 2: events sealed under load per event committed. */
const BACKLOG_DRAIN = 1.25;
/** Invariant 2: the share of the time steps take under load, at most. */
const LOAD_SHARE = 1 / 3;
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
  private reads = 0;
  /** Events committed that the next commit's credit counts (invariant 2). */
  private touched = 0;
  /** Events the steps under load may still seal (invariant 2). */
  private credit = 0;
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

  /** An ingest of `events` into `space` is about to commit. */
  touch(space: string, events = 0): void {
    this.dirty.add(space);
    this.touched += events;
  }

  /** A read served a client (invariant 2): the server is not idle. */
  noteRead(): void {
    if (this.closed || this.eager) return;
    this.reads += 1;
    if (!this.stepping && this.timer !== undefined) this.timer.refresh();
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
    // Invariant 2: what is committed past the longest wait is sealed alongside.
    if (this.forced()) this.credit += this.touched * BACKLOG_DRAIN;
    this.touched = 0;
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

  /** Whether the current wait for quiet has lasted maxDelayMs (invariant 2). */
  private forced(): boolean {
    return this.waitingSince !== undefined && Date.now() - this.waitingSince >= this.maxDelayMs;
  }

  private arm(): void {
    this.waitingSince ??= Date.now();
    if (this.forced() && this.credit > 0) {
      this.start(true);
      return;
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.start(false);
      }, this.idleMs);
      this.timer.unref();
    } else {
      this.timer.refresh();
    }
  }

  /** A run of steps: `underLoad`, of the credit's events only (invariant 2); else until busy. */
  private start(underLoad: boolean): void {
    if (this.stepping || this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.stepping = true;
    const commits = this.commits;
    const reads = this.reads;
    const step = (): void => {
      if (this.closed) return;
      // Invariant 2: under traffic, only past the longest wait, and only the credit's events.
      const busy = this.commits !== commits || this.reads !== reads;
      if (underLoad ? this.credit <= 0 : busy) {
        this.stepping = false;
        this.arm();
        return;
      }
      const began = performance.now();
      const done = this.stepOnce();
      if (done === false) {
        this.stepping = false;
        this.credit = 0;
        // Quiet: the wait is over. Under traffic it goes on (past maxDelayMs, the next commits
        // are sealed along as they come).
        if (!busy) this.waitingSince = undefined;
        return;
      }
      // Below zero after a whole block past the credit: the next commits make up for it.
      this.credit -= done;
      // Invariant 2: under load, a step in every LOAD_SHARE of the time at most.
      if (underLoad) setTimeout(step, (performance.now() - began) * (1 / LOAD_SHARE - 1));
      else setImmediate(step);
    };
    setImmediate(step);
  }

  /** One block, or one vacuum chunk: the events sealed; false when nothing is left to do. */
  private stepOnce(): number | false {
    for (const space of this.dirty) {
      const sealed = this.safely(space, () => this.work.seal(space, this.tailEvents, false));
      if (sealed > 0) return sealed;
      this.dirty.delete(space);
    }
    try {
      return this.work.vacuum(RESERVE_PAGES, VACUUM_STEP_PAGES) > 0 ? 0 : false;
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
