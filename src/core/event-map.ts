/**
 * Typed events: a store's type parameter is an event map, event type → the data of events of
 * that type. Types only, and a leaf module: events.ts re-exports what every layer shares.
 *
 * Invariants:
 * 1. An event of a map is a union discriminated by `type`: one member per key, whose `data` is
 *    that key's value, so `type` and `data` are checked together and `e.type === K` narrows.
 * 2. `unknown` (the default) and `any` as a map mean loose events: `type` is any string and
 *    `data` is unknown, as before events were typed. So does LooseEvents (Record<string, unknown>).
 * 3. LooseEvents<D> = Record<string, D> keeps one data type for every event type (what a data
 *    type passed as the store's type parameter meant before event maps).
 * 4. A typed store, its results and options are assignable to the loose ones (EventStore<M> is an
 *    EventStore); stores of two different maps are not assignable to each other.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * The default event map: any type, data of type D (the runtime still requires a JSON value).
 *
 * @example
 * // one data type for every event type
 * const store = await openStore<LooseEvents<{ n: number }>>({ name: 'counts' });
 */
export type LooseEvents<D = unknown> = Record<string, D>;

/**
 * The event map E stands for (invariant 2). A primitive is no map (before event maps, E was the
 * data type): its only event type is this message, so that every append names the fix.
 *
 * Why the mapped copy of E: TypeScript measures an interface's variance in E with marker types,
 * and E reached through `keyof` measures as contravariant, so EventStore<TodoEvents> would not be
 * an EventStore (loose). A homomorphic mapped type with a `-?` modifier makes the measurement
 * "unmeasurable", and the types are then compared by their structure (invariant 4).
 */
export type EventsOf<E> = unknown extends E
  ? LooseEvents
  : [E] extends [object]
    ? { [K in keyof E]-?: E[K] }
    : { 'E is an event map (type → data); for one data type on every type: LooseEvents<Data>': E };

/** The event types of a map, as strings. */
export type EventType<E = unknown> = keyof EventsOf<E> & string;

/** What the application appends, for one event type. */
export interface NewEventBase<T extends string = string, D = unknown> {
  type: T;
  data: D;
  /** Application metadata (who, where from): stored beside the data, the same for every type. */
  meta?: JsonObject;
  /** Supply your own id to make retries idempotent; generated otherwise. */
  id?: string;
  /** Schema version of `data`, default 1; upcasters lift old schemas on read. */
  schema?: number;
}

/** An event as stored and replicated, for one event type. */
export interface StoredEventBase<T extends string = string, D = unknown>
  extends NewEventBase<T, D> {
  id: string;
  stream: string;
  version: number;
  replica: string;
  seq: number;
  hlc: string;
  /** Milliseconds since the epoch: the wall time of the event's HLC on its origin. */
  time: number;
  cursor: string;
}

/**
 * What the application appends. For an event map E, a union discriminated by `type` whose
 * `data` is checked against the type (invariant 1); loose by default (invariant 2).
 */
export type NewEvent<E = unknown> = {
  [K in EventType<E>]: NewEventBase<K, EventsOf<E>[K]>;
}[EventType<E>];

/** An event as stored and replicated; for an event map E, a union discriminated by `type`. */
export type StoredEvent<E = unknown> = {
  [K in EventType<E>]: StoredEventBase<K, EventsOf<E>[K]>;
}[EventType<E>];

/**
 * The stored event of one type of map E.
 *
 * @example
 * function title(e: StoredEventOf<TodoEvents, 'TodoAdded'>) { return e.data.title; }
 */
export type StoredEventOf<E, K extends EventType<E>> = StoredEventBase<K, EventsOf<E>[K]>;

/** The new event of one type of map E. */
export type NewEventOf<E, K extends EventType<E>> = NewEventBase<K, EventsOf<E>[K]>;
