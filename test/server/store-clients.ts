/**
 * Stores (openStore, memory storage) connected to a sync server over a real WebSocket, closed
 * after each test of the file that calls storeClients().
 */
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import {
  type EventStore,
  memoryStorage,
  type OpenStoreOptions,
  openStore,
  type SyncConnection,
  webSocketTransport,
} from '../../src/index.ts';

/** A connection of `store` to the server at `url` (close it to take the store offline). */
function connect<E>(store: EventStore<E>, url: string, token: string): SyncConnection {
  return store.sync.connect(webSocketTransport(url, { token, WebSocket: WebSocket as never }));
}

export function storeClients() {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close().catch(() => {});
  });
  return {
    async open<E>(
      url: string,
      token: string,
      options: Omit<OpenStoreOptions<E>, 'name' | 'storage'>,
      connected = true,
    ): Promise<EventStore<E>> {
      const store = await openStore<E>({ name: 'client', storage: memoryStorage(), ...options });
      closers.push(() => store.close());
      if (connected) connect(store, url, token);
      return store;
    },
    connect,
    /** Closes every store opened so far (before a test looks at the server's files). */
    async closeAll(): Promise<void> {
      await Promise.all(closers.splice(0).map((close) => close()));
    },
  };
}
