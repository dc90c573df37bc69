import { describe, expect, it } from 'vitest';
import { memoryTransportPair } from '../../src/sync/transports/memory.ts';
import { idsInOrder, linkSessions, memoryReplica, until } from './helpers.ts';

describe('peer session', () => {
  it('two replicas exchange what each lacks and converge on one order', async () => {
    const { internals: a } = await memoryReplica();
    const { internals: b } = await memoryReplica();
    await a.append('s1', 1, 2, 3);
    await b.append('s2', 'x', 'y');
    const link = await linkSessions(a, b, memoryTransportPair());
    await until(() => link.a.stats().caughtUp && link.b.stats().caughtUp);
    await until(
      async () => (await idsInOrder(a)).length === 5 && (await idsInOrder(b)).length === 5,
    );
    expect(await idsInOrder(a)).toEqual(await idsInOrder(b));
    await a.append('s1', 4);
    await until(async () => (await idsInOrder(b)).length === 6);
    expect(await idsInOrder(a)).toEqual(await idsInOrder(b));
    expect(link.errors).toEqual([]);
  });
});
