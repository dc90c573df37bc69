/**
 * The determinism check of a projection (issue 15): fold the log twice from scratch and report the first event after which the two states differ. A projection that reads the
 * clock or a random number, or whose initial() hands out a shared object that apply mutates,
 * fails it; replicas would then disagree on a state computed from the same log.
 *
 * Invariants:
 * 1. Both folds start from their own initial() and see the same events in the same order (the
 *    store's total order, upcast as the store hands them out); nothing is written.
 * 2. States are compared as canonical JSON (object keys sorted): equal states compare equal
 *    whatever order their keys were set in.
 * 3. The answer names the first event (index and id) after which the states differ (-1: the two
 *    initial() states), or says the two folds agree on every prefix.
 */
import { canonicalJson } from '../core/copies.ts';
import type { StoredEvent } from '../core/events.ts';
import type { Projection } from '../core/projection.ts';

export type DeterminismResult =
  | { deterministic: true; events: number }
  | {
      deterministic: false;
      /** Index in the log (0-based) of the first event after which the folds differ; -1: initial(). */
      index: number;
      eventId: string | undefined;
      /**
       * Two states there, as canonical JSON: a fresh fold's (the first fold is only kept as
       * fingerprints; for initial(), the first fold's own) and the second fold's.
       */
      first: string;
      second: string;
    };

/** FNV-1a of a string: a short fingerprint of each state of the first fold. */
function fingerprint(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Folds `events` twice, one fold after the other (so that an initial() handing out one shared
 * object shows: the second fold starts from what the first left in it), and compares the states
 * after every event (invariants 1–3). The first fold's states are kept as fingerprints; the
 * second fold's state where they first differ is compared in full.
 */
export function checkDeterminism(
  projection: Pick<Projection<unknown, unknown>, 'initial' | 'apply'>,
  events: readonly StoredEvent[],
): DeterminismResult {
  let state = projection.initial();
  const initialText = canonicalJson(state);
  const prints = [fingerprint(initialText)];
  for (const event of events) {
    state = projection.apply(state, event);
    prints.push(fingerprint(canonicalJson(state)));
  }
  state = projection.initial();
  for (let i = -1; i < events.length; i++) {
    if (i >= 0) state = projection.apply(state, events[i] as StoredEvent);
    const text = canonicalJson(state);
    if (fingerprint(text) !== prints[i + 1]) {
      return {
        deterministic: false,
        index: i,
        eventId: i >= 0 ? (events[i] as StoredEvent).id : undefined,
        first: i < 0 ? initialText : refold(projection, events, i),
        second: text,
      };
    }
  }
  return { deterministic: true, events: events.length };
}

/** The first fold's state after event `index`, folded again for the report (it differed). */
function refold(
  projection: Pick<Projection<unknown, unknown>, 'initial' | 'apply'>,
  events: readonly StoredEvent[],
  index: number,
): string {
  let state = projection.initial();
  for (let i = 0; i <= index; i++) state = projection.apply(state, events[i] as StoredEvent);
  return canonicalJson(state);
}
