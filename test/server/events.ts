/**
 * Valid stored events for server tests, made without a store: test/fixtures/events.ts's
 * storedEvent with a running counter for what is not given (seq, wall, data and a unique id).
 */
import type { JsonObject, JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { storedEvent } from '../fixtures/events.ts';

let counter = 0;

export interface MakeEventOptions {
  replica?: string;
  seq?: number;
  stream?: string;
  type?: string;
  data?: JsonValue;
  meta?: JsonObject;
  id?: string;
  wall?: number;
}

export function makeEvent(options: MakeEventOptions = {}): StoredEventRecord {
  counter += 1;
  const replica = options.replica ?? 'replicaaaaaaaaaa';
  const seq = options.seq ?? counter;
  return storedEvent({
    replica,
    seq,
    wall: options.wall ?? 1_700_000_000_000 + counter,
    id: options.id ?? `ev-${replica}-${seq}-${counter}`,
    type: options.type ?? 'test.happened',
    data: options.data ?? { n: counter },
    stream: options.stream ?? 'stream-1',
    meta: options.meta,
  });
}

/** `count` events of one replica with seqs 1..count (or from `firstSeq`). */
export function makeEvents(
  count: number,
  options: Omit<MakeEventOptions, 'seq' | 'id'> & { firstSeq?: number; prefix?: string } = {},
): StoredEventRecord[] {
  const replica = options.replica ?? 'replicaaaaaaaaaa';
  const first = options.firstSeq ?? 1;
  const out: StoredEventRecord[] = [];
  for (let i = 0; i < count; i++) {
    const seq = first + i;
    out.push(
      makeEvent({ ...options, replica, seq, id: `${options.prefix ?? 'ev'}-${replica}-${seq}` }),
    );
  }
  return out;
}
