import type { AppendUnitOutcome } from '../core/append-group.ts';
import type { LocalAppendResult } from './adapter.ts';

/**
 * appendLocal as a group of one unit of one stream (adapter.ts): that unit's outcome, its
 * error thrown as appendLocal always threw it.
 */
export function onlyOutcome(outcomes: readonly AppendUnitOutcome[]): LocalAppendResult {
  const outcome = outcomes[0];
  if (outcome === undefined) throw new Error('a group of one unit planned no outcome');
  if (outcome.kind === 'rejected') throw outcome.error;
  const part = outcome.streams[0];
  if (part === undefined) throw new Error('a unit of one stream planned no outcome');
  return part;
}
