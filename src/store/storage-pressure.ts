/**
 * Quota pressure on a partial replica (docs/storage-growth.md part 2): when the browser refuses
 * a local write for its quota, or reports the origin's storage nearly full, the store runs a
 * retention pass out of turn and tells the app (store.on('storage', …)).
 *
 * Invariants:
 * 1. A pass under pressure trims only what a regular one may (store/retention.ts 1-5,
 *    core/retention.ts 1-2): never an unsynced event, never more than the policy lets go.
 * 2. A write refused with QUOTA_EXCEEDED wrote nothing (append-queue.ts 3), so it is retried
 *    once, and only when the pass freed something. Otherwise the original QuotaExceededError
 *    reaches the caller. Either way the app is told once, after the outcome is known.
 * 3. The estimate is read after a write at most once per ESTIMATE_EVERY_MS of the store's clock,
 *    never two at once, and only with a retain policy and navigator.storage.estimate(): a pass
 *    runs when usage is above ESTIMATE_THRESHOLD of the quota.
 * 4. A listener that throws is reported, never breaks the write or the other listeners.
 */
import { ChronicleError } from '../core/errors.ts';
import type { RetentionOutcome } from './retention.ts';
import type { StorageNotice } from './types.ts';

/** The share of the quota above which a pass runs (invariant 3). */
export const ESTIMATE_THRESHOLD = 0.9;
/** At most one estimate per this many ms of the store's clock (invariant 3). */
export const ESTIMATE_EVERY_MS = 30_000;

type Estimate = () => Promise<{ usage?: number; quota?: number }>;

/** navigator.storage.estimate where the platform has it (browsers, their workers). */
function platformEstimate(): Estimate | undefined {
  const storage = (globalThis as { navigator?: { storage?: { estimate?: Estimate } } }).navigator
    ?.storage;
  if (typeof storage?.estimate !== 'function') return undefined;
  return () => storage.estimate!();
}

export function isQuotaError(error: unknown): boolean {
  return error instanceof ChronicleError && error.code === 'QUOTA_EXCEEDED';
}

export class StoragePressure {
  private readonly listeners = new Set<(notice: StorageNotice) => void>();
  private lastEstimate = Number.NEGATIVE_INFINITY;
  private estimating = false;

  private readonly pass: () => Promise<RetentionOutcome>;
  private readonly retains: boolean;
  private readonly now: () => number;
  private readonly report: (error: unknown) => void;

  /** `pass`: a retention pass that starts now (Retainer.passAfterRunning). */
  constructor(
    pass: () => Promise<RetentionOutcome>,
    retains: boolean,
    now: () => number,
    report: (error: unknown) => void,
  ) {
    this.pass = pass;
    this.retains = retains;
    this.now = now;
    this.report = report;
  }

  on(listener: (notice: StorageNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs a local write; on QUOTA_EXCEEDED, a pass, then the write once more (invariant 2). */
  async write<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!isQuotaError(error)) throw error;
      const trimmed = await this.freed();
      if (trimmed === 0) {
        this.tell({ reason: 'quota', trimmed, retried: false, ok: false });
        throw error;
      }
      try {
        const result = await run();
        this.tell({ reason: 'quota', trimmed, retried: true, ok: true });
        return result;
      } catch (again) {
        this.tell({ reason: 'quota', trimmed, retried: true, ok: false });
        throw again;
      }
    }
  }

  /** After a write: reads the estimate when due, and runs a pass above the threshold. */
  wrote(): void {
    if (!this.retains || this.estimating) return;
    const now = this.now();
    if (now - this.lastEstimate < ESTIMATE_EVERY_MS) return;
    const estimate = platformEstimate();
    if (estimate === undefined) return;
    this.lastEstimate = now;
    this.estimating = true;
    void this.checkEstimate(estimate)
      .catch(this.report)
      .finally(() => {
        this.estimating = false;
      });
  }

  private async checkEstimate(estimate: Estimate): Promise<void> {
    const { usage, quota } = await estimate();
    if (usage === undefined || quota === undefined || quota <= 0) return;
    if (usage <= quota * ESTIMATE_THRESHOLD) return;
    let ok = true;
    let trimmed = 0;
    try {
      trimmed = (await this.pass()).trimmed;
    } catch {
      ok = false;
    }
    this.tell({ reason: 'estimate', trimmed, retried: false, ok, usage, quota });
  }

  /** Events the pass trimmed; a pass that fails (store/retention.ts 4) freed nothing. */
  private async freed(): Promise<number> {
    if (!this.retains) return 0;
    try {
      return (await this.pass()).trimmed;
    } catch {
      return 0;
    }
  }

  private tell(notice: StorageNotice): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(notice);
      } catch (error) {
        this.report(error);
      }
    }
  }
}
