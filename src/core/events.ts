/**
 * The event shapes every layer shares (the typed-event machinery is in event-map.ts).
 *
 * Invariants:
 * 1. `id` is globally unique; the log is a grow-only set keyed by it.
 * 2. `(replica, seq)` names the event's origin; `seq` is dense per replica, starting at 1.
 * 3. `cursor` = order key of (hlc, replica, seq); every replica sorts its log by it.
 * 4. `version` is the event's position in its stream on the origin replica, starting at 1.
 */
import type { JsonValue, StoredEventBase } from './event-map.ts';
import type { Cursor, EventId, Hlc, ReplicaId, Seq } from './ids.ts';

export type {
  EventsOf,
  EventType,
  JsonObject,
  JsonPrimitive,
  JsonValue,
  LooseEvents,
  NewEvent,
  NewEventBase,
  NewEventOf,
  StoredEvent,
  StoredEventBase,
  StoredEventOf,
} from './event-map.ts';

/** The branded view of a StoredEvent, used inside the library. */
export interface StoredEventRecord extends StoredEventBase<string, JsonValue> {
  id: EventId;
  replica: ReplicaId;
  seq: Seq;
  hlc: Hlc;
  cursor: Cursor;
}

export type ExpectedVersion = number | 'any' | 'none';

/** A stored event plus its position in this replica's receive-order log (never sent on the wire). */
export interface LocalRecord {
  event: StoredEventRecord;
  /** Dense, 1-based position in this replica's local log (receive order). */
  pos: number;
}
