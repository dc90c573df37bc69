/**
 * The Web Lock a client holds for its lifetime, so that its worker learns when the page is gone
 * (a SharedWorker gets no event when a tab's port dies; MessagePort `close` events are not in
 * every browser).
 *
 * Invariants:
 * 1. The lock is held (granted) before its name is sent to the worker; otherwise the worker
 *    could take it first and take the page for gone.
 * 2. Without Web Locks there is no lock: the page then must call close() (pagehide does it).
 */

export interface ClientLock {
  readonly name: string;
  release(): void;
}

function randomId(): string {
  return typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

export function holdClientLock(): Promise<ClientLock | undefined> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks === undefined) return Promise.resolve(undefined);
  const name = `chronicle:client:${randomId()}`;
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  return new Promise((resolve, reject) => {
    locks
      .request(name, () => {
        resolve({ name, release });
        return held;
      })
      .catch(reject);
  });
}
