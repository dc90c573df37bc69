/**
 * The compactor of postgresStorage (issue 18): moves each space's rows older than its hot tail
 * into blocks (postgres-blocks.ts), in the background, one block per step and per transaction.
 *
 * Invariants:
 * 1. Crash-safe: a step deletes its rows and inserts their block in ONE transaction, so a server
 *    killed at any point leaves each event either in its row or in its block, never both or
 *    neither.
 * 2. One compactor per space at a time across the servers of a database: a step first takes a
 *    transaction-level advisory lock named after the schema and the space (a background step
 *    that cannot have it at once skips the space: another server is at it). The rows are read
 *    and encoded, then DELETEd by range: the DELETE must remove every one of them, or the step
 *    rolls back and tries again (a held copy that lost left meanwhile: an ingest that deletes a
 *    row the step deletes too waits for it on the row, and then finds the event in its block).
 * 3. Off the hot path: a step runs only when the storage's group commit is idle, a short while
 *    after an append of the space, and one step at a time, and gives way (rolls back, to come
 *    back later) when an ingest arrived while it encoded; only a space that waited `maxDelayMs`
 *    for a quiet moment is compacted between commits. It takes no lock an ingest takes (an
 *    ingest deleting a held copy that lost waits for a step deleting the same row, rarely), and
 *    it commits without waiting for the WAL flush.
 * 4. A step seals only the lowest rows, up to BLOCK_EVENTS, at positions at least `tailEvents`
 *    below the head, and only a full block of them (any number with `eager`) (postgres-blocks.ts
 *    12).
 */
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { LocalRecord } from '../core/events.ts';
import type { PostgresCompactionOptions } from './compaction-options.ts';
import { BLOCK_EVENTS, encodeBlock } from './event-blocks.ts';
import { insertBlock } from './postgres-blocks.ts';
import { eventOfRow } from './postgres-rows.ts';
import { inTransaction } from './postgres-schema.ts';
import type { CompactionReport } from './storage.ts';

/** What the compactor needs from its storage (postgres.ts). */
export interface CompactorHost {
  readonly schema: string;
  run<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T>;
  /** Whether no ingest waits or commits (invariant 3). */
  idle(): boolean;
  /** Every space of the database, keyed (postgres-rows.ts). */
  spaceKeys(): Promise<string[]>;
}

