/**
 * The store's view of an encrypted log (store/sealed-log.ts) passes the storage conformance
 * suite unchanged: every event the suite writes is sealed on its way down (as the store's sealer
 * and a remote replica seal them) and opened on its way up, and snapshots are sealed. What the
 * suite reads back equal to what it wrote went through AES-GCM both ways.
 */
import { describe } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { generateEncryptionKey, Keyring, type SpaceKey, spaceKey } from '../../src/core/keyring.ts';
import { sealEvent } from '../../src/core/sealing.ts';
import type { ValidNewEvent } from '../../src/core/validate.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { SealedLog } from '../../src/store/sealed-log.ts';
import { storageConformance } from './conformance.ts';

async function seal<T extends ValidNewEvent | StoredEventRecord>(
  key: SpaceKey,
  stream: string,
  event: T,
): Promise<T> {
  const sealed = await sealEvent(key, {
    stream,
    type: event.type,
    data: event.data,
    ...(event.meta && { meta: event.meta }),
    ...(event.id !== undefined && { id: event.id }),
  });
  return { ...event, data: sealed.data, meta: sealed.meta };
}

/** Seals what goes down, the way the store's sealer and a remote replica would. */
function sealing(view: SealedLog, key: SpaceKey): EventLog {
  const methods: Partial<EventLog> = {
    appendLocal: async (request) =>
      view.appendLocal({
        ...request,
        events: await Promise.all(request.events.map((e) => seal(key, request.stream, e))),
      }),
    appendGroup: async (request) =>
      view.appendGroup({
        ...request,
        units: await Promise.all(
          request.units.map((unit) =>
            Promise.all(
              unit.map(async (part) => ({
                ...part,
                events: await Promise.all(part.events.map((e) => seal(key, part.stream, e))),
              })),
            ),
          ),
        ),
      }),
    ingest: async (request) =>
      view.ingest({
        ...request,
        events: await Promise.all(request.events.map((e) => seal(key, e.stream, e))),
      }),
  };
  return new Proxy(view, {
    get(target, property, receiver) {
      const own = methods[property as keyof EventLog];
      if (own !== undefined) return own;
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

// One key for every database of the run: the copy tests compare two logs' choices, and the
// choice is made on the sealed bytes (conformance.ts ConformanceOptions).
const key = spaceKey(generateEncryptionKey());

function sealedStorage(): StorageAdapter {
  const inner = memoryStorage();
  return {
    name: `sealed(${inner.name})`,
    async open(options) {
      const k = await key;
      return sealing(new SealedLog(await inner.open(options), new Keyring(k)), k);
    },
  };
}

describe('sealed view over memory', () => {
  storageConformance('sealed view over memory', sealedStorage, {
    opaquePayloads: true,
    trims: true,
  });
});
