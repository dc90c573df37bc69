/**
 * src/store/strict-rejections.ts invariants 5 and 6, on a store: the cases a device restored from
 * a backup meets with its strict-stream commands (found by the strict property with backups and
 * restores, test/strict/strict.property.test.ts, STRICT_RESTORE=1).
 * - Invariant 5: the backup holds a command's first run, which the authority rejected long ago;
 *   the run its former self made after the backup was accepted and comes back. The first run's
 *   rejection must not run the command once more: before, a deposit was applied twice.
 * - Invariant 6: the device, restored, decides a command at a (replica, seq) its former self had
 *   used; the server's copy comes first in the total order and replaces it. Before, the command
 *   was gone with nothing but an ID_CONFLICT error; now it is reported and runs again.
 */
import { describe, expect, it, vi } from 'vitest';
import { withoutIntegrity } from '../../src/core/integrity.ts';
import { type EventStore, memoryStorage, openStore } from '../../src/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { type AccountEvents, account } from './fixtures/account.ts';
import { captureInternals, manualClock } from './helpers.ts';

const T = Date.UTC(2026, 5, 1);
const STREAM = 'account-1';

async function device() {
  const clock = manualClock(T);
  const capture = captureInternals();
  const store: EventStore<AccountEvents> = await openStore<AccountEvents>({
    name: 'restored-commands',
    storage: memoryStorage(),
    aggregates: [account],
    strictStreams: ['account-*'],
    now: clock.now,
    syncFactory: capture.factory,
  });
  return { store, clock, internals: capture.internals() };
}

const balance = async (store: EventStore<AccountEvents>) =>
  (await store.read({ stream: STREAM })).reduce(
    (sum, e) => (e.type === 'Deposited' ? sum + e.data.cents : sum - e.data.cents),
    0,
  );

describe('a restored device’s strict-stream commands', () => {
  it('does not run a command again whose accepted run the log holds (invariant 5)', async () => {
    const { store, clock, internals } = await device();
    const [first] = await store.execute(
      account,
      STREAM,
      'deposit',
      { cents: 7 },
      {
        commandId: 'c1',
      },
    );
    const me = store.replicaId;
    // The run its former self made after the backup: same command, its next seq, accepted.
    const accepted = storedEvent({
      replica: me,
      seq: 2,
      wall: T + 60_000,
      stream: STREAM,
      version: 1,
      type: 'Deposited',
      data: { cents: 7 },
      meta: withoutIntegrity(first!.meta)!,
    });
    clock.set(T + 120_000);
    await internals.ingest([accepted]);
    await internals.rejectStrict?.([
      {
        id: first!.id,
        replica: me,
        seq: first!.seq,
        stream: STREAM,
        version: 1,
        reason: 'stale',
        head: { version: 1, id: accepted.id },
      },
    ]);
    // The run waits for the head, which is held: it is settled once the entry is.
    await vi.waitFor(() =>
      expect(internals.strictRejections?.()[0]?.command?.outcome).not.toBe('pending'),
    );
    expect((await store.read({ stream: STREAM })).map((e) => e.id)).toEqual([accepted.id]);
    expect(await balance(store)).toBe(7);
    expect(internals.strictRejections?.()).toMatchObject([
      {
        eventIds: [first!.id],
        command: { commandId: 'c1', outcome: 'rebased', eventIds: [accepted.id] },
      },
    ]);
    await store.close();
  });

  it('reports a command whose event lost its slot to the server’s copy, and runs it again (invariant 6)', async () => {
    const { store, clock, internals } = await device();
    clock.set(T + 60_000);
    const [own] = await store.execute(
      account,
      STREAM,
      'deposit',
      { cents: 5 },
      {
        commandId: 'restored',
      },
    );
    const old = store.replicaId;
    // What the former self wrote at that (replica, seq), stamped earlier: its copy wins.
    const accepted = storedEvent({
      replica: old,
      seq: own!.seq,
      wall: T,
      stream: STREAM,
      version: 1,
      type: 'Deposited',
      data: { cents: 100 },
      meta: { $strict: true },
    });
    await internals.ingest([accepted]);
    expect(store.replicaId).not.toBe(old);
    await vi.waitFor(() =>
      expect(internals.strictRejections?.()[0]?.command?.outcome).toBe('rebased'),
    );
    const events = await store.read({ stream: STREAM });
    expect(events.map((e) => [e.id, e.version])).toEqual([
      [accepted.id, 1],
      [expect.any(String), 2],
    ]);
    expect(events[1]!.meta?.$commandId).toBe('restored');
    expect(events[1]!.replica).toBe(store.replicaId);
    expect(await balance(store)).toBe(105);
    expect(internals.strictRejections?.()).toMatchObject([
      {
        eventIds: [own!.id],
        reason: 'stale',
        command: { commandId: 'restored', outcome: 'rebased' },
      },
    ]);
    await store.close();
  });
});
