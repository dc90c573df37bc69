/**
 * sync/session-sender.ts invariant 15: a device restored from a backup gets back from a peer the
 * events its former self wrote after the backup, under its own replica id (its seq counter moves
 * past them: core/append.ts). The peer holds them: once its acknowledged position passes them
 * they are not pending. Before, `pending` counted them for good (and in a strict stream they
 * stayed tentative, held back from other peers).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStore, memoryStorage, memoryTransportPair } from '../../src/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { openWithInternals, until } from './helpers.ts';

const open: EventStore[] = [];
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});

async function replica(name: string) {
  const opened = await openWithInternals({ name, storage: memoryStorage(), signing: false });
  open.push(opened.store);
  return opened;
}

describe('own events coming back from a peer', () => {
  it('are not pending once the peer acknowledged their positions', async () => {
    const restored = await replica('restored');
    const peer = await replica('peer');
    await restored.store.append('notes', [{ type: 'Noted', data: 1 }]);
    // What the former self wrote after the backup, which the peer holds.
    const later = [2, 3, 4].map((seq) =>
      storedEvent({
        replica: restored.store.replicaId,
        seq,
        wall: Date.now() - 1_000 + seq,
        stream: 'notes',
        version: seq,
        type: 'Noted',
        data: seq,
      }),
    );
    await peer.internals.ingest(later);
    const [a, b] = memoryTransportPair();
    restored.store.sync.connect(a);
    peer.store.sync.connect(b);
    await until(async () => (await restored.store.read({ stream: 'notes' })).length === 4);
    await until(() => restored.store.sync.status().state === 'idle');
    expect(restored.store.replicaId).toBe(later[0]!.replica);
    expect(restored.store.sync.status().pending).toBe(0);
  });
});
