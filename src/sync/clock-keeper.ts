/**
 * The client side of the clock design (controller.ts invariants 8 and 9): the shared mark and
 * the re-stamp of own events that no peer holds, kept from crossing each other.
 *
 * Invariants:
 * 1. Per peer, the share (meta `sync.sharedSeq`: { peer replica: seq }) is durable before any
 *    own event up to it is handed to a transport toward that peer (session-sender.ts invariant
 *    11). The mark is the largest share: every own event a peer may hold is at or below it.
 * 2. A peer's share goes down only on its clock refusal of our own event of seq s: it holds none
 *    of our events from s on (its clock only moves forward, so it refused them before too, and
 *    later own events are stamped later still), so its share becomes at most s - 1.
 * 3. Re-stamps and share changes run one at a time. A raise asked with a generation older than
 *    the last re-stamp that moved something is refused: the sender read the log before that
 *    re-stamp and reads it again. So an event is never both handed over and re-stamped.
 * 4. Only events above the mark are ever re-stamped (core/restamp.ts invariant 1).
 */
import type { JsonValue } from '../core/events.ts';
import { clockCorrection } from '../core/sync.ts';
import type { StoreInternals } from '../store/internal.ts';
import type { ShareGuard } from './session-types.ts';

export const SHARED_SEQ_META_KEY = 'sync.sharedSeq';
/** The share of a mark written as one number (no peer named). */
const ANY_PEER = '*';

export interface ClockKeeper {
  /** A guard for one session (session-types.ts ShareGuard). */
  guard(): ShareGuard;
  /**
   * Moves this replica's clock to a server's (`serverTime`: its hello's time, or what its clock
   * refusal shows; undefined: no server) when it differs by more than the threshold (always
   * when `force`: a refusal is proof ours is off), then re-stamps the own unshared events that
   * shows were stamped ahead (controller.ts invariants 4 and 8).
   */
  followServer(serverTime: number | undefined, force?: boolean): Promise<void>;
}

function parseShares(value: JsonValue | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (typeof value === 'number' && Number.isSafeInteger(value)) out.set(ANY_PEER, value);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [peer, seq] of Object.entries(value)) {
      if (typeof seq === 'number' && Number.isSafeInteger(seq)) out.set(peer, seq);
    }
  }
  return out;
}

export function clockKeeper(
  internals: StoreInternals,
  options: { thresholdMs: number },
): ClockKeeper {
  let clockOffset = 0;
  let queue: Promise<unknown> = Promise.resolve();
  let restamps = 0;
  const listeners = new Set<() => void>();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  };
  // Read each time: another tab may have led sync since (the durable shares are the truth).
  const load = async () => parseShares(await internals.log.getMeta(SHARED_SEQ_META_KEY));
  const save = async (shares: Map<string, number>) => {
    const value: { [peer: string]: JsonValue } = {};
    for (const [peer, seq] of shares) value[peer] = seq;
    await internals.log.setMeta(SHARED_SEQ_META_KEY, value);
  };
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  const keeper: ClockKeeper = {
    guard(): ShareGuard {
      /** What this session already made durable, to skip writes (invariant 1). */
      const known = new Map<string, number>();
      return {
        generation: () => restamps,
        share: (peer, seq, generation) =>
          serial(async () => {
            if (generation !== restamps) return false;
            if ((known.get(peer) ?? 0) >= seq) return true;
            const shares = await load();
            if ((shares.get(peer) ?? 0) < seq) {
              shares.set(peer, seq);
              await save(shares);
            }
            known.set(peer, seq);
            return true;
          }),
        refusedForClock: (peer, seq) =>
          serial(async () => {
            const shares = await load();
            const share = shares.get(peer);
            known.set(peer, Math.min(known.get(peer) ?? 0, seq - 1));
            if (share === undefined || share < seq) return;
            shares.set(peer, seq - 1);
            await save(shares);
          }),
        onClockChange(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        clockOffset: () => clockOffset,
      };
    },
    followServer(serverTime, force = false) {
      let shift: number | undefined;
      if (serverTime !== undefined) {
        const threshold = force ? 0 : options.thresholdMs;
        const offset = clockCorrection(serverTime, internals.now(), clockOffset, threshold);
        if (offset !== undefined) {
          shift = offset - clockOffset;
          clockOffset = offset;
          internals.setClockOffset(offset);
        }
      }
      return restampUnshared(shift);
    },
  };
  return keeper;

  function restampUnshared(shift: number | undefined): Promise<void> {
    return serial(async () => {
      try {
        if (internals.restamp === undefined) return;
        const mark = Math.max(0, ...(await load()).values());
        const request: { sharedSeq: number; shift?: number } = { sharedSeq: mark };
        if (shift !== undefined) request.shift = shift;
        const result = await internals.restamp(request);
        if (result.changed.length > 0) restamps += 1;
      } finally {
        // After every re-stamp pass (and the correction before it): senders look again.
        notify();
      }
    });
  }
}
