/**
 * The worker opens its store as soon as it starts (worker/host.ts 5, worker/index.ts 4): the
 * IndexedDB open runs while the page's connect message is still on its way, which takes it off
 * the critical path of a cold start. In real Chromium and Firefox, in both modes.
 */
import { describe, expect, it } from 'vitest';
import { connectStore } from '../../../src/index.ts';
import { startTestWorker } from '../fixtures/workers.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

async function databaseExists(name: string, withinMs: number): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if ((await indexedDB.databases()).some((db) => db.name === name)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

describe.each(['dedicated', 'shared'] as const)('a %s store worker', (mode) => {
  it('starts opening its database before any page connects, and serves the first page from it', async () => {
    const db = `open-ahead-${mode}-${run}`;
    const worker = startTestWorker({ db }, mode);
    if (worker instanceof SharedWorker) worker.port.start();
    expect(await databaseExists(db, 10_000)).toBe(true);
    const store = await connectStore(worker, { persist: false });
    await store.append('todo-1', { type: 'TodoAdded', data: { title: 'Milk' } });
    expect(await store.state('count')).toBe(1);
    expect(store.worker.status()).toMatchObject({ mode, storage: 'open' });
    await store.close();
    if (worker instanceof Worker) worker.terminate();
  });
});
