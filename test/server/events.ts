/** Valid stored events for server tests, made without a store. */
import type { JsonObject, JsonValue, StoredEventRecord } from '../../src/core/events.ts';
import { encodeHlc } from '../../src/core/hlc.ts';
import { Cursor, type EventId, type ReplicaId, Seq } from '../../src/core/ids.ts';

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
  const replica = (options.replica ?? 'replicaaaaaaaaaa') as ReplicaId;
  const seq = Seq.make(options.seq ?? counter);
  const wall = options.wall ?? 1_700_000_000_000 + counter;
  const hlc = encodeHlc({ wall, counter: 0 });
  const event: StoredEventRecord = {
    id: (options.id ?? `ev-${replica}-${seq}-${counter}`) as EventId,
    type: options.type ?? 'test.happened',
    data: options.data ?? { n: counter },
    stream: options.stream ?? 'stream-1',
    version: seq,
    replica,
    seq,
    hlc,
    time: wall,
    cursor: Cursor.make(hlc, replica, seq),
  };
  if (options.meta !== undefined) event.meta = options.meta;
  return event;
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
