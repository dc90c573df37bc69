/**
 * src/store/strict-rejections.ts: a command re-run reuses its event ids at new seqs
 * (core/strict.ts invariant 4), so a rejection is matched to a record by id AND seq.
 */
import { describe, expect, it } from 'vitest';
import type { JsonValue, LocalRecord } from '../../src/core/events.ts';
import { NO_HEAD, type StrictRejection } from '../../src/core/strict.ts';
import type { EventLog } from '../../src/storage/adapter.ts';
import {
  REJECTED_META_KEY,
  RERUNS_META_KEY,
  type Rerun,
  StrictRejections,
} from '../../src/store/strict-rejections.ts';
import { storedEvent } from '../fixtures/events.ts';

const ME = 'mmmmmmmmmmmmmmmm';

/** The re-run of command `cmd`: its event `cmd:0` at seq 7, on the stream's head `w2`. */
const rerun = storedEvent({
  replica: ME,
  seq: 7,
  wall: 7,
  stream: 'acct',
  version: 3,
  id: 'cmd:0',
  meta: {
    $strict: true,
    $prev: 'w2',
    $command: 'withdraw',
    $commandId: 'cmd',
    $aggregate: 'account',
    $input: { cents: 5 },
    $rebase: 1,
  },
});

/** An EventLog holding `records` (what the part reads of it), and the meta it writes. */
function logOf(records: LocalRecord[]) {
  const meta = new Map<string, JsonValue>();
  /** Every id getByIds was asked for. */
  const asked: string[] = [];
  const log = {
    replicaId: ME,
    getMeta: async (key: string) => meta.get(key),
    setMeta: async (key: string, value: JsonValue) => {
      meta.set(key, structuredClone(value));
    },
    readByCursor: async () => [...records].reverse(),
    getByIds: async (ids: readonly string[]) => {
      asked.push(...ids);
      return ids.map((id) => records.find((r) => r.event.id === id));
    },
  };
  return { log: log as unknown as EventLog, meta, asked };
}

/** The rejection of the run of `cmd:0` at `seq` (stream version `version`), which missed `head`. */
const rejection = (seq: number, version: number, head: string): StrictRejection => ({
  id: 'cmd:0',
  replica: ME,
  seq,
  stream: 'acct',
  version,
  reason: 'stale',
  head: { version: version, id: head },
});

describe('StrictRejections with a command run twice under one id', () => {
  it('runs the command again on the head of the rejection of the run it took out, not of an earlier run under the same id', async () => {
    // Held: the first head w1, the winner w2, and the command's re-run at seq 7. One message
    // (a reconnect's kept rejections) names the re-run (lost to w3, not here yet) and the
    // first run (seq 1, lost to w1), which left the log long ago.
    const held: LocalRecord[] = [
      { pos: 1, event: storedEvent({ replica: 'o', seq: 1, wall: 1, stream: 'acct', id: 'w1' }) },
      { pos: 2, event: storedEvent({ replica: 'o', seq: 2, wall: 2, stream: 'acct', id: 'w2' }) },
      { pos: 3, event: rerun },
    ];
    const { log, meta } = logOf(held);
    const discarded: { id: string; seq: number }[][] = [];
    const reruns: Rerun[] = [];
    const part = new StrictRejections({
      log,
      now: () => 1,
      discard: async (rs) => {
        discarded.push(rs.map((r) => ({ id: r.id, seq: r.seq })));
        // As adapter.ts `discard`: only what is held at the named seq leaves.
        return held.filter((h) => rs.some((r) => r.id === h.event.id && r.seq === h.event.seq));
      },
      rerun: async (r) => {
        reruns.push(r);
        return [];
      },
      changed: () => {},
    });
    await part.load();
    await part.reject([rejection(7, 3, 'w3'), rejection(1, 1, 'w1')]);
    await part.settled();
    // w3 is not held: the run waits for it, and does not run on w1, which the first run missed.
    expect(reruns).toEqual([]);
    expect((meta.get(RERUNS_META_KEY) as unknown as Rerun[]).map((r) => r.waitFor)).toEqual(['w3']);
    expect(meta.get(REJECTED_META_KEY)).toMatchObject([
      { eventIds: ['cmd:0'], command: { commandId: 'cmd', outcome: 'pending' } },
    ]);
  });
});

describe('StrictRejections with a stream the authority holds nothing of', () => {
  it('runs the command again at once on NO_HEAD (core/strict.ts invariant 10)', async () => {
    const held: LocalRecord[] = [{ pos: 1, event: rerun }];
    const { log, meta, asked } = logOf(held);
    const reruns: Rerun[] = [];
    const part = new StrictRejections({
      log,
      now: () => 1,
      discard: async () => held.splice(0),
      rerun: async (r) => {
        reruns.push(r);
        return [];
      },
      changed: () => {},
    });
    await part.load();
    await part.reject([{ ...rejection(7, 3, ''), head: NO_HEAD }]);
    await part.settled();
    expect(reruns.map((r) => [r.chain.commandId, r.waitFor])).toEqual([['cmd', '']]);
    expect(meta.get(RERUNS_META_KEY)).toEqual([]);
    // It waits for no event: no id was looked up for it.
    expect(asked).not.toContain('');
  });
});
