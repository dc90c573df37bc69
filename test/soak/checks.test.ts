/**
 * The soak's verdict (checks.ts) catches what it claims to: each planted fault in a small,
 * hand-made outcome fails the invariant it breaks, and a clean outcome passes.
 */
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { storedEvent } from '../fixtures/events.ts';
import { type CheckInput, check, type Replica } from './checks.ts';
import { canonicalHash, type Dump, foldChain, type JournalLine } from './journal.ts';

const WALL = 1_800_000_000_000;
const a1 = storedEvent({ replica: 'aaaaaaaaaaaaaaaa', seq: 1, wall: WALL, data: { n: 1 } });
const b1 = storedEvent({ replica: 'bbbbbbbbbbbbbbbb', seq: 1, wall: WALL + 5, data: { n: 2 } });
const a2 = storedEvent({ replica: 'aaaaaaaaaaaaaaaa', seq: 2, wall: WALL + 9, data: { n: 3 } });
const server = [a1, b1, a2];

function dumpOf(events: StoredEventRecord[], label: string): Dump {
  let fold = { count: 0, chain: 0 };
  for (const e of events) fold = foldChain(fold, e);
  return {
    replica: label,
    status: { state: 'idle', pending: 0 },
    head: events.length,
    events: events.map((e) => [e.id, e.replica, e.seq, e.hlc, canonicalHash(e)]),
    state: fold,
    fold,
  };
}

function journalOf(events: StoredEventRecord[], acked: StoredEventRecord[]): JournalLine[] {
  return [
    ...events.map(
      (e): JournalLine => ({
        t: 'a',
        id: e.id,
        seq: e.seq,
        h: canonicalHash(e),
        at: e.time,
        time: e.time,
      }),
    ),
    { t: 'k', ids: acked.map((e) => e.id) },
  ];
}

function input(overrides: Partial<CheckInput> = {}): CheckInput {
  const replicas: Replica[] = [
    { label: 'c0.1', settled: true, dump: dumpOf(server, 'c0.1') },
    { label: 'c1.1', settled: true, dump: dumpOf(server, 'c1.1') },
  ];
  return {
    server,
    incarnations: [
      { label: 'c0.1', clockOffsetMs: 0, journal: journalOf([a1, a2], [a1, a2]) },
      { label: 'c1.1', clockOffsetMs: 0, journal: journalOf([b1], [b1]) },
    ],
    replicas,
    mustBeAbsent: [],
    crashed: [],
    clockChecked: true,
    ...overrides,
  };
}

const numbers = (failures: string[]) => [...new Set(failures.map((f) => f.slice(0, 3)))];

describe('the soak verdict', () => {
  it('passes an outcome where every replica holds the server log in order', () => {
    const verdict = check(input());
    expect(verdict.failures).toEqual([]);
    expect(verdict.acknowledged).toBe(3);
  });

  it('fails an acknowledged event the server lost (2), and a replica that holds it (4)', () => {
    expect(numbers(check(input({ server: [a1, b1] })).failures)).toEqual(['[2]', '[4]']);
  });

  it('fails a server that holds two events at one (replica, seq) (1)', () => {
    const twin = storedEvent({ replica: 'bbbbbbbbbbbbbbbb', seq: 1, wall: WALL + 6, id: 'twin' });
    expect(numbers(check(input({ server: [...server, twin] })).failures)).toContain('[1]');
  });

  it('fails a replica that is not settled (3), or that orders, lacks or doubles events (4)', () => {
    const base = input();
    const swap = dumpOf([a1, a2, b1], 'c1.1');
    const short = dumpOf([a1, b1], 'c1.1');
    const doubled = dumpOf([a1, b1, b1, a2], 'c1.1');
    for (const [dump, settled, want] of [
      [dumpOf(server, 'c1.1'), false, '[3]'],
      [swap, true, '[4]'],
      [short, true, '[4]'],
      [doubled, true, '[4]'],
    ] as const) {
      const replicas = [base.replicas[0]!, { label: 'c1.1', settled, dump }];
      expect(numbers(check({ ...base, replicas }).failures)).toContain(want);
    }
  });

  it('fails a replica whose state() is not the fold of its read(), or differs from the others (5)', () => {
    const base = input();
    const off = { ...dumpOf(server, 'c1.1'), state: { count: 3, chain: 1 } };
    const replicas = [base.replicas[0]!, { label: 'c1.1', settled: true, dump: off }];
    expect(numbers(check({ ...base, replicas }).failures)).toEqual(['[5]']);
  });

  it('fails a stored event a hostile writer sent that must be refused (6)', () => {
    expect(numbers(check(input({ mustBeAbsent: [b1.id] })).failures)).toEqual(['[6]']);
  });

  it('fails a client process that died by itself (8)', () => {
    expect(numbers(check(input({ crashed: ['c1.1'] })).failures)).toEqual(['[8]']);
  });

  it('fails an honest device whose events are stamped a day off its real time (7)', () => {
    const dragged = { ...a1, time: a1.time + 24 * 3600 * 1000 };
    const journal = journalOf([dragged], []).map((l) => (l.t === 'a' ? { ...l, at: a1.time } : l));
    const incarnations = [...input().incarnations, { label: 'c2.1', clockOffsetMs: 0, journal }];
    expect(numbers(check(input({ incarnations })).failures)).toEqual(['[7]']);
    expect(check(input({ incarnations, clockChecked: false })).failures).toEqual([]);
  });
});