/** The advisory lock key of a space's compactor (invariant 2), a signed 64-bit decimal. */
export function compactLockKey(schema: string, space: string): string {
  const digest = createHash('sha256').update(`chronicle-compact\0${schema}\0${space}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** 'busy': the step gave way to an ingest (invariant 3); the space stays to be compacted. */
type StepResult = { sealed: number } | 'locked' | 'retry' | 'busy';

/** Thrown inside a step's transaction to roll it back and try again (invariant 2). */
const RETRY = new Error('compaction step raced: retry');
/** Thrown inside a step's transaction to roll it back and give way to an ingest (invariant 3). */
const YIELD = new Error('compaction step gave way');

export class PostgresCompactor {
  private readonly host: CompactorHost;
  private readonly tail: number;
  private readonly minEvents: number;
  private readonly idleMs: number;
  private readonly maxDelayMs: number;
  /** Since when a step has waited for the storage to be idle (invariant 3). */
  private waitingSince: number | undefined;
  /** Spaces (keyed) appended to since their last step found nothing to seal. */
  private readonly dirty = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(host: CompactorHost, options: PostgresCompactionOptions) {
    this.host = host;
    this.tail = Math.max(0, Math.floor(options.tailEvents ?? 1024));
    this.minEvents = options.eager === true ? 1 : BLOCK_EVENTS;
    this.idleMs = Math.max(0, options.idleMs ?? 200);
    this.maxDelayMs = Math.max(0, options.maxDelayMs ?? 5000);
  }

  /**
   * An append (or an open) of `space`, whose head is now `head`: look at it once idle
   * (invariant 3), unless it is too short to have anything to seal (no statement at all then).
   */
  touch(space: string, head: number): void {
    if (this.stopped || head - this.tail < this.minEvents) return;
    this.dirty.add(space);
    this.schedule(this.idleMs);
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined || this.running !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick()
        .catch(() => false)
        .then((again) => {
          this.running = undefined;
          if (this.dirty.size > 0) this.schedule(again ? 0 : this.idleMs);
        });
    }, ms);
    this.timer.unref?.();
  }

  /**
   * One step for one dirty space, when the storage is idle (invariant 3); true when more may
   * wait there (the next step follows at once).
   */
  private async tick(): Promise<boolean> {
    const now = Date.now();
    const forced = this.waitingSince !== undefined && now - this.waitingSince >= this.maxDelayMs;
    if (!forced && !this.host.idle()) {
      this.waitingSince ??= now;
      return false;
    }
    const space = this.dirty.values().next().value;
    if (space === undefined) return false;
    let result: StepResult;
    try {
      result = await this.step(space, false, forced);
      if (result === 'busy') this.waitingSince ??= now;
      else this.waitingSince = undefined;
    } catch {
      // The database is away or the storage closing: the space's next append tries again.
      this.dirty.delete(space);
      return false;
    }
    if (result === 'retry') return true;
    if (result === 'busy') return false;
    // Taken to the back of the queue, so that spaces take turns.
    this.dirty.delete(space);
    // 'locked': another server compacts it; 0: nothing left. Until the next append, either way.
    if (result === 'locked' || result.sealed === 0) return false;
    this.dirty.add(space);
    return true;
  }

  /** Seals every space down to its tail (ServerStorage.compact), waiting for other compactors. */
  async compactAll(): Promise<CompactionReport> {
    const report: CompactionReport = { blocks: 0, events: 0 };
    for (const space of await this.host.spaceKeys()) {
      for (;;) {
        const result = await this.step(space, true, true);
        if (result === 'retry' || result === 'busy') continue;
        if (result === 'locked' || result.sealed === 0) break;
        report.blocks += 1;
        report.events += result.sealed;
      }
    }
    return report;
  }

  /** One block of `space`, in one transaction (invariants 1, 2, 4). */
  private step(space: string, wait: boolean, forced: boolean): Promise<StepResult> {
    return this.host.run('compact', async (c) => {
      try {
        return await inTransaction(c, () => this.stepIn(c, space, wait, forced));
      } catch (error) {
        if (error === RETRY) return 'retry';
        if (error === YIELD) return 'busy';
        throw error;
      }
    });
  }

  private async stepIn(
    c: PoolClient,
    space: string,
    wait: boolean,
    forced: boolean,
  ): Promise<StepResult> {
    const s = this.host.schema;
    const lock = compactLockKey(s, space);
    if (wait) {
      await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [lock]);
    } else {
      const got = await c.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_xact_lock($1::bigint) AS locked',
        [lock],
      );
      if (got.rows[0]?.locked !== true) return 'locked';
    }
    // From the last block on: below it are only the index entries of rows sealed already, which
    // stay until VACUUM and which a scan from the space's start would walk through every step.
    const bounds = await c.query<{ head: string; sealed: string | null }>(
      `SELECT head, (SELECT max(last_pos) FROM ${s}.event_blocks WHERE space = $1) AS sealed
       FROM ${s}.spaces WHERE space = $1`,
      [space],
    );
    const head = Number(bounds.rows[0]?.head ?? 0);
    const sealed = Number(bounds.rows[0]?.sealed ?? 0);
    const rows = await c.query<{ pos: string; body: string }>(
      `SELECT pos, body FROM ${s}.events WHERE space = $1 AND pos > $2 AND pos <= $3
       ORDER BY pos LIMIT $4`,
      [space, sealed, head - this.tail, BLOCK_EVENTS],
    );
    if (rows.rows.length < this.minEvents) return { sealed: 0 };
    const records: LocalRecord[] = rows.rows.map((row) => ({
      pos: Number(row.pos),
      event: eventOfRow(row),
    }));
    const bytes = encodeBlock(records);
    // Invariant 3: an ingest that arrived meanwhile goes first. No lock of the space is taken:
    // an ingest looks in the rows first and then in the blocks, and moves go that way only
    // (postgres-blocks.ts 14), so it never waits for a step.
    if (!forced && !this.host.idle()) throw YIELD;
    // Invariant 1 holds without waiting for the WAL flush: a step lost in a crash left its rows
    // as they were, and any later commit (an ingest's) flushes it first.
    await c.query('SET LOCAL synchronous_commit = off');
    // Every row from the last block to the block's end: exactly those read, unless one left.
    const deleted = await c.query(
      `DELETE FROM ${s}.events WHERE space = $1 AND pos > $2 AND pos <= $3`,
      [space, sealed, records[records.length - 1]!.pos],
    );
    // Rolled back by inTransaction: a row left meanwhile (invariant 2).
    if (deleted.rowCount !== records.length) throw RETRY;
    await insertBlock(c, s, space, records, bytes);
    return { sealed: records.length };
  }

  /** Stops scheduling and waits for the step out, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }
}
