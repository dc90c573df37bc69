/**
 * Copies that meet a trimmed event (storage/adapter.ts invariant 6): the types, pure. A partial
 * replica keeps no body of a trimmed event, only a trace: its id and cursor. The server
 * acknowledged the event before it was trimmed, but a rival copy may reach the server after that
 * and win there by the copies' rule (one id appended offline on two devices, the one stamped
 * first arriving last): the server replaces its copy and sends the winner on. Skipping every
 * event a trace holds left such a replica folding the loser for good while its history reads
 * showed the winner. core/copies.ts resolveCopies weighs a trace as a held copy without a body:
 *
 * Invariants:
 * 1. An incoming event with a trace's id and cursor is the trimmed event again: skipped, and not
 *    news (as a repeat of a held event is not).
 * 2. Otherwise the cursors decide, as copies.ts invariant 1 does. An incoming copy that beats
 *    every rival it meets (traces, held records, earlier events of its batch) takes a losing
 *    trace's place: the log drops the trace (`evict`), as it takes a held loser out, and stores
 *    the event as any other, a late event below the horizon whose rebase (copies.ts invariant 2:
 *    from before the winner) reads the rest through history. Each dropped trace is reported
 *    (TrimmedCopyLoss): never a silent drop (copies.ts invariant 4).
 * 3. An incoming copy that sorts after a trace loses: skipped, reported as a LostCopy not held.
 * 4. Equal cursors under two ids: the bodies that would break the tie are gone; the trimmed one
 *    is kept (the server ruled when it acknowledged it).
 * 5. A trace whose cursor the log cannot tell (an IndexedDB husk written before husks kept where
 *    their custom ids sit: core/husks.ts invariant 5) keeps the old rule: whatever meets it is
 *    held, skipped and not reported.
 */
import type { TrimmedCopyLoss } from './copies.ts';

// The types live in copies.ts, which weighs the traces: imported from here by the storages.
export type { TrimmedCopyLoss, TrimmedTrace } from './copies.ts';

/** The trimmed losses of several ingests, as a result's field (absent when none). */
export function lostTrimmedOf(
  ...results: readonly { lostTrimmed?: readonly TrimmedCopyLoss[] }[]
): { lostTrimmed?: TrimmedCopyLoss[] } {
  const all = results.flatMap((r) => r.lostTrimmed ?? []);
  return all.length > 0 ? { lostTrimmed: all } : {};
}
