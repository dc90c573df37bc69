/**
 * src/store/strict-store.ts invariant 3 and core/strict.ts invariant 9 on a store: a device
 * restored from a backup appends a strict event at a (replica, seq) whose earlier copy the
 * authority accepted. The accepted copy arrives, stamped later: the ingest keeps the own one (the
 * copies' rule) and moves the log to a fresh replica id. The own one is rejected all the same,
 * under the old id, and the accepted one comes in; a rejection naming another event under the
 * old id takes it out too. Before, both stayed for good (the replica split from the server).
 */
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { STRICT_META } from '../../src/core/strict.ts';
import { memoryStorage, openStore } from '../../src/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { captureInternals, manualClock } from './helpers.ts';

const T = Date.UTC(2026, 5, 1);

async function restored() {
  const clock = manualClock(T);
  const capture = captureInternals();
  const storage = memoryStorage();
  const store = await openStore({
    name: 'restored',
    storage,
    strictStreams: ['acct-*'],
    now: clock.now,
    syncFactory: capture.factory,
  });
  // Tentative, under the replica id the backup had: seq 1 in acct-1, seq 2 in acct-2.
  const [own] = await store.append('acct-1', { type: 'Deposited', data: 7 });
  clock.advance(1);
  const [other] = await store.append('acct-2', { type: 'Deposited', data: 8 });
  const old = store.replicaId;
  // What the device wrote at seq 1 before the backup was restored, accepted by the server.
  const accepted: StoredEventRecord = storedEvent({
    replica: old,
    seq: 1,
    wall: T + 60_000,
    stream: 'acct-1',
    version: 1,
    id: 'accepted-withdrawal',
    type: 'Withdrew',
    data: 30,
    meta: { [STRICT_META.strict]: true },
  });
  clock.set(T + 120_000);
  const reopen = async () => {
    const again = captureInternals();
    const opened = await openStore({
      name: 'restored',
      storage,
      strictStreams: ['acct-*'],
      now: clock.now,
      syncFactory: again.factory,
    });
    return { store: opened, internals: again.internals() };
  };
  return {
    store,
    internals: capture.internals(),
    own: own!,
    other: other!,
    old,
    accepted,
    reopen,
  };
}

/** The authority's rejection of the second tentative event (acct-2, seq 2) under the old id. */
function otherRejected(id: string, old: string) {
  return {
    id,
    replica: old,
    seq: 2,
    stream: 'acct-2',
    version: 1,
    reason: 'stale' as const,
    head: { version: 1, id: 'elsewhere' },
  };
}

describe('a strict event of a device restored from a backup, at a slot the server accepted', () => {
  it('leaves as rejected though it won by the copies’ rule, and the accepted copy comes in', async () => {
    const { store, internals, own, old, accepted } = await restored();
    await internals.ingest([accepted]);
    expect(store.replicaId).not.toBe(old);
    const held = await store.read({ stream: 'acct-1' });
    expect(held.map((e) => [e.id, e.replica, e.seq])).toEqual([[accepted.id, old, 1]]);
    expect(internals.strictRejections?.()).toMatchObject([
      { stream: 'acct-1', eventIds: [own.id], reason: 'stale' },
    ]);
    // The authority's own rejection, late and under the old id, finds nothing more to take.
    await internals.rejectStrict?.([
      {
        id: own.id,
        replica: old,
        seq: 1,
        stream: 'acct-1',
        version: 1,
        reason: 'stale',
        head: { version: 1, id: accepted.id },
      },
    ]);
    expect((await store.read({ stream: 'acct-1' })).map((e) => e.id)).toEqual([accepted.id]);
    expect(internals.strictRejections?.()).toHaveLength(1);
    await store.close();
  });

  it('takes out another tentative event under the old id when the authority rejects it', async () => {
    const { store, internals, other, old, accepted } = await restored();
    await internals.ingest([accepted]);
    expect(store.replicaId).not.toBe(old);
    await internals.rejectStrict?.([otherRejected(other.id, old)]);
    expect(await store.read({ stream: 'acct-2' })).toEqual([]);
    expect(internals.strictRejections?.()).toHaveLength(2);
    await store.close();
  });

  it('takes it out after a restart too: the old id is in the stored identity', async () => {
    const { store, internals, other, old, accepted, reopen } = await restored();
    await internals.ingest([accepted]);
    const fresh = store.replicaId;
    expect(fresh).not.toBe(old);
    await store.close();
    const { store: again, internals: inner } = await reopen();
    expect(again.replicaId).toBe(fresh);
    await inner.rejectStrict?.([otherRejected(other.id, old)]);
    expect(await again.read({ stream: 'acct-2' })).toEqual([]);
    // Kept across the restart: the first one's entry, then this one's.
    expect(inner.strictRejections?.()).toMatchObject([
      { stream: 'acct-1', reason: 'stale' },
      { stream: 'acct-2', eventIds: [other.id], reason: 'stale' },
    ]);
    await again.close();
  });
});
