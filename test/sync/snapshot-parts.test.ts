/**
 * sync/snapshot-parts.ts: cutting a snapshot's text into parts within a message size, and
 * putting them back together strictly (invariants 1–3).
 */
import { describe, expect, it } from 'vitest';
import { utf8Length } from '../../src/core/json.ts';
import { parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import {
  SnapshotAssembly,
  SnapshotPartsError,
  splitSnapshotText,
} from '../../src/sync/snapshot-parts.ts';

const text = JSON.stringify({
  a: 'plain '.repeat(500),
  quotes: '"\\"'.repeat(400),
  accents: 'é€'.repeat(700),
  emoji: '😀'.repeat(300),
});

const partsOf = (messages: string[]) =>
  messages.map((m) => JSON.parse(m) as { type: string; index: number; text: string });

describe('splitSnapshotText', () => {
  it('cuts the text into parts within the message size that join back to it (invariant 1)', () => {
    for (const max of [200, 1024, 4096]) {
      const messages = splitSnapshotText(text, max);
      expect(messages.length).toBeGreaterThan(1);
      for (const m of messages) expect(utf8Length(m)).toBeLessThanOrEqual(max);
      const parts = partsOf(messages);
      expect(parts.map((p) => p.index)).toEqual(parts.map((_, i) => i));
      expect(parts.every((p) => p.type === 'snapshot-part' && p.text.length > 0)).toBe(true);
      expect(parts.map((p) => p.text).join('')).toBe(text);
      // Each is a message a peer takes as it is (messages.ts).
      const limits = { ...DEFAULT_SYNC_LIMITS, maxMessageBytes: max };
      for (const m of messages) expect(parseMessage(m, limits).ok).toBe(true);
    }
  });

  it('never ends a part between the two halves of a surrogate pair (invariant 3)', () => {
    const parts = partsOf(splitSnapshotText('😀'.repeat(2000), 300));
    for (const p of parts) expect(p.text).toMatch(/^(😀)+$/u);
  });
});

describe('SnapshotAssembly', () => {
  const cut = (n: number) => {
    const size = Math.ceil(text.length / n);
    return Array.from({ length: n }, (_, i) => text.slice(i * size, (i + 1) * size));
  };

  it('gives the whole text once the last announced part is in', () => {
    const pieces = cut(4);
    const assembly = new SnapshotAssembly({ parts: 4, length: text.length }, 1 << 20);
    expect(pieces.slice(0, 3).map((p, i) => assembly.add(i, p))).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(assembly.add(3, pieces[3]!)).toBe(text);
  });

  const refusals: [string, (a: SnapshotAssembly, pieces: string[]) => void][] = [
    ['a part out of order', (a, p) => a.add(1, p[1]!)],
    [
      'a part repeated',
      (a, p) => {
        a.add(0, p[0]!);
        a.add(0, p[0]!);
      },
    ],
    ['more characters than announced', (a, p) => a.add(0, `${p.join('')}x`)],
    [
      'fewer characters than announced',
      (a, p) => {
        for (const [i, t] of p.entries()) a.add(i, t.slice(1));
      },
    ],
    [
      'a part past the last',
      (a, p) => {
        for (const [i, t] of [...p, 'x'].entries()) a.add(i, t);
      },
    ],
  ];
  it.each(refusals)('refuses %s (invariant 2)', (_what, act) => {
    const assembly = new SnapshotAssembly({ parts: 4, length: text.length }, 1 << 20);
    expect(() => act(assembly, cut(4))).toThrow(SnapshotPartsError);
  });

  it('refuses a snapshot larger than the join takes, at its header or as its parts come', () => {
    expect(() => new SnapshotAssembly({ parts: 2, length: 5000 }, 4096)).toThrow(
      SnapshotPartsError,
    );
    expect(() => new SnapshotAssembly({ parts: 9, length: 4 }, 4096)).toThrow(SnapshotPartsError);
    // 3,000 characters of 'é' announced: 6,000 UTF-8 bytes, over the 4,096 taken.
    const wide = new SnapshotAssembly({ parts: 2, length: 3000 }, 4096);
    wide.add(0, 'é'.repeat(1500));
    expect(() => wide.add(1, 'é'.repeat(1500))).toThrow(SnapshotPartsError);
  });
});
