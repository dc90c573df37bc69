/**
 * What a session tells of the copies an ingest found losing (core/copies.ts invariant 4): one
 * non-fatal report (the batch was stored; the rule kept one copy).
 *
 * Invariants:
 * 1. A losing copy is told where the app may have seen it: held here (projected, delivered to
 *    subscribers), or appended here. A copy that merely arrived after the winner is not news.
 * 2. A reused (replica, seq) is a faulty or hostile writer: told wherever it is seen.
 * 3. A StreamKey that lost to its erased copy is a shred spreading (core/keyring-events.ts 2),
 *    not a conflict: never told.
 * 4. A trimmed copy that lost (core/trimmed-copies.ts) was held here: always told.
 */
import type { LostCopy } from '../core/copies.ts';
import { isErasure } from '../core/keyring-events.ts';
import type { TrimmedCopyLoss } from '../core/trimmed-copies.ts';
import type { SessionError } from './session-types.ts';

/** The report of an ingest's losing copies, or undefined when none is news here. */
export function lostCopyReport(
  lost: readonly LostCopy[],
  replicaId: string,
  lostTrimmed: readonly TrimmedCopyLoss[] = [],
): SessionError | undefined {
  const told = lost.filter(
    (l) => !isErasure(l) && (l.held || l.event.replica === replicaId || l.code === 'SEQ_CONFLICT'),
  );
  const first = told[0];
  if (first === undefined) {
    // Invariant 4: a trimmed copy that lost was held here, projected and perhaps shown.
    const trimmed = lostTrimmed[0];
    if (trimmed === undefined) return undefined;
    return {
      code: trimmed.code,
      message: trimmedMessage(trimmed, lostTrimmed.length),
      fatal: false,
      source: 'local',
      eventId: trimmed.id,
    };
  }
  const more = lostTrimmed.length;
  return {
    code: first.code,
    message: lostMessage(first, told.length + more),
    fatal: false,
    source: 'local',
    eventId: first.event.id,
  };
}

function trimmedMessage(lost: TrimmedCopyLoss, count: number): string {
  const what =
    lost.code === 'ID_CONFLICT'
      ? `a copy of event "${lost.id}" that sorts first in the total order arrived after this device trimmed its own copy`
      : `event "${lost.keptId}" reuses the (replica, seq) of the trimmed event "${lost.id}" and sorts first in the total order`;
  return `${what}: the trimmed copy was replaced${count > 1 ? ` (and ${count - 1} more)` : ''}`;
}

function lostMessage(lost: LostCopy, count: number): string {
  const what =
    lost.code === 'ID_CONFLICT'
      ? `two different copies of event "${lost.event.id}" met; the copy kept is the one first in the total order`
      : `event "${lost.event.id}" reuses the (replica, seq) of event "${lost.keptId}"; the one first in the total order is kept`;
  const where = lost.held ? 'the copy held here was replaced' : 'the copy received was not stored';
  return `${what}: ${where}${count > 1 ? ` (and ${count - 1} more)` : ''}`;
}
