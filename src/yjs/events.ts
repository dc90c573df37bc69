/**
 * The events a Yjs document is stored as, and what a snapshot covers. Pure: no store, no Yjs.
 *
 * A document's stream holds two event types:
 * - `yjs.update`   { update: base64 }  one Yjs update (or several local ones merged);
 * - `yjs.snapshot` { state: base64, covers: { [replica]: seq }, updates: n }  the merged state of
 *   the document and the update events it includes.
 *
 * Invariants:
 * 1. A snapshot's `covers[r] = n` promises that its state includes every update event of
 *    replica r with seq <= n. The binding derives covers only from update events it has applied
 *    (or produced), in the order the store delivered them; so it relies on the store holding
 *    each replica's events as a seq prefix (sync streams a log in order and forwards the same
 *    way, design "Sync protocol"). Including more than covers claims is harmless: applying a
 *    Yjs update twice changes nothing.
 * 2. An update event that a snapshot does not cover is applied on top of it, wherever it sits
 *    in the total order: a late update ordered before the snapshot is not lost.
 * 3. Every event that was covered by a snapshot sorts before it in the total order: the
 *    snapshotting replica had seen those events, and its HLC exceeds every HLC it has seen.
 * 4. Malformed events (from a buggy or hostile peer) are reported and skipped, never thrown
 *    into the application's editor.
 */

import { decodeBase64 } from '../core/base64.ts';
import { ValidationError } from '../core/errors.ts';
import type { StoredEvent } from '../core/events.ts';
import { foldable } from '../core/sealing.ts';

export const UPDATE_TYPE = 'yjs.update';
export const SNAPSHOT_TYPE = 'yjs.snapshot';
/** Both types: what the Yjs readers ask the store for. */
export const YJS_TYPES = [UPDATE_TYPE, SNAPSHOT_TYPE];

export interface YUpdateData {
  update: string;
}

export type Covers = Record<string, number>;

export interface YSnapshotData {
  state: string;
  covers: Covers;
  /** How many update events the state includes (informational). */
  updates: number;
}

export type YEvent =
  | { kind: 'update'; event: StoredEvent; update: Uint8Array }
  | { kind: 'snapshot'; event: StoredEvent; state: Uint8Array; covers: Covers };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseCovers(value: unknown): Covers | undefined {
  if (!isRecord(value)) return undefined;
  const covers: Covers = {};
  for (const [replica, seq] of Object.entries(value)) {
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
    covers[replica] = seq;
  }
  return covers;
}

function decode(event: StoredEvent, field: string, text: string): Uint8Array {
  try {
    return decodeBase64(text);
  } catch {
    throw new ValidationError(`event ${event.id}: data.${field}`, 'must be base64');
  }
}

/**
 * Decodes a stream event. Returns undefined for other event types (a stream may carry the
 * application's own events beside the document) and for events whose content is gone or sealed
 * (core/sealing.ts foldable); throws a ValidationError for a malformed Yjs
 * event (invariant 4: callers report it and go on).
 */
export function parseYEvent(event: StoredEvent): YEvent | undefined {
  // An encrypted event this replica cannot open, or one of a shredded stream, holds no update.
  if (!foldable(event)) return undefined;
  const data: unknown = event.data;
  switch (event.type) {
    case UPDATE_TYPE: {
      if (!isRecord(data) || typeof data.update !== 'string') {
        throw new ValidationError(`event ${event.id}: data.update`, 'must be a base64 string');
      }
      return { kind: 'update', event, update: decode(event, 'update', data.update) };
    }
    case SNAPSHOT_TYPE: {
      const covers = isRecord(data) ? parseCovers(data.covers) : undefined;
      if (!isRecord(data) || typeof data.state !== 'string' || covers === undefined) {
        throw new ValidationError(
          `event ${event.id}: data`,
          'a snapshot needs state (base64) and covers ({ replica: seq })',
        );
      }
      return { kind: 'snapshot', event, state: decode(event, 'state', data.state), covers };
    }
    default:
      return undefined;
  }
}

/**
 * The base64 text a Yjs event carries: an update's `update`, a snapshot's `state`; undefined for
 * other events and malformed ones. bindYDoc recognises its own events by it (bind.ts invariant 3).
 */
export function payloadOf(event: Pick<StoredEvent, 'type' | 'data'>): string | undefined {
  if (event.type !== UPDATE_TYPE && event.type !== SNAPSHOT_TYPE) return undefined;
  const data: unknown = event.data;
  if (!isRecord(data)) return undefined;
  const text = event.type === UPDATE_TYPE ? data.update : data.state;
  return typeof text === 'string' ? text : undefined;
}

/** Whether `covers` promises that the update event is already in the snapshot (invariant 1). */
export function isCovered(event: Pick<StoredEvent, 'replica' | 'seq'>, covers: Covers): boolean {
  const seq = covers[event.replica];
  return seq !== undefined && event.seq <= seq;
}

/** Adds one event (or another snapshot's covers) to a mutable coverage map. */
export function cover(covers: Covers, replica: string, seq: number): void {
  const known = covers[replica];
  if (known === undefined || seq > known) covers[replica] = seq;
}

export function mergeCovers(into: Covers, from: Covers): void {
  for (const [replica, seq] of Object.entries(from)) cover(into, replica, seq);
}

/**
 * Merges one stream event into `parts` and `covers` (invariants 1 and 2): an update event
 * `covers` includes is skipped; an update's bytes are pushed and the event covered; a snapshot's
 * state is pushed and its covers merged. Returns the kind merged, or undefined when nothing was
 * (covered, or not a Yjs event); throws a ValidationError for a malformed Yjs event, having
 * merged nothing (invariant 4: the caller reports it or skips it).
 */
export function mergeYEvent(
  event: StoredEvent,
  parts: Uint8Array[],
  covers: Covers,
): YEvent['kind'] | undefined {
  if (event.type === UPDATE_TYPE && isCovered(event, covers)) return undefined;
  const parsed = parseYEvent(event);
  if (parsed === undefined) return undefined;
  if (parsed.kind === 'update') {
    parts.push(parsed.update);
    cover(covers, event.replica, event.seq);
  } else {
    parts.push(parsed.state);
    mergeCovers(covers, parsed.covers);
  }
  return parsed.kind;
}
