/**
 * The Syncer's `pending` after reads of the replica's own seq that resolve out of order
 * (src/sync/controller.ts, invariant 3): an append's read can be overtaken by a later one (an
 * ingest that took a losing own copy out of the log lowers the own seq: core/copies.ts), and
 * only the latest read may count, or a stale, higher seq keeps `pending` above 0 for good.
 */
import { describe, expect, it } from 'vitest';
import { createSyncController } from '../../src/sync/controller.ts';
import { memoryReplica, until } from './helpers.ts';

describe('sync controller: own seq', () => {
  it('counts pending from the latest read of its own seq, not from one that resolved late', async () => {
    const { internals } = await memoryReplica();
    const log = internals.log;
    const realOwnSeq = log.ownSeq.bind(log);
    // Scripted answers: the first change's read is held and answers a stale 2; the second
    // change's read answers 1 at once (the log's own seq went down in between).
    let held: (() => void) | undefined;
    let calls = 0;
    log.ownSeq = async () => {
      calls += 1;
      if (calls === 2) {
        await new Promise<void>((resolve) => {
          held = resolve;
        });
        return 2;
      }
      if (calls === 3) return 1;
      return realOwnSeq();
    };
    const sync = createSyncController(internals);
    await until(() => calls >= 1);
    await internals.append('s', { n: 1 }); // read 2: held
    await until(() => held !== undefined);
    await internals.append('s', { n: 2 }); // read 3: answers 1 at once
    await until(() => sync.status().pending === 1);
    held!(); // read 2 answers its stale 2 last
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sync.status().pending).toBe(1);
    await sync.close();
  });
});
