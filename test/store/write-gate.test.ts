import { describe, expect, it } from 'vitest';
import { WriteGate } from '../../src/store/write-gate.ts';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('WriteGate', () => {
  it('is quiet only when no write ran or started between the mark and now', async () => {
    const gate = new WriteGate();
    const quiet = gate.mark();
    expect(gate.quietSince(quiet)).toBe(true);
    const release = deferred();
    const writing = gate.write(() => release.promise);
    expect(gate.quietSince(quiet)).toBe(false);
    const during = gate.mark();
    release.resolve();
    await writing;
    // Running when marked: a read made since may have seen it half-way, or not at all.
    expect(gate.quietSince(during)).toBe(false);
    expect(gate.quietSince(gate.mark())).toBe(true);
  });

  it('holds writes asked for during an exclusive task, after those already running', async () => {
    const gate = new WriteGate();
    const order: string[] = [];
    const first = deferred();
    const running = gate.write(async () => {
      await first.promise;
      order.push('write 1');
    });
    const exclusive = gate.exclusive(async () => {
      order.push('exclusive');
    });
    const held = gate.write(async () => {
      order.push('write 2');
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    first.resolve();
    await Promise.all([running, exclusive, held]);
    expect(order).toEqual(['write 1', 'exclusive', 'write 2']);
  });

  it('releases the writes when the exclusive task throws', async () => {
    const gate = new WriteGate();
    await expect(
      gate.exclusive(async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(gate.write(async () => 'written')).resolves.toBe('written');
  });
});
