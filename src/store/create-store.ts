/**
 * Opening a store in this thread: checks the options, opens the storage, then the signing key
 * and the encryption keyring (before anything reads the replica id), and starts the store.
 *
 * Invariants:
 * 1. Bad options are refused (ValidationError) before any storage is opened.
 * 2. A failure once the log is open closes it again: nothing stays open behind a rejection.
 */

import { ValidationError } from '../core/errors.ts';
import type { Durability } from '../storage/adapter.ts';
import { indexedDbStorage } from '../storage/indexeddb.ts';
import { Encryption } from './encryption.ts';
import { Signer } from './signing.ts';
import { Store } from './store.ts';
import type { EventStore, StoreOptions } from './types.ts';

const DURABILITIES: readonly Durability[] = ['strict', 'relaxed', 'default'];

/**
 * Opens an event store in this thread (Node, tests, or inside the worker).
 *
 * @example
 * const store = await createStore({ name: 'app', storage: memoryStorage() });
 * await store.append('todo-1', { type: 'added', data: { title: 'Milk' } });
 */
export async function createStore<E = unknown>(options: StoreOptions<E>): Promise<EventStore<E>> {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('options', 'must be an object');
  }
  if (typeof options.name !== 'string' || options.name.length === 0) {
    throw new ValidationError('options.name', 'must be a non-empty string');
  }
  const { durability } = options;
  if (durability !== undefined && !DURABILITIES.includes(durability)) {
    throw new ValidationError('options.durability', `must be one of ${DURABILITIES.join(', ')}`);
  }
  const storage = options.storage ?? indexedDbStorage(options.name);
  if (options.signing !== undefined && typeof options.signing !== 'boolean') {
    throw new ValidationError('options.signing', 'must be a boolean');
  }
  const log = await storage.open(durability === undefined ? {} : { durability });
  try {
    // Before anything reads the replica id: a new log takes one derived from its key.
    const signer = options.signing === false ? undefined : await Signer.open(log);
    const { encryption, refoldFrom, shredded } = await Encryption.open(
      options.encryption,
      log,
      options.now ?? Date.now,
    );
    const store = new Store<E>(encryption.view, options, log, encryption, signer);
    await store.start();
    if (refoldFrom !== undefined) await store.refold(refoldFrom);
    // A shred met while closed, or an erasure a crash cut short (shred.ts invariant 2).
    if (shredded.length > 0) await store.erase(shredded);
    return store;
  } catch (error) {
    await log.close();
    throw error;
  }
}
