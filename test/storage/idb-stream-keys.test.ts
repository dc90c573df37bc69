/**
 * The `stream` index of schema 8 (idb-stream-keys.ts, idb-stream-reads.ts): cursor ranks never
 * go down as cursors go up (invariant 1), and a stream's segments whose keys tie are read in the
 * total order, whole, across pages, forward and backward (idb-stream-reads.ts invariants 1 and 2).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { encodeHlc } from '../../src/core/hlc.ts';
import { cursorRank } from '../../src/storage/idb-stream-keys.ts';
import { storedEvent } from '../fixtures/events.ts';
import { closeOpened, open, request } from './fixtures/migration-helpers.ts';

afterEach(closeOpened);

/** A small seeded generator (mulberry32): the same strings every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['-', '.', '/', '0', '1', '9', ':', '`', 'a', 'k', 'z', '{', '~', ' '];

function near(next: () => number, base: string): string {
  // Mostly cursors of the usual form with a few characters changed, cut or added.
  const chars = [...base];
  const edits = Math.floor(next() * 4);
  for (let k = 0; k < edits; k++) {
    const at = Math.floor(next() * (chars.length + 1));
    const c = ALPHABET[Math.floor(next() * ALPHABET.length)]!;
    const how = next();
    if (how < 0.4) chars[at] = c;
    else if (how < 0.7) chars.splice(at, 0, c);
    else chars.length = Math.min(chars.length, at);
  }
  return chars.join('');
}

describe('cursorRank (idb-stream-keys.ts invariant 1)', () => {
  it('never goes down as cursors go up, for cursors of the usual form and any other string', () => {
    const next = random(8);
    const strings: string[] = ['', '-', 'zzzzzzzzzzz-zzzzz', 'zzzzzzzzzzz-zzzzz.a', '~'];
    for (let i = 0; i < 3000; i++) {
      const wall = Math.floor(next() * 2 ** 44);
      const counter = Math.floor(next() * 4000);
      const hlc = encodeHlc({ wall: i % 3 === 0 ? 1_765_000_000_000 + (i % 7) : wall, counter });
      const cursor = `${hlc}.r${Math.floor(next() * 9)}.00000000000${i % 10}`;
      strings.push(i % 2 === 0 ? cursor : near(next, cursor));
    }
    strings.sort();
    for (let i = 1; i < strings.length; i++) {
      const [a, b] = [strings[i - 1]!, strings[i]!];
      if (cursorRank(a) > cursorRank(b)) expect.fail(`${a} ranks above ${b}`);
    }
  });

  it('tells apart the ticks of one millisecond and the milliseconds of today', () => {
    const at = (wall: number, counter: number) =>
      cursorRank(`${encodeHlc({ wall, counter })}.r.000000000001`);
    expect(at(1_765_000_000_000, 1)).toBeGreaterThan(at(1_765_000_000_000, 0));
    expect(at(1_765_000_000_001, 0)).toBeGreaterThan(at(1_765_000_000_000, 2047));
    // Past 2047 ticks in one millisecond, ranks tie (readers order ties by cursor).
    expect(at(1_765_000_000_000, 3000)).toBe(at(1_765_000_000_000, 2047));
  });
});

/**
 * Events of stream 's' that tie in rank, from three replicas, with 't' between them; then more
 * tied events of 's' than a page of segments holds (STREAM_PAGE_SEGMENTS, 64).
 */
function tiedEvents(): StoredEventRecord[] {
  const out: StoredEventRecord[] = [];
  for (let k = 0; k < 70; k++) {
    out.push(storedEvent({ replica: 'rd', seq: k + 1, wall: 1e12 + 1, counter: 3000 + k }));
  }
  const replicas = ['ra', 'rb', 'rc'];
  let seq = 0;
  for (let tick = 0; tick < 6; tick++) {
    seq += 1;
    for (const [k, replica] of replicas.entries()) {
      // Counters past 2047 tie too: ticks 3 to 5 rank as 2047.
      const counter = tick < 3 ? tick : 2047 + tick;
      out.push(
        storedEvent({ replica, seq: seq * 2, wall: 1e12, counter, version: seq }),
        storedEvent({
          replica,
          seq: seq * 2 + 1,
          wall: 1e12,
          counter,
          stream: k === 1 ? 't' : 's',
          version: seq,
        }),
      );
    }
  }
  return out;
}

describe('IndexedDB: a stream read through tied keys', () => {
  it('reads every page in the total order, forward and backward, whatever order they came in', async () => {
    const log = await open(new IDBFactory(), 'ties');
    const events = tiedEvents();
    // Latest first, one event an ingest: each segment's key is above those of later events.
    for (const event of [...events].reverse()) {
      await log.ingest({ events: [event], now: 1e12, maxClockDriftMs: 1e15 });
    }
    const expected = events
      .filter((e) => e.stream === 's')
      .map((e) => e.cursor)
      .sort();
    const all = await log.readByCursor({ stream: 's', limit: 1000 });
    expect(all.map((r) => r.event.cursor)).toEqual(expected);
    for (const limit of [1, 2, 5, 100]) {
      const forward: string[] = [];
      for (let after: string | undefined; ; ) {
        const page = await log.readByCursor({
          stream: 's',
          limit,
          ...(after === undefined ? {} : { after }),
        });
        forward.push(...page.map((r) => r.event.cursor));
        if (page.length < limit) break;
        after = page[page.length - 1]!.event.cursor;
      }
      expect(forward).toEqual(expected);
      const backward: string[] = [];
      for (let after: string | undefined; ; ) {
        const page = await log.readByCursor({
          stream: 's',
          limit,
          reverse: true,
          ...(after === undefined ? {} : { after }),
        });
        backward.push(...page.map((r) => r.event.cursor));
        if (page.length < limit) break;
        after = page[page.length - 1]!.event.cursor;
      }
      expect(backward).toEqual([...expected].reverse());
    }
    // From a cursor of another stream, and up to one: the same slice of the order.
    const others = events.filter((e) => e.stream === 't').map((e) => e.cursor);
    for (const after of others) {
      for (const until of others) {
        const page = await log.readByCursor({ stream: 's', after, until, limit: 1000 });
        expect(page.map((r) => r.event.cursor)).toEqual(
          expected.filter((c) => c > after && c <= until),
        );
        const back = await log.readByCursor({
          stream: 's',
          after: until,
          until: after,
          reverse: true,
          limit: 1000,
        });
        expect(back.map((r) => r.event.cursor)).toEqual(
          expected.filter((c) => c >= after && c < until).reverse(),
        );
      }
    }
  });

  it('lists each segment under its streams’ numbers, which the rows keep', async () => {
    const factory = new IDBFactory();
    const log = await open(factory, 'numbers');
    for (const event of tiedEvents().slice(70, 76)) {
      await log.ingest({ events: [event], now: 1e12, maxClockDriftMs: 1e15 });
    }
    await log.close();
    const db = await request(factory.open('numbers'));
    const tx = db.transaction(['segments', 'streams']);
    const rows = (await request(tx.objectStore('streams').getAll())) as {
      stream: string;
      no: number;
    }[];
    const keys = (await request(tx.objectStore('segments').index('stream').getAllKeys())) as
      | number[]
      | unknown[];
    db.close();
    // Each number is the position of one of the stream's events (invariant 2).
    expect(rows.map((r) => [r.stream, r.no])).toEqual([
      ['s', 1],
      ['t', 4],
    ]);
    expect(keys).toHaveLength(6);
  });
});
