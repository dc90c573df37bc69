/**
 * Upcasters lift events stored with an old schema to the current one, on read. Stored events are
 * never rewritten.
 *
 * Invariants:
 * 1. An event of `type` at schema s passes through the upcaster (type, s), then (type, s + 1), ...
 *    until none is registered; the result carries the last schema reached.
 * 2. Upcasting never changes the stored copy: it works on a shallow copy with new `data`.
 */
import { ValidationError } from './errors.ts';
import type { StoredEvent } from './events.ts';

/** T: the event types it may name; a typed store takes Upcaster<EventType<E>> (its map's types). */
export interface Upcaster<T extends string = string> {
  type: T;
  fromSchema: number;
  up: (data: unknown, event: StoredEvent) => unknown;
}

export type UpcastFn = <E>(event: StoredEvent<E>) => StoredEvent<E>;

export function makeUpcast(upcasters: readonly Upcaster[]): UpcastFn {
  const byKey = new Map<string, Upcaster>();
  for (const [i, u] of upcasters.entries()) {
    if (typeof u.type !== 'string' || !Number.isSafeInteger(u.fromSchema) || u.fromSchema < 1) {
      throw new ValidationError(`upcasters[${i}]`, 'needs a type and a positive fromSchema');
    }
    const key = `${u.fromSchema}\u0000${u.type}`;
    if (byKey.has(key)) {
      throw new ValidationError(
        `upcasters[${i}]`,
        `a second upcaster for ${u.type}@${u.fromSchema}`,
      );
    }
    byKey.set(key, u);
  }
  if (byKey.size === 0) return (event) => event;
  return <E>(event: StoredEvent<E>): StoredEvent<E> => {
    let schema = event.schema ?? 1;
    let current: StoredEvent<E> = event;
    for (;;) {
      const u = byKey.get(`${schema}\u0000${event.type}`);
      if (u === undefined) return current;
      const data = u.up(current.data, current as StoredEvent) as E;
      schema += 1;
      current = { ...current, data, schema };
    }
  };
}
