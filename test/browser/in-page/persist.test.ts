/**
 * src/client/connect.ts invariant 5 (RELIABILITY 39): opening never waits on a permission.
 * Firefox answers navigator.storage.persist() only once the user answers its prompt; in the
 * `firefox` project the first test meets that real, unanswered prompt. The others hold the
 * browser's answer back (or make it fail) by hand, so they say the same in Chromium.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ConnectedStore, connectStore } from '../../../src/index.ts';
import { startTestWorker } from '../fixtures/workers.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let databases = 0;

describe('connectStore and persistent storage', () => {
  const opened: { store: ConnectedStore; worker: Worker | SharedWorker }[] = [];

  async function open() {
    const worker = startTestWorker({ db: `persist-${run}-${++databases}` }, 'dedicated');
    // Default options: persistent storage is asked for.
    const store = await connectStore(worker);
    opened.push({ store, worker });
    return store;
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    for (const { store, worker } of opened.splice(0)) {
      await store.close();
      if (worker instanceof Worker) worker.terminate();
    }
  });

  it('opens with default options and serves the store, whatever the browser answers', async () => {
    const store = await open();
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
    expect(await store.state('count')).toBe(1);
    expect(typeof store.persisted).toBe('boolean');
  });

  it('opens while persist() waits on a prompt nobody answers, and takes the answer when it comes', async () => {
    let answer!: (granted: boolean) => void;
    const asked = vi
      .spyOn(navigator.storage, 'persist')
      .mockReturnValue(new Promise<boolean>((resolve) => (answer = resolve)));
    vi.spyOn(navigator.storage, 'persisted').mockResolvedValue(false);
    const store = await open();
    expect(asked).toHaveBeenCalledOnce();
    expect(store.persisted).toBe(false);
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
    answer(true);
    await vi.waitFor(() => expect(store.persisted).toBe(true));
  });

  it('does not ask again when storage is already persistent', async () => {
    const asked = vi.spyOn(navigator.storage, 'persist');
    vi.spyOn(navigator.storage, 'persisted').mockResolvedValue(true);
    const store = await open();
    await vi.waitFor(() => expect(store.persisted).toBe(true));
    expect(asked).not.toHaveBeenCalled();
  });

  it('opens and reports false when asking fails', async () => {
    vi.spyOn(navigator.storage, 'persisted').mockResolvedValue(false);
    vi.spyOn(navigator.storage, 'persist').mockRejectedValue(new TypeError('denied'));
    const store = await open();
    expect(await store.read()).toEqual([]);
    expect(store.persisted).toBe(false);
  });
});
