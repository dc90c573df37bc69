import { expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { isElided } from '../../src/core/integrity.ts';
import { DEFAULT_SYNC_LIMITS } from '../../src/sync/protocol.ts';
import { helloFrom, memoryReplica, rawPeer, until } from './helpers.ts';

/**
 * A store relaying events held without `$sig` (covered signatures, issue 16 part 3) never ends a
 * batch inside a run: pages of maxBatchEvents are cut back before an open run (planBatches `more`).
 */
it('relays runs of elided events whole, each batch ending at a signed event', async () => {
  const r = (await memoryReplica()).internals;
  const a = (await memoryReplica()).internals;
  const events: StoredEventRecord[] = [];
  for (let i = 0; i < 23; i++) events.push(...(await r.append('s', i)));
  // Runs: elided unless seq % 4 === 0 or last.
  const relay = events.map((e) => {
    const meta: Record<string, string> = {
      $link: `${(e.seq - 1).toString(36)}.${'A'.repeat(22)}.x`,
    };
    if (e.seq % 4 === 0 || e.seq === 23) meta.$sig = 'A'.repeat(86);
    return { ...e, meta };
  });
  await a.ingest(relay);
  const { peer } = await rawPeer(a);
  peer.send(helloFrom('rawpeer', { limits: { ...DEFAULT_SYNC_LIMITS, maxBatchEvents: 6 } }));
  peer.send({ type: 'pull' });
  await until(() => peer.of('events').length > 0, 500);
  for (let turn = 0; turn < 50; turn++) {
    const ms = peer.of('events');
    const last = ms[ms.length - 1]!;
    peer.send({ type: 'ack', to: last.to });
    await new Promise((res) => setTimeout(res, 20));
    if (peer.of('events').length === ms.length && ms.some((m) => m.caughtUp)) break;
  }
  const ms = peer.of('events');
  expect(
    ms.map(
      (m) =>
        `${m.from}-${m.to}${m.caughtUp ? ' caughtUp' : ''}: ${m.events.map((e) => `${e.seq}${isElided(e as never) ? 'e' : 's'}`).join(' ')}`,
    ),
  ).toEqual([
    '0-4: 1e 2e 3e 4s',
    '4-8: 5e 6e 7e 8s',
    '8-12: 9e 10e 11e 12s',
    '12-16: 13e 14e 15e 16s',
    '16-20: 17e 18e 19e 20s',
    '20-23 caughtUp: 21e 22e 23s',
  ]);
  for (const m of ms) {
    const lastEvent = m.events[m.events.length - 1];
    if (lastEvent !== undefined) expect(isElided(lastEvent as never)).toBe(false);
  }
  expect(ms.flatMap((m) => m.events.map((e) => [e.seq, e.data]))).toEqual(
    events.map((e) => [e.seq, e.data]),
  );
});
